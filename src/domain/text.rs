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
    printable_characters(text).err().map(TextError::reason)
}

/// Why a text value is refused. Each edge renders it in its own dialect's words; `Display` is
/// the directory's own wording (`must not be empty`), which the gRPC edge shows after the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextError {
    /// Fewer characters than `length.min` (for a minimum of 1: empty).
    TooShort { length: Length, chars: usize },
    /// More characters than `length.max`.
    TooLong { length: Length, chars: usize },
    /// A NUL character, which no database here can store (PostgreSQL refuses it in text).
    Nul,
    /// A control character other than NUL (see [`refused_characters`]).
    ControlCharacter,
    /// Only whitespace where a name is needed.
    Blank,
    /// Not `local@domain`.
    NotAnEmail,
    /// Not `+`, digits, spaces and dashes.
    NotAPhoneNumber,
}

impl TextError {
    /// The wording of the errors that carry no numbers.
    fn reason(self) -> &'static str {
        match self {
            TextError::Nul => "must not contain NUL characters",
            TextError::ControlCharacter => {
                "must not contain control characters (newlines, tabs, escapes)"
            }
            TextError::Blank => "must not be blank",
            TextError::NotAnEmail => "is not an email address",
            TextError::NotAPhoneNumber => "is not a phone number (+, digits, spaces, dashes)",
            TextError::TooShort { length, .. } if length.min <= 1 => "must not be empty",
            TextError::TooShort { .. } | TextError::TooLong { .. } => "has the wrong length",
        }
    }
}

impl std::fmt::Display for TextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            TextError::TooShort { length, .. } if length.min > 1 => {
                write!(f, "must be at least {} characters", length.min)
            }
            TextError::TooLong { length, chars } => {
                write!(f, "must be at most {} characters, got {chars}", length.max)
            }
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for TextError {}

/// How many characters (not bytes) a text value may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Length {
    pub min: usize,
    pub max: usize,
}

impl Length {
    pub const fn new(min: usize, max: usize) -> Self {
        Self { min, max }
    }

    /// The value's length in characters, if it is within the bounds.
    pub fn check(self, value: &str) -> Result<usize, TextError> {
        let chars = value.chars().count();
        if chars < self.min {
            return Err(TextError::TooShort {
                length: self,
                chars,
            });
        }
        if chars > self.max {
            return Err(TextError::TooLong {
                length: self,
                chars,
            });
        }
        Ok(chars)
    }
}

/// No NUL: every value a query compares with stored text, or that is stored, obeys this, since
/// no stored value can hold one.
pub fn refuse_nul(value: &str) -> Result<(), TextError> {
    if value.contains('\0') {
        Err(TextError::Nul)
    } else {
        Ok(())
    }
}

fn printable_characters(value: &str) -> Result<(), TextError> {
    refuse_nul(value)?;
    if value.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    Ok(())
}

/// Text a client names or describes something with, to be stored and shown: within its length,
/// without NUL or other control characters. The length is checked first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn parse(value: &str, length: Length) -> Result<Self, TextError> {
        length.check(value)?;
        printable_characters(value)?;
        Ok(Self(value.to_owned()))
    }
}

/// A value a search compares stored text with: within its length and without NUL (which no
/// stored value holds). Control characters are allowed: text stored before they were refused
/// may hold them, and a search for them must still find it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub fn parse(value: &str, length: Length) -> Result<Self, TextError> {
        length.check(value)?;
        refuse_nul(value)?;
        Ok(Self(value.to_owned()))
    }
}

/// An id named in a request, of anything: 1 to [`Id::MAX_CHARS`] characters without NUL. Ids
/// are generated (UUIDv7) or imported, never longer, so a longer one names nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Id(String);

impl Id {
    /// The longest id, in characters.
    pub const MAX_CHARS: usize = 200;
    pub const LENGTH: Length = Length::new(1, Self::MAX_CHARS);

    pub fn parse(value: &str) -> Result<Self, TextError> {
        SearchText::parse(value, Self::LENGTH).map(|text| Self(text.0))
    }
}

/// A name (of an organization, role, schema type, authenticator, IdP) or a username: [`Text`]
/// of 1 to `max` characters that is not blank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(value: &str, max: usize) -> Result<Self, TextError> {
        let Text(value) = Text::parse(value, Length::new(1, max))?;
        if value.trim().is_empty() {
            return Err(TextError::Blank);
        }
        Ok(Self(value))
    }
}

/// An email address: [`Text`] of 1 to `max` characters with one `@` and text on both sides, no
/// whitespace, and a domain that neither starts nor ends with a dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str, max: usize) -> Result<Self, TextError> {
        let Text(value) = Text::parse(value, Length::new(1, max))?;
        let valid = match value.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !value.chars().any(char::is_whitespace)
            }
            None => false,
        };
        if !valid {
            return Err(TextError::NotAnEmail);
        }
        Ok(Self(value))
    }
}

/// A phone number: an optional `+`, then digits with optional spaces or dashes (at least 3
/// digits), at most [`Phone::MAX_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// The longest phone number, in characters.
    pub const MAX_CHARS: usize = 20;
    pub const LENGTH: Length = Length::new(1, Self::MAX_CHARS);

    pub fn parse(value: &str) -> Result<Self, TextError> {
        let Text(value) = Text::parse(value, Self::LENGTH)?;
        let rest = value.strip_prefix('+').unwrap_or(&value);
        let digits = rest.chars().filter(char::is_ascii_digit).count();
        if digits < 3
            || !rest
                .chars()
                .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
        {
            return Err(TextError::NotAPhoneNumber);
        }
        Ok(Self(value))
    }
}

macro_rules! text_value {
    ($($kind:ident),*) => {
        $(impl $kind {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $kind {
            fn as_ref(&self) -> &str {
                &self.0
            }
        })*
    };
}

text_value!(Text, SearchText, Id, Name, Email, Phone);

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
    fn lengths_count_characters_and_are_checked_before_characters() {
        assert!(Text::parse(&"é".repeat(5), Length::new(1, 5)).is_ok());
        assert_eq!(
            Text::parse("a\0bcdef", Length::new(1, 5)),
            Err(TextError::TooLong {
                length: Length::new(1, 5),
                chars: 7
            })
        );
        assert_eq!(
            Text::parse("a\tb", Length::new(1, 5)),
            Err(TextError::ControlCharacter)
        );
        assert_eq!(
            SearchText::parse("a\tb", Length::new(1, 5)).map(SearchText::into_string),
            Ok("a\tb".to_owned())
        );
        assert_eq!(Id::parse("a\0"), Err(TextError::Nul));
        assert!(Id::parse(&"x".repeat(Id::MAX_CHARS)).is_ok());
        assert!(Id::parse(&"x".repeat(Id::MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn the_directory_wording_of_each_error() {
        let short = |min| TextError::TooShort {
            length: Length::new(min, 9),
            chars: 0,
        };
        assert_eq!(short(1).to_string(), "must not be empty");
        assert_eq!(short(8).to_string(), "must be at least 8 characters");
        assert_eq!(
            Name::parse("gigi@example.com", 10).unwrap_err().to_string(),
            "must be at most 10 characters, got 16"
        );
        assert_eq!(Name::parse("  ", 10), Err(TextError::Blank));
        assert_eq!(
            Email::parse("two@@example.com", 200),
            Err(TextError::NotAnEmail)
        );
        assert!(Email::parse("gigi@example.com", 200).is_ok());
        assert!(Phone::parse("+41 79 123 45 67").is_ok());
        assert_eq!(Phone::parse("call me"), Err(TextError::NotAPhoneNumber));
    }

    #[test]
    fn folds_beyond_ascii() {
        assert_eq!(fold_case("ÉMILE Zoë ΣΑΣ"), "émile zoë σας");
        assert_eq!(fold_case("already lower"), "already lower");
    }
}
