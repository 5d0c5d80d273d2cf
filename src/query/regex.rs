//! Regular expressions that mean the same on SQLite and PostgreSQL.
//!
//! SQLite matches with Rust's `regex` crate (the `regexp(pattern, value)` function sqlx
//! registers), PostgreSQL with its own ARE engine (a `regexp(pattern, value)` SQL function
//! defined by migration `m20261123_000003`, which is `value ~ pattern`). The two agree on a
//! common subset, and only that subset is accepted:
//!
//! - at most [`MAX_PATTERN_CHARS`] characters, no NUL;
//! - literal characters, `.`, `^`, `$`, `|`, groups `( )`, bracket expressions `[...]` /
//!   `[^...]` with ranges, and the quantifiers `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`
//!   (numbers at most 255), each optionally followed by `?` (lazy);
//! - `\` only before ASCII punctuation other than `<` and `>` (a literal `\.`, `\(`, `\\` ...;
//!   Rust reads `\<`/`\>` as word boundaries). Class escapes such as
//!   `\d`, `\w`, `\s`, `\b` differ between the engines (Unicode vs locale) and are refused, as
//!   are back-references (`\1`);
//! - no `(?` at all (no flags, no non-capturing or named groups, no lookaround), no nested `[`
//!   inside a bracket expression (so no `[:alpha:]` classes, no `[.x.]` / `[=x=]`), no `&&`,
//!   `--` or `~~` inside brackets (Rust's class set operations);
//! - no quantifier after another quantifier (except the one lazy `?`), nor at the start of
//!   the pattern, a group or a branch, nor after `^` or `$`;
//! - inside a counted repetition that repeats its atom more than once (`{m}`, `{m,n}` with
//!   n > 1, `{m,}` with m > 1), no unbounded quantifier (`*`, `+`, `{m,}`) and nothing that
//!   can match the empty string (`?`, `{0,n}`, an empty alternative): PostgreSQL's engine
//!   (Spencer's NFA, optimized before matching) takes seconds to compile those (see the
//!   calibration below);
//! - a size estimate (counted repetitions multiplied out) of at most [`MAX_PATTERN_SIZE`], so
//!   that PostgreSQL never finds a pattern too complex and compiles any accepted one quickly.
//!
//! `.` matches every character, line breaks included, on both backends: the stored pattern
//! starts with `(?s)`, which is "dot matches newline" for Rust and "non-newline-sensitive
//! matching" (PostgreSQL's default) for an ARE. A match may be anywhere in the value unless
//! the pattern anchors it with `^`/`$`.
//!
//! # Calibration
//!
//! How long PostgreSQL 15 takes to compile patterns (`select 'x' ~ '(?s)<pattern>'` in psql
//! with `\timing`, each pattern fresh so that the backend's regex cache does not answer),
//! which is why the rules above exist (measured on PostgreSQL 15.20). Refused today:
//!
//! | pattern                               | compile time |
//! |---------------------------------------|--------------|
//! | `(.*.*.*.*.*.*.*.*.*.*){100}`         | ~17 s        |
//! | `(.*.*.*.*.*.*.*.*.*.*){50}`          | 3.3–12 s     |
//! | `(.*.*.*.*.*.*.*.*.*.*){30}`          | 90 ms        |
//! | `(a{0,99}){1,101}`                    | 825 ms       |
//! | `(a{0,70}){0,70}`                     | 130 ms       |
//! | `(a?a?…(100 times)…Q){99}`            | 1.2 s        |
//! | `(b?…(60 times)…Q){1,150}`            | 610 ms       |
//! | `(.?.?.?.?.?.?.?.?.?.?){30}`          | 180 ms       |
//! | `(a?){255}`                           | 53 ms        |
//!
//! The slowest accepted patterns found stay below 60 ms, measured on a busy 2-core machine
//! (cheap patterns take well under 1 ms):
//!
//! | pattern                               | compile time |
//! |---------------------------------------|--------------|
//! | `(a{1,97}b){1,100}`                   | 40–60 ms     |
//! | `(a{1,9}b{1,9}…j{1,9}){100}`          | 22 ms        |
//! | `a{0,255}b{0,255}…j{0,255}`           | 22 ms        |
//! | `(x{1,10}\|y{1,10}\|z{1,10}){1,255}`| 14 ms        |
//! | `(((a\|b){1,20}){1,20}){1,8}`        | 11 ms        |
//! | `a?b?…(128 times)`                    | 11 ms        |
//! | `((a\|b){1,255}){1,10}`              | 8 ms         |
//! | `.*.*…(128 times)`                    | 4 ms         |
//! | `(a{100}){99}`                        | 3.5 ms       |
//!
//! Unbounded and optional pieces are harmless outside counted repetitions (the pattern's
//! length bounds how many there are) and inside `*`/`+` (`((.*)*)*`: 0.1 ms).

/// Longest accepted pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 256;
/// Largest accepted size estimate: roughly the automaton states the pattern expands to, with
/// counted repetitions multiplied out (`(a{100}){100}` is 10,000). PostgreSQL refuses patterns
/// somewhere above 25,000 ("regular expression is too complex"); this stays well below.
pub const MAX_PATTERN_SIZE: u64 = 10_000;

/// Checks `pattern` against the common subset and returns the form to store in a
/// [`crate::query::TextMatch`] of op `Regex`. The error says what is wrong, for a 400.
pub fn validate(pattern: &str) -> Result<String, String> {
    let count = pattern.chars().count();
    if count == 0 {
        return Err("the regular expression is empty".into());
    }
    if count > MAX_PATTERN_CHARS {
        return Err(format!(
            "the regular expression must be at most {MAX_PATTERN_CHARS} characters, got {count}"
        ));
    }
    check_subset(pattern)?;
    let stored = format!("(?s){pattern}");
    regex::RegexBuilder::new(&stored)
        .size_limit(1 << 20)
        .nest_limit(32)
        .build()
        .map_err(|error| match error {
            regex::Error::Syntax(text) => format!(
                "the regular expression is invalid: {}",
                text.lines().last().unwrap_or_default().trim()
            ),
            _ => "the regular expression is too complex".into(),
        })?;
    Ok(stored)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Start of the pattern, of a group or of a branch, or an anchor: nothing to repeat.
    Nothing,
    Atom,
    Quantifier,
    Lazy,
}

/// Size estimate of one group (or the whole pattern) being scanned, and what it contains that
/// a counted repetition may not repeat.
#[derive(Default)]
struct Size {
    /// Finished alternatives.
    alternatives: u64,
    /// The current alternative.
    current: u64,
    /// The last atom, which a quantifier repeats.
    last: u64,
    /// Whether the last atom contains an unbounded or an optional piece.
    last_kinds: Kinds,
    /// What the whole group contains so far.
    kinds: Kinds,
    /// Whether the current alternative has an atom yet (an empty one matches the empty string).
    branch_has_atom: bool,
}

/// Pieces that PostgreSQL compiles slowly when a counted repetition repeats them.
#[derive(Clone, Copy, Default)]
struct Kinds {
    /// `*`, `+` or `{m,}`.
    unbounded: bool,
    /// Something that can match the empty string: `?`, `*`, `{0,n}`, an empty alternative.
    optional: bool,
}

impl Kinds {
    fn or(self, other: Kinds) -> Kinds {
        Kinds {
            unbounded: self.unbounded || other.unbounded,
            optional: self.optional || other.optional,
        }
    }
}

impl Size {
    fn atom(&mut self, cost: u64, kinds: Kinds) {
        self.current = self.current.saturating_add(cost);
        self.last = cost;
        self.last_kinds = kinds;
        self.kinds = self.kinds.or(kinds);
        self.branch_has_atom = true;
    }

    /// The last atom repeated up to `times` times.
    fn repeat(&mut self, times: u64) {
        let extra = self.last.saturating_mul(times.saturating_sub(1));
        self.current = self.current.saturating_add(extra);
        self.last = self.last.saturating_mul(times);
    }

    /// The quantifier just read makes the last piece unbounded and/or optional.
    fn quantified(&mut self, kinds: Kinds) {
        self.last_kinds = self.last_kinds.or(kinds);
        self.kinds = self.kinds.or(kinds);
    }

    /// The end of the current alternative (at `|` or `)`).
    fn end_branch(&mut self) {
        if !self.branch_has_atom {
            self.kinds.optional = true;
        }
    }

    fn total(&self) -> u64 {
        self.alternatives
            .saturating_add(self.current)
            .saturating_add(1)
    }
}

fn check_subset(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut prev = Prev::Nothing;
    let mut sizes = vec![Size::default()];
    let mut i = 0;
    while i < chars.len() {
        if sizes.iter().any(|s| s.total() > MAX_PATTERN_SIZE) {
            return Err(format!(
                "the regular expression is too complex (its repetitions expand to more than \
                 {MAX_PATTERN_SIZE} states)"
            ));
        }
        let size = sizes.last_mut().expect("the pattern's own size");
        let c = chars[i];
        let at = i + 1;
        match c {
            '\0' => return Err("the regular expression may not contain NUL".into()),
            '\\' => {
                escape(&chars, i)?;
                size.atom(1, Kinds::default());
                i += 2;
                prev = Prev::Atom;
                continue;
            }
            '(' => {
                if chars.get(i + 1) == Some(&'?') {
                    return Err(format!(
                        "`(?` at character {at} is not supported (no flags, lookaround or \
                         special groups)"
                    ));
                }
                sizes.push(Size::default());
                prev = Prev::Nothing;
            }
            '|' => {
                size.end_branch();
                size.alternatives = size.alternatives.saturating_add(size.current);
                size.current = 0;
                size.last = 0;
                size.branch_has_atom = false;
                prev = Prev::Nothing;
            }
            '^' | '$' => prev = Prev::Nothing,
            ')' => {
                // An unbalanced `)` is left to the regex parser below.
                if sizes.len() > 1 {
                    let mut group = sizes.pop().expect("a group");
                    group.end_branch();
                    sizes
                        .last_mut()
                        .expect("the pattern")
                        .atom(group.total(), group.kinds);
                }
                prev = Prev::Atom;
            }
            '[' => {
                i = bracket(&chars, i)?;
                size.atom(1, Kinds::default());
                prev = Prev::Atom;
                continue;
            }
            '*' | '+' | '?' | '{' => {
                match prev {
                    Prev::Nothing => {
                        return Err(format!(
                            "quantifier `{c}` at character {at} repeats nothing"
                        ));
                    }
                    Prev::Quantifier if c == '?' => {
                        prev = Prev::Lazy;
                        i += 1;
                        continue;
                    }
                    Prev::Quantifier | Prev::Lazy => {
                        return Err(format!(
                            "quantifier `{c}` at character {at} follows another quantifier"
                        ));
                    }
                    Prev::Atom => {}
                }
                if c == '{' {
                    let (next, repetition) = bounds(&chars, i)?;
                    if repetition.counted() {
                        counted_may_repeat(size.last_kinds, at)?;
                    }
                    size.repeat(repetition.copies());
                    size.quantified(repetition.kinds());
                    i = next;
                    prev = Prev::Quantifier;
                    continue;
                }
                size.quantified(Kinds {
                    unbounded: c != '?',
                    optional: c != '+',
                });
                prev = Prev::Quantifier;
            }
            _ => {
                size.atom(1, Kinds::default());
                prev = Prev::Atom;
            }
        }
        i += 1;
    }
    if sizes.iter().any(|s| s.total() > MAX_PATTERN_SIZE) {
        return Err(format!(
            "the regular expression is too complex (its repetitions expand to more than \
             {MAX_PATTERN_SIZE} states)"
        ));
    }
    Ok(())
}

/// `\` must escape ASCII punctuation.
fn escape(chars: &[char], i: usize) -> Result<(), String> {
    match chars.get(i + 1) {
        Some(next) if next.is_ascii_punctuation() && !matches!(next, '<' | '>') => Ok(()),
        Some(next) => Err(format!(
            "the escape `\\{next}` at character {} is not supported: `\\` may only precede \
             ASCII punctuation other than `<` and `>`",
            i + 1
        )),
        None => Err("the regular expression ends with a lone `\\`".into()),
    }
}

/// A bracket expression starting at `i`; returns the index after its `]`.
fn bracket(chars: &[char], start: usize) -> Result<usize, String> {
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            ']' => return Ok(i + 1),
            '\\' => {
                escape(chars, i)?;
                i += 2;
                continue;
            }
            '[' => {
                return Err(format!(
                    "`[` inside a bracket expression at character {} is not supported \
                     (no nested classes, `[:name:]`, `[.x.]` or `[=x=]`)",
                    i + 1
                ));
            }
            c @ ('&' | '-' | '~') if chars.get(i + 1) == Some(&c) => {
                return Err(format!(
                    "`{c}{c}` inside a bracket expression at character {} is not supported",
                    i + 1
                ));
            }
            '\0' => return Err("the regular expression may not contain NUL".into()),
            _ => {}
        }
        i += 1;
    }
    Err(format!(
        "the bracket expression at character {} is not closed",
        start + 1
    ))
}

/// A counted repetition that copies its atom more than once may not repeat an unbounded or
/// optional piece: PostgreSQL takes seconds to compile those (see the calibration above).
fn counted_may_repeat(kinds: Kinds, at: usize) -> Result<(), String> {
    if kinds.unbounded {
        return Err(format!(
            "the counted repetition at character {at} repeats an unbounded quantifier (`*`, `+` \
             or `{{m,}}`), which PostgreSQL takes too long to compile; put the unbounded \
             quantifier outside the counted repetition"
        ));
    }
    if kinds.optional {
        return Err(format!(
            "the counted repetition at character {at} repeats something that can match the \
             empty string (`?`, `*`, `{{0,n}}` or an empty alternative), which PostgreSQL \
             takes too long to compile; count something that matches at least one character \
             (`a{{0,9}}` instead of `(a?){{9}}`)"
        ));
    }
    Ok(())
}

/// The bounds of `{m}`, `{m,}` or `{m,n}`.
#[derive(Clone, Copy)]
struct Repetition {
    min: u64,
    /// None for `{m,}`.
    max: Option<u64>,
}

impl Repetition {
    /// Whether it copies its atom more than once: `{m}` or `{m,n}` with n > 1, `{m,}` with
    /// m > 1 (`{1,}` is `+`).
    fn counted(self) -> bool {
        self.max.unwrap_or(self.min) > 1
    }

    /// How many copies of its atom the repetition costs: n, or m + 1 for `{m,}`.
    fn copies(self) -> u64 {
        self.max.unwrap_or(self.min + 1).max(1)
    }

    fn kinds(self) -> Kinds {
        Kinds {
            unbounded: self.max.is_none(),
            optional: self.min == 0,
        }
    }
}

/// `{m}`, `{m,}` or `{m,n}` at `start`, numbers at most 255; returns the index after `}` and
/// the bounds.
fn bounds(chars: &[char], start: usize) -> Result<(usize, Repetition), String> {
    let bad = || {
        format!(
            "the repetition at character {} must be {{m}}, {{m,}} or {{m,n}} with m <= n <= 255",
            start + 1
        )
    };
    let mut i = start + 1;
    let mut numbers = Vec::new();
    let mut current = String::new();
    loop {
        match chars.get(i) {
            Some(c) if c.is_ascii_digit() => current.push(*c),
            Some(',') if numbers.is_empty() => {
                numbers.push(current.clone());
                current.clear();
            }
            Some('}') => {
                numbers.push(current);
                break;
            }
            _ => return Err(bad()),
        }
        i += 1;
        if current.len() > 3 {
            return Err(bad());
        }
    }
    let parse = |s: &String| s.parse::<u64>().ok().filter(|n| *n <= 255);
    let repetition = match numbers.as_slice() {
        [m] => {
            let m = parse(m).ok_or_else(bad)?;
            Repetition {
                min: m,
                max: Some(m),
            }
        }
        [m, n] if n.is_empty() => Repetition {
            min: parse(m).ok_or_else(bad)?,
            max: None,
        },
        [m, n] => {
            let (m, n) = (parse(m).ok_or_else(bad)?, parse(n).ok_or_else(bad)?);
            if m > n {
                return Err(bad());
            }
            Repetition {
                min: m,
                max: Some(n),
            }
        }
        _ => return Err(bad()),
    };
    Ok((i + 1, repetition))
}

/// Translates an SQL `SIMILAR TO` pattern (escape character `\`) into the subset: the match is
/// anchored at both ends, `%` is `.*`, `_` is `.`, `.`, `^` and `$` are literal, `\x` is a
/// literal `x`, and `|`, `*`, `+`, `?`, `{m,n}`, `( )` and `[...]` keep their meaning. `%` and
/// `_` inside a bracket expression are refused (their meaning there differs between
/// implementations). The result is validated like any pattern.
pub fn similar_to(pattern: &str) -> Result<String, String> {
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(format!(
            "the pattern must be at most {MAX_PATTERN_CHARS} characters"
        ));
    }
    let mut out = String::from("^(");
    let mut in_bracket = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) if next.is_ascii_punctuation() && !matches!(next, '<' | '>') => {
                    out.push('\\');
                    out.push(next);
                }
                Some(next) => out.push(next),
                None => return Err("the pattern ends with a lone `\\`".into()),
            },
            '[' if !in_bracket => {
                in_bracket = true;
                out.push('[');
                for first in ['^', ']'] {
                    if chars.peek() == Some(&first) {
                        out.push(first);
                        chars.next();
                    }
                }
            }
            ']' if in_bracket => {
                in_bracket = false;
                out.push(']');
            }
            '%' | '_' if in_bracket => {
                return Err(format!(
                    "`{c}` inside a bracket expression is not supported"
                ));
            }
            _ if in_bracket => out.push(c),
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '.' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push_str(")$");
    validate(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(pattern: &str) {
        assert!(
            validate(pattern).is_ok(),
            "{pattern}: {:?}",
            validate(pattern)
        );
    }

    fn refused(pattern: &str, reason: &str) {
        let error = validate(pattern).unwrap_err();
        assert!(error.contains(reason), "{pattern}: {error}");
    }

    #[test]
    fn the_common_subset_is_accepted() {
        for pattern in [
            "^ann",
            "a.c$",
            "(ab|cd)+x?",
            "[a-z0-9]{2,5}",
            "[^]a]*?",
            "x{3}",
            "x{3,}",
            r"\.\(\\",
            "[\\]]",
            "é+",
        ] {
            ok(pattern);
        }
        assert_eq!(validate("a").unwrap(), "(?s)a");
    }

    #[test]
    fn everything_else_is_refused_with_a_reason() {
        refused("", "empty");
        refused(&"a".repeat(257), "at most 256 characters, got 257");
        refused(r"\d+", "escape `\\d`");
        refused(r"(a)\1", "escape `\\1`");
        refused("(?i)a", "`(?`");
        refused("(?=a)", "`(?`");
        refused("(?P<n>a)", "`(?`");
        refused("[[:alpha:]]", "`[` inside a bracket");
        refused("[a&&b]", "`&&`");
        refused("[a--b]", "`--`");
        refused("*a", "repeats nothing");
        refused("(*a)", "repeats nothing");
        refused("a|*", "repeats nothing");
        refused("^*", "repeats nothing");
        refused("a**", "follows another quantifier");
        refused("a*??", "follows another quantifier");
        refused("a{256}", "m <= n <= 255");
        refused("a{3,2}", "m <= n <= 255");
        refused("a{x}", "m <= n <= 255");
        refused("a{99999999999}", "m <= n <= 255");
        refused("[abc", "not closed");
        refused("(ab", "invalid");
        refused("a)", "invalid");
        refused("[z-a]", "invalid");
        refused("ab\\", "lone");
        refused("a\0b", "NUL");
        for too_complex in [
            "(a{255}){255}",
            "((a|b){1,255}){1,255}",
            "(((a{1,200}){1,200}){1,200})",
            "(a{100}){101}",
            "x(a|b{255}){50}",
        ] {
            refused(too_complex, "too complex");
        }
        // What PostgreSQL still accepts easily.
        for fine in ["(a{50}){100}", "a{255}b{255}c{255}", "((a|b){1,255}){1,10}"] {
            ok(fine);
        }
    }

    #[test]
    fn counted_repetitions_of_what_postgres_compiles_slowly_are_refused() {
        for unbounded in [
            "(.*.*.*.*.*.*.*.*.*.*){100}",
            "(.*.*.*.*.*.*.*.*.*.*){50}",
            "(a+){2}",
            "(a.*){100}",
            "(b{2,}){3}",
            "((a*)){1,2}",
            "(.*){5,}",
        ] {
            refused(unbounded, "repeats an unbounded quantifier");
        }
        for optional in [
            "(a?){255}",
            "(a{0,99}){1,101}",
            "(a?b?Q){99}",
            "(x(|a)){3}",
            "(a|){3}",
            "(^){2}",
            "((a?)){2,}",
        ] {
            refused(optional, "can match the empty string");
        }
        assert!(
            similar_to("(%){100}")
                .unwrap_err()
                .contains("repeats an unbounded quantifier")
        );
        // A single copy, or unbounded and optional pieces outside counted repetitions.
        for fine in [
            "(a*){1}",
            "(a*){0,1}",
            "(a*)+",
            "(a?){1,}",
            "((.*)*)*",
            ".*a?b?c*",
            "(ab?c)+x{0,255}",
            "(a{1,97}b){1,100}",
            "((a{2}b{3}){5}c){50}",
            // The slowest accepted patterns of the calibration.
            "(a{1,9}b{1,9}c{1,9}d{1,9}e{1,9}f{1,9}g{1,9}h{1,9}i{1,9}j{1,9}){100}",
            "a{0,255}b{0,255}c{0,255}d{0,255}e{0,255}f{0,255}g{0,255}h{0,255}i{0,255}j{0,255}",
            "(x{1,10}|y{1,10}|z{1,10}){1,255}",
            "(((a|b){1,20}){1,20}){1,8}",
            &"a?".repeat(128),
            &".*".repeat(128),
            "(a{100}){99}",
        ] {
            ok(fine);
        }
    }

    #[test]
    fn similar_to_is_anchored_with_sql_wildcards() {
        assert_eq!(similar_to("%ann_").unwrap(), "(?s)^(.*ann.)$");
        assert_eq!(similar_to("a.b|c%").unwrap(), r"(?s)^(a\.b|c.*)$");
        assert_eq!(similar_to(r"50\%").unwrap(), r"(?s)^(50\%)$");
        assert_eq!(similar_to("[ab]+").unwrap(), "(?s)^([ab]+)$");
        assert!(similar_to("[%]").is_err());
        assert!(similar_to("x\\").is_err());
        assert!(similar_to("(a").is_err());
    }
}
