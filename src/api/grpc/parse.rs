//! Request fields to typed domain values; every error names the field by its JSON name.

use serde_json::Value;

use crate::command::authenticators::{NewIdpLink, NewPassword, NewUsername, PasswordSecret};
use crate::command::contact::{ContactValue, Verification};
use crate::command::users::NewUser;
use crate::domain::{
    Email, Id, Length, Name, Phone, Text, TextError, Timestamp, password, refuse_nul,
    refused_characters,
};
use crate::error::{Error, Result};
use crate::proto::user::v1 as pb;

/// Text of `min..=max` characters without NUL or other control characters
/// (`domain::Text`).
pub fn text(value: &str, field: &str, min: usize, max: usize) -> Result<String> {
    Text::parse(value, Length::new(min, max))
        .map(Text::into_string)
        .map_err(|error| invalid(field, error))
}

/// A password as typed: `min..=max` characters without NUL. Unlike names it may hold control
/// characters: it is never shown to anyone, and refusing them would lock out whoever chose one
/// before the rule (or in the directory its hash was imported from).
pub fn password_text(value: &str, field: &str, min: usize, max: usize) -> Result<String> {
    Length::new(min, max)
        .check(value)
        .and_then(|_| refuse_nul(value))
        .map_err(|error| invalid(field, error))?;
    Ok(value.to_owned())
}

/// The field's error, in the directory's own words.
fn invalid(field: &str, error: TextError) -> Error {
    Error::invalid(field, error.to_string())
}

/// An id named in a request (`domain::Id`), without control characters either, as all text
/// a gRPC request names.
pub fn id<'a>(value: &'a str, field: &str) -> Result<&'a str> {
    Id::parse(value).map_err(|error| invalid(field, error))?;
    if let Some(reason) = refused_characters(value) {
        return Err(Error::invalid(field, reason));
    }
    Ok(value)
}

/// A name (of an organization, role, schema type, authenticator, IdP) or a username: 1 to
/// `max` characters, not blank (`domain::Name`).
pub fn name(value: &str, field: &str, max: usize) -> Result<String> {
    Name::parse(value, max)
        .map(Name::into_string)
        .map_err(|error| invalid(field, error))
}

/// An email address of at most `max` characters (`domain::Email`).
pub fn email(value: &str, field: &str, max: usize) -> Result<String> {
    Email::parse(value, max)
        .map(Email::into_string)
        .map_err(|error| invalid(field, error))
}

/// A phone number (`domain::Phone`).
pub fn phone(value: &str, field: &str) -> Result<String> {
    Phone::parse(value)
        .map(Phone::into_string)
        .map_err(|error| invalid(field, error))
}

fn verification(choice: Option<Verification>) -> Verification {
    // Without a choice, a code is created for a sender, as ZITADEL does.
    choice.unwrap_or(Verification::SendCode { url_template: None })
}

fn send_code(code: &pb::SendVerificationCode, field: &str) -> Result<Verification> {
    let url_template = match &code.url_template {
        Some(template) => Some(text(
            template,
            &format!("{field}.sendCode.urlTemplate"),
            1,
            200,
        )?),
        None => None,
    };
    Ok(Verification::SendCode { url_template })
}

pub fn set_email(email: &pb::SetEmail, field: &str, max: usize) -> Result<ContactValue> {
    use pb::set_email::Verification as V;
    let choice = match &email.verification {
        Some(V::SendCode(code)) => Some(send_code(code, field)?),
        Some(V::ReturnCode(_)) => Some(Verification::ReturnCode),
        Some(V::IsVerified(true)) => Some(Verification::Verified),
        Some(V::IsVerified(false)) | None => None,
    };
    Ok(ContactValue {
        value: self::email(&email.address, &format!("{field}.address"), max)?,
        verification: verification(choice),
    })
}

pub fn set_phone(phone: &pb::SetPhone, field: &str) -> Result<ContactValue> {
    use pb::set_phone::Verification as V;
    let choice = match &phone.verification {
        Some(V::SendCode(code)) => Some(send_code(code, field)?),
        Some(V::ReturnCode(_)) => Some(Verification::ReturnCode),
        Some(V::IsVerified(true)) => Some(Verification::Verified),
        Some(V::IsVerified(false)) | None => None,
    };
    Ok(ContactValue {
        value: self::phone(&phone.number, &format!("{field}.number"))?,
        verification: verification(choice),
    })
}

/// A password to set: a plain one within the length limits (hashed later, once the write is
/// known to apply), or an imported hash within the cost ceiling.
pub fn new_password(password: &pb::SetPassword, field: &str) -> Result<NewPassword> {
    use pb::set_password::Type;
    let secret = match &password.r#type {
        Some(Type::Password(plain)) => PasswordSecret::Plain(password_text(
            plain,
            &format!("{field}.password"),
            password::MIN_LENGTH,
            password::MAX_LENGTH,
        )?),
        Some(Type::Hash(hash)) => {
            let field = format!("{field}.hash");
            text(hash, &field, 1, 200)?;
            PasswordSecret::Hash(
                password::check_import(hash)
                    .map_err(|reason| Error::invalid(field, reason))?
                    .to_owned(),
            )
        }
        None => return Err(Error::invalid(field, "must set password or hash")),
    };
    Ok(NewPassword {
        secret,
        change_required: password.change_required,
    })
}

/// Most usernames one user may have.
pub const MAX_USERNAMES: usize = 20;

/// The fields of a user to create: CreateUserRequest's, which an import record shares.
pub struct UserFields<'a> {
    pub organization_id: &'a str,
    pub schema_id: &'a str,
    pub data: Option<&'a prost_types::Struct>,
    pub contact: Option<&'a pb::SetContact>,
    pub usernames: &'a [pb::SetUsername],
    pub password: Option<&'a pb::SetPassword>,
}

impl<'a> From<&'a pb::CreateUserRequest> for UserFields<'a> {
    fn from(r: &'a pb::CreateUserRequest) -> Self {
        Self {
            organization_id: &r.organization_id,
            schema_id: &r.schema_id,
            data: r.data.as_ref(),
            contact: r.contact.as_ref(),
            usernames: &r.usernames,
            password: r.password.as_ref(),
        }
    }
}

/// A user to create (CreateUser, and every record of an import), `max_text` characters at
/// most in names, usernames and addresses.
pub fn new_user(r: UserFields<'_>, max_text: usize) -> Result<NewUser> {
    let mut usernames = Vec::with_capacity(r.usernames.len());
    for (i, name) in r.usernames.iter().enumerate() {
        usernames.push(NewUsername {
            username: self::name(
                &name.username,
                &format!("usernames[{i}].username"),
                max_text,
            )?,
            organization_specific: name.is_organization_specific,
        });
    }
    if usernames.len() > MAX_USERNAMES {
        return Err(Error::invalid(
            "usernames",
            format!("at most {MAX_USERNAMES} usernames"),
        ));
    }
    let contact = r.contact.cloned().unwrap_or_default();
    Ok(NewUser {
        organization_id: id(r.organization_id, "organizationId")?.to_owned(),
        schema_id: id(r.schema_id, "schemaId")?.to_owned(),
        data: match r.data {
            Some(data) => user_data(data, max_text)?,
            None => serde_json::json!({}),
        },
        email: contact
            .email
            .as_ref()
            .map(|e| set_email(e, "contact.email", max_text))
            .transpose()?,
        phone: contact
            .phone
            .as_ref()
            .map(|p| set_phone(p, "contact.phone"))
            .transpose()?,
        usernames,
        password: match r.password {
            Some(password) => Some(new_password(password, "password")?),
            None => None,
        },
    })
}

/// An IdP link (AddIDPLink, and an import record's links); `field` prefixes the names of its
/// fields (`""` for a request's own, `idpLinks[0].` in a record).
pub fn idp_link(
    field: &str,
    idp_id: &str,
    idp_name: &str,
    linked_user_id: &str,
    linked_username: &str,
    max_text: usize,
) -> Result<NewIdpLink> {
    Ok(NewIdpLink {
        idp_id: id(idp_id, &format!("{field}idpId"))?.to_owned(),
        idp_name: name(idp_name, &format!("{field}idpName"), max_text)?,
        linked_user_id: id(linked_user_id, &format!("{field}linkedUserId"))?.to_owned(),
        linked_username: text(
            linked_username,
            &format!("{field}linkedUsername"),
            0,
            max_text,
        )?,
    })
}

/// A TOTP authenticator's name; empty means the default, "Authenticator app".
pub fn totp_name(value: &str, field: &str, max_text: usize) -> Result<String> {
    if value.is_empty() {
        return Ok("Authenticator app".to_owned());
    }
    name(value, field, max_text)
}

/// A verification code as typed: 1 to 20 characters.
pub fn code(value: &str, field: &str) -> Result<String> {
    text(value.trim(), field, 1, 20)
}

pub fn timestamp(value: &prost_types::Timestamp, field: &str) -> Result<Timestamp> {
    if !(0..1_000_000_000).contains(&value.nanos) {
        return Err(Error::invalid(field, "nanos must be within 0..1e9"));
    }
    value
        .seconds
        .checked_mul(1_000_000)
        .and_then(|micros| micros.checked_add(i64::from(value.nanos / 1000)))
        .map(Timestamp::from_micros)
        .ok_or_else(|| Error::invalid(field, "is out of range"))
}

/// Keys of user data that make the name a user goes by (`domain::display_name`), which is stored
/// and indexed as text.
const NAME_KEYS: [&str; 3] = ["name", "givenName", "familyName"];

/// User data as JSON. The strings that make the user's name (`name`, `givenName`, `familyName`)
/// are stored as text, so they must be at most `max` characters without NUL; the rest of the
/// data is JSON and may hold anything.
pub fn user_data(value: &prost_types::Struct, max: usize) -> Result<Value> {
    let data = json(value, "data")?;
    for key in NAME_KEYS {
        if let Some(Value::String(text)) = data.get(key) {
            self::text(text, &format!("data.{key}"), 0, max)?;
        }
    }
    Ok(data)
}

/// A `google.protobuf.Struct` (the request's `field`) as the JSON object it stands for. No
/// string or key may contain NUL: PostgreSQL's JSON types cannot hold `\u0000` (SQLite's
/// could, and both must agree).
pub fn json(value: &prost_types::Struct, field: &str) -> Result<Value> {
    let value = json_object(value);
    check_nul(&value, field)?;
    Ok(value)
}

fn check_nul(value: &Value, path: &str) -> Result<()> {
    match value {
        Value::String(text) if text.contains('\0') => {
            Err(Error::invalid(path, "must not contain NUL characters"))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_nul(item, &format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
            if key.contains('\0') {
                return Err(Error::invalid(path, "keys must not contain NUL characters"));
            }
            check_nul(item, &format!("{path}.{key}"))
        }),
        _ => Ok(()),
    }
}

/// A `google.protobuf.Struct` as the JSON object it stands for. Whole numbers become JSON
/// integers, so `{"n": 3}` stays `3`, not `3.0`.
fn json_object(value: &prost_types::Struct) -> Value {
    Value::Object(
        value
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), json_value(v)))
            .collect(),
    )
}

fn json_value(value: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Value::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(list)) => Value::Array(list.values.iter().map(json_value).collect()),
        Some(Kind::StructValue(object)) => json_object(object),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_phones() {
        assert!(email("gigi@example.com", "e", 200).is_ok());
        assert!(email("no-at-sign", "e", 200).is_err());
        assert!(email("two@@example.com", "e", 200).is_err());
        assert!(email("space @example.com", "e", 200).is_err());
        assert_eq!(
            email("gigi@example.com", "e", 10).unwrap_err().to_string(),
            "e: must be at most 10 characters, got 16"
        );
        assert!(phone("+41 79 123 45 67", "p").is_ok());
        assert!(phone("+41-79", "p").is_ok());
        assert!(phone("call me", "p").is_err());
        assert_eq!(
            phone("+4179123456789012345678", "p")
                .unwrap_err()
                .to_string(),
            "p: must be at most 20 characters, got 23"
        );
    }

    #[test]
    fn json_refuses_nul_anywhere_and_names_the_path() {
        use prost_types::value::Kind;
        let string = |s: &str| prost_types::Value {
            kind: Some(Kind::StringValue(s.into())),
        };
        let object = |fields: Vec<(&str, prost_types::Value)>| prost_types::Struct {
            fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        };
        let list = prost_types::Value {
            kind: Some(Kind::ListValue(prost_types::ListValue {
                values: vec![string("ok"), string("a\0b")],
            })),
        };
        let nested = object(vec![(
            "address",
            prost_types::Value {
                kind: Some(Kind::StructValue(object(vec![("lines", list)]))),
            },
        )]);
        assert_eq!(
            json(&nested, "data").unwrap_err().to_string(),
            "data.address.lines[1]: must not contain NUL characters"
        );
        let key = object(vec![("a\0", string("x"))]);
        assert_eq!(
            json(&key, "schema").unwrap_err().to_string(),
            "schema: keys must not contain NUL characters"
        );
        assert!(json(&object(vec![("a", string("%_\\'"))]), "data").is_ok());
    }

    #[test]
    fn user_data_checks_only_the_name_strings() {
        let data = |value: serde_json::Value| {
            let serde_json::Value::Object(map) = value else {
                unreachable!()
            };
            prost_types::Struct {
                fields: map
                    .into_iter()
                    .map(|(k, v)| {
                        let kind = match v {
                            Value::String(s) => prost_types::value::Kind::StringValue(s),
                            _ => prost_types::value::Kind::NumberValue(1.0),
                        };
                        (k, prost_types::Value { kind: Some(kind) })
                    })
                    .collect(),
            }
        };
        let ok = data(serde_json::json!({"name": "abc", "other": "xyz-long", "n": 1}));
        assert!(user_data(&ok, 3).is_ok());
        let long = data(serde_json::json!({"givenName": "abcd"}));
        assert_eq!(
            user_data(&long, 3).unwrap_err().to_string(),
            "data.givenName: must be at most 3 characters, got 4"
        );
        let nul = data(serde_json::json!({"familyName": "a\u{0}"}));
        assert_eq!(
            user_data(&nul, 3).unwrap_err().to_string(),
            "data.familyName: must not contain NUL characters"
        );
    }
}
