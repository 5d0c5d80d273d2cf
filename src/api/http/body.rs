//! The one pass over a JSON request body before it is bound: it counts the body's JSON values
//! and refuses a key given twice in one object, streaming, without building anything. What
//! passes is a [`JsonBody`], the only thing the binder takes.
//!
//! The byte limit alone does not bound the message bound from a body: every JSON value becomes
//! at least one `prost_reflect::Value`, and inside `google.protobuf.Struct` a whole
//! `DynamicMessage` (about 750 bytes each), so a 2 MB body of a million-element list cost
//! 740 MB before the message could even be measured. Counting first keeps that cost
//! proportional to the limit, and refuses the body before anything is built. Repeated keys are
//! an error as in protojson (serde would silently keep the last one).

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Error, MapAccess, SeqAccess, Visitor};

/// Bytes of message limit per JSON value allowed in a body: the default 4 MiB allows 65,536
/// values (about 50 MB bound, transiently), more than any request of ours needs (a user's data
/// holds at most `domain::MAX_USER_DATA_VALUES`, 32,768).
pub const BYTES_PER_VALUE: usize = 64;
/// The fewest values any body may hold, however small the message limit.
pub const MIN_VALUES: usize = 1024;

/// How many JSON values a body may hold under a message limit of `max_message_bytes`.
pub fn max_values(max_message_bytes: usize) -> usize {
    (max_message_bytes / BYTES_PER_VALUE).max(MIN_VALUES)
}

/// A request body that passed [`check`]: within the value bound, no key given twice.
#[derive(Clone, Copy, Debug)]
pub struct JsonBody<'a>(&'a [u8]);

impl<'a> JsonBody<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }

    /// A part of a body that passed [`check`] as a whole (an element of a streaming body).
    pub(crate) fn walked(part: &'a [u8]) -> Self {
        Self(part)
    }
}

/// Why a body was refused, with the JSON path of the value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// More values than the bound: a size limit (413).
    TooMany(String),
    /// A key given twice in one object: a bad request (400).
    Duplicate(String),
}

/// Refuses a body with more than `max` JSON values (objects, arrays and scalars all count) or a
/// key given twice in one object, naming the first value at fault. Anything else, invalid JSON
/// included, is left to the binder, which reports it better.
pub fn check(body: &[u8], max: usize) -> Result<JsonBody<'_>, Refused> {
    let mut count = Count {
        left: max,
        max,
        fault: None,
    };
    let mut json = serde_json::Deserializer::from_slice(body);
    let walk = Walk {
        path: &Path::Root,
        count: &mut count,
    };
    match walk.deserialize(&mut json) {
        Err(error) if error.is_data() => Err(match count.fault {
            Some(Fault::Duplicate) => Refused::Duplicate(error.to_string()),
            _ => Refused::TooMany(error.to_string()),
        }),
        _ => Ok(JsonBody(body)),
    }
}

struct Count {
    left: usize,
    max: usize,
    /// What stopped the walk, for [`check`] to tell the two refusals apart.
    fault: Option<Fault>,
}

#[derive(Clone, Copy)]
enum Fault {
    TooMany,
    Duplicate,
}

/// Where a value is, built on the stack and formatted only for the error.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => write!(f, "{key}"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

struct Walk<'a, 'c> {
    path: &'a Path<'a>,
    count: &'c mut Count,
}

impl Walk<'_, '_> {
    /// Takes one value from the budget.
    fn take<E: Error>(&mut self) -> Result<(), E> {
        if self.count.left == 0 {
            self.count.fault = Some(Fault::TooMany);
            let at = match self.path {
                Path::Root => String::new(),
                path => format!("{path}: "),
            };
            return Err(E::custom(format!(
                "{at}the request body is too large: it holds more than {} JSON values (one per \
                 {BYTES_PER_VALUE} bytes of the message limit)",
                self.count.max
            )));
        }
        self.count.left -= 1;
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// Visits one value, taking it from the budget and descending into objects and arrays.
/// Scalars are taken when seen; an object or array before its members, so that the error names
/// the first member over the limit.
impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.take()?;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = Path::Key(self.path, &key);
            if seen.contains(&key) {
                self.count.fault = Some(Fault::Duplicate);
                return Err(A::Error::custom(format!(
                    "field {:?} is given twice in the request body",
                    path.to_string()
                )));
            }
            map.next_value_seed(Walk {
                path: &path,
                count: self.count,
            })?;
            seen.insert(key);
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.take()?;
        let mut index = 0;
        while seq
            .next_element_seed(Walk {
                path: &Path::Index(self.path, index),
                count: self.count,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_bool<E: Error>(mut self, _: bool) -> Result<(), E> {
        self.take()
    }
    fn visit_i64<E: Error>(mut self, _: i64) -> Result<(), E> {
        self.take()
    }
    fn visit_u64<E: Error>(mut self, _: u64) -> Result<(), E> {
        self.take()
    }
    fn visit_f64<E: Error>(mut self, _: f64) -> Result<(), E> {
        self.take()
    }
    fn visit_str<E: Error>(mut self, _: &str) -> Result<(), E> {
        self.take()
    }
    fn visit_unit<E: Error>(mut self) -> Result<(), E> {
        self.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(body: &[u8], max: usize) -> Result<(), String> {
        match check(body, max) {
            Ok(_) => Ok(()),
            Err(Refused::TooMany(why)) => Err(why),
            Err(Refused::Duplicate(why)) => Err(format!("duplicate: {why}")),
        }
    }

    #[test]
    fn keys_given_twice_are_refused_at_any_depth() {
        let error = check_err(br#"{"a":[{"b":1,"b":2}]}"#, 100).unwrap_err();
        assert_eq!(
            error,
            r#"duplicate: field "a[0].b" is given twice in the request body at line 1 column 16"#
        );
        assert_eq!(check_err(br#"{"a":{"b":1},"b":{"a":2}}"#, 100), Ok(()));
    }

    #[test]
    fn every_value_counts_and_the_first_one_over_is_named() {
        let body = br#"{"a":[1,{"b":"c"}],"d":null}"#;
        // The object, `a`, 1, `a[1]`, `b`, `d`.
        assert_eq!(check_err(body, 6), Ok(()));
        let error = check_err(body, 5).unwrap_err();
        assert!(
            error.starts_with("d: the request body is too large: it holds more than 5 JSON values"),
            "{error}"
        );
        let error = check_err(br#"{"a":[1,{"b":"c"}]}"#, 3).unwrap_err();
        assert!(error.starts_with("a[1]: "), "{error}");
        let error = check_err(b"[[]]", 1).unwrap_err();
        assert!(error.starts_with("[0]: "), "{error}");
        let error = check_err(b"{}", 0).unwrap_err();
        assert!(
            error.starts_with("the request body is too large"),
            "{error}"
        );
        // Invalid JSON is the binder's to report.
        assert_eq!(check_err(b"{\"a\":", 10), Ok(()));
        assert_eq!(check_err(b"{} {}", 1), Ok(()));
    }

    #[test]
    fn the_bound_follows_the_message_limit() {
        assert_eq!(max_values(4 * 1024 * 1024), 65_536);
        assert_eq!(max_values(1024), MIN_VALUES);
    }
}
