/// The case folding behind every ignore-case comparison. It runs once, in Rust, when a value is
/// stored (into a `*_lower` column) and when a query value is compiled, so that SQLite and
/// PostgreSQL agree on non-ASCII text (SQLite's own `lower()` only folds ASCII).
pub fn fold_case(text: &str) -> String {
    text.to_lowercase()
}

/// What is wrong with a piece of text a client names or describes something with, if anything:
/// a NUL, which PostgreSQL cannot store, or any other control character (C0, DEL, C1: newlines
/// and tabs included), which would reach whoever reads the text on a terminal, e.g. through
/// `userdir token list`, as escape sequences or forged lines.
pub fn refused_characters(text: &str) -> Option<&'static str> {
    if text.contains('\0') {
        Some("must not contain NUL characters")
    } else if text.chars().any(char::is_control) {
        Some("must not contain control characters (newlines, tabs, escapes)")
    } else {
        None
    }
}

/// `text` fit for a terminal: every control character spelled out as Rust would (`\n`,
/// `\u{1b}`), the rest as is. For text stored before [`refused_characters`], or written by SQL.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_and_printed_escaped() {
        assert_eq!(refused_characters("Zoë 👩‍👩‍👧 \u{202e}x"), None);
        assert_eq!(
            refused_characters("a\0b"),
            Some("must not contain NUL characters")
        );
        for text in ["\u{1b}[2J", "a\nb", "tab\t", "\r", "\u{7f}", "\u{9b}31m"] {
            assert!(
                refused_characters(text).unwrap().contains("control"),
                "{text:?}"
            );
        }
        assert_eq!(printable("plain é"), "plain é");
        assert_eq!(printable("\u{1b}[2Jx\ny\u{9b}"), "\\u{1b}[2Jx\\ny\\u{9b}");
    }

    #[test]
    fn folds_beyond_ascii() {
        assert_eq!(fold_case("ÉMILE Zoë ΣΑΣ"), "émile zoë σας");
        assert_eq!(fold_case("already lower"), "already lower");
    }
}
