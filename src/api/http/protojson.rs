//! JSON written as protojson writes it. serde_json writes every `f64` with a fraction
//! (`19998.0`); protojson (and so grpc-gateway, and ZITADEL's gateway) writes a double whose
//! value is integral as an integer (`19998`), which is also how the gRPC answer's `Struct` reads
//! back in a JavaScript or Python client. Only the spelling changes: the value is the same
//! double.

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, Serializer};

/// Below this magnitude protojson writes an integral double in plain digits; from here on Go
/// switches to exponent notation and so does serde_json (`1e+21`).
const PLAIN_DIGITS_BELOW: f64 = 1e21;

/// serde_json's compact output, with integral doubles written without a fraction.
#[derive(Clone, Copy, Default)]
pub struct ProtoJsonFormatter;

impl Formatter for ProtoJsonFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        if value.fract() == 0.0 && value.abs() < PLAIN_DIGITS_BELOW {
            // `Display` of an integral f64 is its exact digits ("-0" for negative zero, as Go).
            write!(writer, "{value}")
        } else {
            CompactFormatter.write_f64(writer, value)
        }
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        if value.fract() == 0.0 && f64::from(value).abs() < PLAIN_DIGITS_BELOW {
            write!(writer, "{value}")
        } else {
            CompactFormatter.write_f32(writer, value)
        }
    }
}

/// A serializer writing protojson's spelling into `out`.
pub fn serializer(out: &mut Vec<u8>) -> Serializer<&mut Vec<u8>, ProtoJsonFormatter> {
    Serializer::with_formatter(out, ProtoJsonFormatter)
}

/// `value` as protojson's bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    value.serialize(&mut serializer(&mut out))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written(value: serde_json::Value) -> String {
        String::from_utf8(to_vec(&value).unwrap()).unwrap()
    }

    #[test]
    fn integral_doubles_are_written_as_integers() {
        assert_eq!(written(json!(19998.0)), "19998");
        assert_eq!(written(json!(-3.0)), "-3");
        assert_eq!(written(json!(0.0)), "0");
        assert_eq!(written(json!(9007199254740993.0)), "9007199254740992");
        assert_eq!(written(json!(1e20)), "100000000000000000000");
    }

    #[test]
    fn other_numbers_keep_serde_json_spelling() {
        assert_eq!(written(json!(1.5)), "1.5");
        assert_eq!(written(json!(0.1)), "0.1");
        assert_eq!(written(json!(1e21)), "1e+21");
        assert_eq!(written(json!(-2.5e-7)), "-2.5e-7");
        assert_eq!(written(json!(42)), "42");
        assert_eq!(
            written(json!({"a": [1.0, "x", true, null]})),
            r#"{"a":[1,"x",true,null]}"#
        );
    }
}
