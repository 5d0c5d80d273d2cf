//! JSON Schema validation of user data, with a well-kept validator. Remote `$ref`s are not
//! fetched (the crate is built without resolvers), so a schema cannot make the server call out.

use serde_json::Value;

/// Checks that `schema` is a usable JSON Schema; the error explains why not.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    if !schema.is_object() {
        return Err("must be a JSON object".into());
    }
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// A schema compiled once, for validating many users' data against it (an import validates
/// every record of a schema revision with one).
pub struct Validator(jsonschema::Validator);

impl Validator {
    pub fn compile(schema: &Value) -> Result<Self, String> {
        jsonschema::validator_for(schema)
            .map(Self)
            .map_err(|e| format!("the schema is invalid: {e}"))
    }

    /// Validates user data; on failure returns the path inside `data` (dotted, e.g.
    /// `address.city`, empty for the root) and the reason.
    pub fn validate(&self, data: &Value) -> Result<(), (String, String)> {
        match self.0.iter_errors(data).next() {
            None => Ok(()),
            Some(error) => {
                let pointer = error.instance_path().to_string();
                let path = pointer
                    .trim_start_matches('/')
                    .split('/')
                    .filter(|part| !part.is_empty())
                    .map(|part| part.replace("~1", "/").replace("~0", "~"))
                    .collect::<Vec<_>>()
                    .join(".");
                Err((path, error.to_string()))
            }
        }
    }
}

/// Validates user data against `schema` (compiled for this one check); see
/// [`Validator::validate`].
pub fn validate(schema: &Value, data: &Value) -> Result<(), (String, String)> {
    Validator::compile(schema)
        .map_err(|reason| (String::new(), reason))?
        .validate(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_path_of_the_violation() {
        let schema = json!({"type": "object", "properties": {"address": {"type": "object", "properties": {"zip": {"type": "string"}}}}});
        assert!(validate(&schema, &json!({"address": {"zip": "8000"}})).is_ok());
        let (path, reason) = validate(&schema, &json!({"address": {"zip": 8000}})).unwrap_err();
        assert_eq!(path, "address.zip");
        assert!(reason.contains("string"), "{reason}");
        assert!(check_schema(&json!({"type": "no-such-type"})).is_err());
        assert!(check_schema(&json!([1])).is_err());
    }
}
