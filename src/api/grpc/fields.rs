//! The rules on request fields, in one table keyed by proto field ([`FIELDS`]), which the
//! OpenAPI generator reads (`api::http::openapi`, through [`schema`]) to write `required`,
//! `minLength`, `maxLength`, `pattern` and oneof constraints into the schemas.
//!
//! Why a table and not proto options or comments: the rules are Rust values ([`Rule`]) built
//! from the very constants the validation uses (`Id::LENGTH`, `Phone::LENGTH`, the password
//! lengths, the server's `max_text_chars`), and each rule's JSON Schema is written next to the
//! `parse` function that enforces it ([`Rule::check`] calls that function), so the numbers and
//! the wording cannot drift apart; a custom proto option would have to repeat the numbers in
//! the `.proto` files, and the limit on text is a server setting that no `.proto` knows. The
//! services still call `parse` at their own call sites (they turn the values into domain
//! types); that a field's entry here matches its call site is checked end to end by
//! schemathesis (`scripts/schemathesis.sh`: a schema-valid request refused, or a
//! schema-invalid one accepted, fails CI), and each rule's schema is checked against its
//! `check` here (`tests::schemas_agree_with_the_checks`).

use serde_json::{Map, Value, json};

use super::parse;
use crate::auth::Permission;
use crate::domain::{Id, Phone, password};
use crate::error::Result;

/// The server's settings that rules depend on.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// `max_text_chars` (`--max-text-length`).
    pub max_text: usize,
    /// The largest page a list answers (`PageLimits::max`).
    pub max_page: u32,
}

/// The longest value, in characters.
#[derive(Clone, Copy, Debug)]
pub enum Max {
    Chars(usize),
    /// The server's `max_text_chars` (`--max-text-length`).
    Text,
}

impl Max {
    fn of(self, max_text: usize) -> usize {
        match self {
            Max::Chars(max) => max,
            Max::Text => max_text,
        }
    }
}

/// What a request field must hold. A rule on a repeated field holds for each element.
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    /// An id (`parse::id`): 1 to 200 characters, no control characters.
    Id,
    /// A name or username (`parse::name`): 1 to max_text characters, printable, not blank.
    Name,
    /// A name that may be left empty for a default (`parse::totp_name`).
    NameOrEmpty,
    /// Printable text (`parse::text`).
    Text { min: usize, max: Max },
    /// An email address (`parse::email`), at most max_text characters.
    Email,
    /// A phone number (`parse::phone`).
    Phone,
    /// A verification code as typed (`parse::code`): 1 to 20 characters, not blank.
    Code,
    /// A password as typed (`parse::password_text`): no NUL.
    Password { min: usize, max: usize },
    /// A value a search compares with (`domain::SearchText`): no NUL.
    Search { min: usize, max: Max },
    /// A list of 1 to `max` ids (`AssignRoleRequest.user_ids`).
    IdList { max: usize },
    /// A list that must not be empty (the queries of an `and` or `or`).
    NonEmptyList,
    /// A list of permission names (`auth::Permission`).
    Permissions,
    /// A page size: at most the server's page maximum (`--max-page-size`; 0 asks for the
    /// default), checked by `search::paging`.
    PageSize,
    /// An offset into a list: at most `i64::MAX` (`search::paging`).
    Offset,
    /// A user state to search for: any but `USER_STATE_UNSPECIFIED` (`search::state`).
    KnownState,
    /// The `ListQuery` of a list that pages by offset only (`directory_service::paging`): its
    /// `pageToken` must be empty.
    OffsetPaging,
    /// A message field that must be set.
    Set,
    /// A oneof of which exactly one member must be set (on the oneof's full name).
    ExactlyOne,
}

/// No control character (C0, DEL, C1: what `char::is_control` finds).
const PRINTABLE: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";
/// Printable with at least one character that is not whitespace.
const NOT_BLANK: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";
/// Empty, or [`NOT_BLANK`].
const EMPTY_OR_NOT_BLANK: &str = r"^$|^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";
/// `local@domain`: one `@`, no whitespace or control characters, a domain neither starting
/// nor ending with a dot (`domain::Email`).
const EMAIL: &str = r"^[^@\s\u0000-\u001F\u007F-\u009F]+@[^@.\s\u0000-\u001F\u007F-\u009F]([^@\s\u0000-\u001F\u007F-\u009F]*[^@.\s\u0000-\u001F\u007F-\u009F])?$";
/// `+`, then digits (three at least), spaces and dashes (`domain::Phone`).
const PHONE: &str = r"^\+?[ -]*[0-9][ -]*[0-9][ -]*[0-9][0-9 -]*$";
/// A code as typed: whitespace around it is dropped, and what is left is [`NOT_BLANK`].
const CODE: &str = r"^\s*[^\s\u0000-\u001F\u007F-\u009F]([^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F])?\s*$";
/// No NUL.
const NO_NUL: &str = r"^[^\u0000]*$";

impl Rule {
    /// Whether a request without the field is refused.
    pub fn required(self) -> bool {
        match self {
            Rule::Text { min, .. } | Rule::Search { min, .. } => min > 0,
            Rule::Password { min, .. } => min > 0,
            Rule::NameOrEmpty
            | Rule::Permissions
            | Rule::PageSize
            | Rule::Offset
            | Rule::KnownState
            | Rule::OffsetPaging => false,
            _ => true,
        }
    }

    /// The JSON Schema keywords of a string field under this rule (empty for messages).
    pub fn keywords(self, bounds: Bounds) -> Map<String, Value> {
        let max_text = bounds.max_text;
        let (min, max, pattern) = match self {
            Rule::Id | Rule::IdList { .. } => (Id::LENGTH.min, Id::LENGTH.max, PRINTABLE),
            Rule::Name => (1, max_text, NOT_BLANK),
            Rule::NameOrEmpty => (0, max_text, EMPTY_OR_NOT_BLANK),
            Rule::Text { min, max } => (min, max.of(max_text), PRINTABLE),
            Rule::Email => (1, max_text, EMAIL),
            Rule::Phone => (Phone::LENGTH.min, Phone::LENGTH.max, PHONE),
            Rule::Code => (1, CODE_MAX, CODE),
            Rule::Password { min, max } => (min, max, NO_NUL),
            Rule::Search { min, max } => (min, max.of(max_text), NO_NUL),
            Rule::Permissions => {
                let names: Vec<&str> = Permission::ALL.iter().map(|p| p.name()).collect();
                let mut keywords = Map::new();
                keywords.insert("enum".into(), json!(names));
                return keywords;
            }
            Rule::PageSize => {
                let mut keywords = Map::new();
                keywords.insert("maximum".into(), json!(bounds.max_page));
                return keywords;
            }
            Rule::Offset | Rule::KnownState | Rule::OffsetPaging => return Map::new(),
            Rule::NonEmptyList | Rule::Set | Rule::ExactlyOne => return Map::new(),
        };
        let mut keywords = Map::new();
        if min > 0 {
            keywords.insert("minLength".into(), json!(min));
        }
        keywords.insert("maxLength".into(), json!(max));
        keywords.insert("pattern".into(), json!(pattern));
        keywords
    }

    /// The JSON Schema keywords of a list field under this rule (`minItems`, `maxItems`).
    pub fn list_keywords(self) -> Map<String, Value> {
        let mut keywords = Map::new();
        match self {
            Rule::IdList { max } => {
                keywords.insert("minItems".into(), json!(1));
                keywords.insert("maxItems".into(), json!(max));
            }
            Rule::NonEmptyList => {
                keywords.insert("minItems".into(), json!(1));
            }
            _ => {}
        }
        keywords
    }

    /// A schema in place of the field's own (an enum narrower than its type).
    pub fn replacement(self) -> Option<Value> {
        match self {
            // Both forms of a 64-bit integer, each held to `i64::MAX` (the string's digits by
            // a pattern: a schema has no maximum for a string).
            Rule::Offset => Some(json!({ "oneOf": [
                { "type": "string", "format": "uint64", "pattern": decimal_at_most(i64::MAX as u64) },
                { "type": "integer", "minimum": 0, "maximum": i64::MAX },
            ] })),
            Rule::KnownState => {
                use crate::proto::user::v1::State;
                let known: Vec<State> = [
                    State::UserStateActive,
                    State::UserStateInactive,
                    State::UserStateDeleted,
                    State::UserStateLocked,
                ]
                .into();
                Some(json!({ "oneOf": [
                    { "type": "string", "enum": known.iter().map(|s| s.as_str_name()).collect::<Vec<_>>() },
                    { "type": "integer", "format": "int32", "enum": known.iter().map(|s| *s as i32).collect::<Vec<_>>() },
                ] }))
            }
            // The list query's own schema (ListUsers's query refers to it too, so it is
            // always among the components), with an empty page token.
            Rule::OffsetPaging => Some(json!({ "allOf": [
                { "$ref": format!("#/components/schemas/{PACKAGE}ListQuery") },
                { "type": "object", "properties": { "pageToken": {
                    "type": "string", "maxLength": 0, "nullable": true,
                    "description": "This list pages by `offset` only: leave it empty." } } },
            ] })),
            _ => None,
        }
    }

    /// The validation of the rule: the `parse` function the services call.
    pub fn check(self, value: &str, field: &str, max_text: usize) -> Result<()> {
        match self {
            Rule::Id | Rule::IdList { .. } => parse::id(value, field).map(drop),
            Rule::Permissions => value
                .parse::<Permission>()
                .map(drop)
                .map_err(|error| crate::error::Error::invalid(field, error.to_string())),
            Rule::Name => parse::name(value, field, max_text).map(drop),
            Rule::NameOrEmpty => parse::totp_name(value, field, max_text).map(drop),
            Rule::Text { min, max } => parse::text(value, field, min, max.of(max_text)).map(drop),
            Rule::Email => parse::email(value, field, max_text).map(drop),
            Rule::Phone => parse::phone(value, field).map(drop),
            Rule::Code => parse::code(value, field).map(drop),
            Rule::Password { min, max } => parse::password_text(value, field, min, max).map(drop),
            Rule::Search { min, max } => crate::domain::SearchText::parse(
                value,
                crate::domain::Length::new(min, max.of(max_text)),
            )
            .map(drop)
            .map_err(|error| crate::error::Error::invalid(field, error.to_string())),
            Rule::PageSize
            | Rule::Offset
            | Rule::KnownState
            | Rule::OffsetPaging
            | Rule::NonEmptyList
            | Rule::Set
            | Rule::ExactlyOne => Ok(()),
        }
    }
}

/// A pattern for the decimal numbers from 0 to `max`, leading zeros allowed (as protojson
/// reads a 64-bit integer from a string): any number with fewer digits than `max`, or as many
/// digits, agreeing with `max` up to one digit that is lower, or `max` itself.
fn decimal_at_most(max: u64) -> String {
    let digits: Vec<u32> = max
        .to_string()
        .chars()
        .map(|c| c.to_digit(10).unwrap_or(0))
        .collect();
    let width = digits.len();
    let mut forms = Vec::new();
    if width > 1 {
        forms.push(format!("[0-9]{{1,{}}}", width - 1));
    }
    for (at, &digit) in digits.iter().enumerate() {
        let lowest = if at == 0 && width > 1 { 1 } else { 0 };
        if digit > lowest {
            let prefix: String = digits[..at].iter().map(u32::to_string).collect();
            let rest = width - at - 1;
            let tail = if rest > 0 {
                format!("[0-9]{{{rest}}}")
            } else {
                String::new()
            };
            forms.push(format!("{prefix}[{lowest}-{}]{tail}", digit - 1));
        }
    }
    forms.push(max.to_string());
    format!("^0*(?:{})$", forms.join("|"))
}

/// Most users one AssignRole call names.
pub const MAX_ASSIGNED_USERS: usize = 100;

/// The longest verification code (`parse::code`).
pub const CODE_MAX: usize = 20;

const PASSWORD: Rule = Rule::Password {
    min: password::MIN_LENGTH,
    max: password::MAX_LENGTH,
};
const SEARCH_ID: Rule = Rule::Search {
    min: 1,
    max: Max::Chars(Id::MAX_CHARS),
};
const SEARCH_NAME: Rule = Rule::Search {
    min: 1,
    max: Max::Text,
};

/// Every rule, by the full name of its field (or oneof) in `userdir.user.v1`.
pub static FIELDS: &[(&str, Rule)] = &[
    ("ListQuery.limit", Rule::PageSize),
    ("ListQuery.offset", Rule::Offset),
    ("ListOrganizationsRequest.query", Rule::OffsetPaging),
    ("ListUserSchemasRequest.query", Rule::OffsetPaging),
    ("ListRolesRequest.query", Rule::OffsetPaging),
    ("ListAccessTokensRequest.query", Rule::OffsetPaging),
    // DirectoryService
    ("CreateOrganizationRequest.name", Rule::Name),
    ("GetOrganizationRequest.organization_id", Rule::Id),
    ("OrganizationNameQuery.name", SEARCH_NAME),
    ("CreateUserSchemaRequest.type", Rule::Name),
    ("CreateUserSchemaRequest.schema", Rule::Set),
    ("UpdateUserSchemaRequest.schema_id", Rule::Id),
    ("UpdateUserSchemaRequest.type", Rule::Name),
    ("GetUserSchemaRequest.schema_id", Rule::Id),
    ("CreateRoleRequest.name", Rule::Name),
    (
        "CreateRoleRequest.description",
        Rule::Text {
            min: 0,
            max: Max::Chars(1000),
        },
    ),
    ("GetRoleRequest.role_id", Rule::Id),
    ("AssignRoleRequest.role_id", Rule::Id),
    (
        "AssignRoleRequest.user_ids",
        Rule::IdList {
            max: MAX_ASSIGNED_USERS,
        },
    ),
    ("UnassignRoleRequest.role_id", Rule::Id),
    ("UnassignRoleRequest.user_id", Rule::Id),
    ("ListRoleUsersRequest.role_id", Rule::Id),
    // TokenService
    (
        "CreateAccessTokenRequest.description",
        Rule::Text {
            min: 1,
            max: Max::Chars(200),
        },
    ),
    ("CreateAccessTokenRequest.organization_id", Rule::Id),
    ("CreateAccessTokenRequest.permissions", Rule::Permissions),
    ("RevokeAccessTokenRequest.token_id", Rule::Id),
    // UserService
    ("GetUserRequest.user_id", Rule::Id),
    ("CreateUserRequest.organization_id", Rule::Id),
    ("CreateUserRequest.schema_id", Rule::Id),
    ("SetEmail.address", Rule::Email),
    ("SetPhone.number", Rule::Phone),
    (
        "SendVerificationCode.url_template",
        Rule::Text {
            min: 1,
            max: Max::Chars(200),
        },
    ),
    ("SetUsername.username", Rule::Name),
    ("SetPassword.password", PASSWORD),
    (
        "SetPassword.hash",
        Rule::Text {
            min: 1,
            max: Max::Chars(200),
        },
    ),
    ("SetPassword.type", Rule::ExactlyOne),
    ("PatchUserRequest.user_id", Rule::Id),
    ("DeleteUserRequest.user_id", Rule::Id),
    ("DeactivateUserRequest.user_id", Rule::Id),
    ("ReactivateUserRequest.user_id", Rule::Id),
    ("LockUserRequest.user_id", Rule::Id),
    ("UnlockUserRequest.user_id", Rule::Id),
    ("SetContactEmailRequest.user_id", Rule::Id),
    ("SetContactEmailRequest.email", Rule::Set),
    ("VerifyContactEmailRequest.user_id", Rule::Id),
    ("VerifyContactEmailRequest.verification_code", Rule::Code),
    ("SetContactPhoneRequest.user_id", Rule::Id),
    ("SetContactPhoneRequest.phone", Rule::Set),
    ("VerifyContactPhoneRequest.user_id", Rule::Id),
    ("VerifyContactPhoneRequest.verification_code", Rule::Code),
    ("AddUsernameRequest.user_id", Rule::Id),
    ("AddUsernameRequest.username", Rule::Set),
    ("RemoveUsernameRequest.user_id", Rule::Id),
    ("RemoveUsernameRequest.username_id", Rule::Id),
    ("SetPasswordRequest.user_id", Rule::Id),
    ("SetPasswordRequest.new_password", Rule::Set),
    ("VerifyPasswordRequest.user_id", Rule::Id),
    (
        "VerifyPasswordRequest.password",
        Rule::Password { min: 1, max: 200 },
    ),
    ("RemovePasswordRequest.user_id", Rule::Id),
    ("StartWebAuthNRegistrationRequest.user_id", Rule::Id),
    ("StartWebAuthNRegistrationRequest.name", Rule::Name),
    ("VerifyWebAuthNRegistrationRequest.user_id", Rule::Id),
    ("VerifyWebAuthNRegistrationRequest.web_auth_n_id", Rule::Id),
    (
        "VerifyWebAuthNRegistrationRequest.public_key_credential",
        Rule::Set,
    ),
    ("VerifyWebAuthNRegistrationRequest.name", Rule::Name),
    ("RenameWebAuthNAuthenticatorRequest.user_id", Rule::Id),
    ("RenameWebAuthNAuthenticatorRequest.web_auth_n_id", Rule::Id),
    ("RenameWebAuthNAuthenticatorRequest.name", Rule::Name),
    ("RemoveWebAuthNAuthenticatorRequest.user_id", Rule::Id),
    ("RemoveWebAuthNAuthenticatorRequest.web_auth_n_id", Rule::Id),
    ("StartTOTPRegistrationRequest.user_id", Rule::Id),
    ("StartTOTPRegistrationRequest.name", Rule::NameOrEmpty),
    ("VerifyTOTPRegistrationRequest.user_id", Rule::Id),
    ("VerifyTOTPRegistrationRequest.totp_id", Rule::Id),
    ("VerifyTOTPRegistrationRequest.code", Rule::Code),
    ("RemoveTOTPAuthenticatorRequest.user_id", Rule::Id),
    ("RemoveTOTPAuthenticatorRequest.totp_id", Rule::Id),
    ("AddOTPSMSAuthenticatorRequest.user_id", Rule::Id),
    ("AddOTPSMSAuthenticatorRequest.phone", Rule::Phone),
    ("VerifyOTPSMSRegistrationRequest.user_id", Rule::Id),
    ("VerifyOTPSMSRegistrationRequest.otp_sms_id", Rule::Id),
    ("VerifyOTPSMSRegistrationRequest.code", Rule::Code),
    ("RemoveOTPSMSAuthenticatorRequest.user_id", Rule::Id),
    ("RemoveOTPSMSAuthenticatorRequest.otp_sms_id", Rule::Id),
    ("AddOTPEmailAuthenticatorRequest.user_id", Rule::Id),
    ("AddOTPEmailAuthenticatorRequest.address", Rule::Email),
    ("VerifyOTPEmailRegistrationRequest.user_id", Rule::Id),
    ("VerifyOTPEmailRegistrationRequest.otp_email_id", Rule::Id),
    ("VerifyOTPEmailRegistrationRequest.code", Rule::Code),
    ("RemoveOTPEmailAuthenticatorRequest.user_id", Rule::Id),
    ("RemoveOTPEmailAuthenticatorRequest.otp_email_id", Rule::Id),
    ("AddAuthenticationKeyRequest.user_id", Rule::Id),
    ("RemoveAuthenticationKeyRequest.user_id", Rule::Id),
    (
        "RemoveAuthenticationKeyRequest.authentication_key_id",
        Rule::Id,
    ),
    ("AddIDPLinkRequest.user_id", Rule::Id),
    ("AddIDPLinkRequest.idp_id", Rule::Id),
    ("AddIDPLinkRequest.idp_name", Rule::Name),
    ("AddIDPLinkRequest.linked_user_id", Rule::Id),
    (
        "AddIDPLinkRequest.linked_username",
        Rule::Text {
            min: 0,
            max: Max::Text,
        },
    ),
    ("RemoveIDPLinkRequest.user_id", Rule::Id),
    ("RemoveIDPLinkRequest.idp_id", Rule::Id),
    ("RemoveIDPLinkRequest.linked_user_id", Rule::Id),
    // Import records
    ("ImportUserRecord.organization_id", Rule::Id),
    ("ImportUserRecord.schema_id", Rule::Id),
    ("ImportIDPLink.idp_id", Rule::Id),
    ("ImportIDPLink.idp_name", Rule::Name),
    ("ImportIDPLink.linked_user_id", Rule::Id),
    (
        "ImportIDPLink.linked_username",
        Rule::Text {
            min: 0,
            max: Max::Text,
        },
    ),
    ("ImportTOTP.name", Rule::NameOrEmpty),
    (
        "ImportTOTP.secret",
        Rule::Text {
            min: 1,
            max: Max::Chars(200),
        },
    ),
    ("ImportOTPSMS.phone", Rule::Phone),
    ("ImportOTPEmail.address", Rule::Email),
    // Search queries (`search`)
    ("SearchQuery.query", Rule::ExactlyOne),
    ("NotQuery.query", Rule::Set),
    ("AndQuery.queries", Rule::NonEmptyList),
    ("OrQuery.queries", Rule::NonEmptyList),
    ("UserIDQuery.id", SEARCH_ID),
    ("OrganizationIDQuery.id", SEARCH_ID),
    ("UsernameQuery.username", SEARCH_NAME),
    (
        "EmailQuery.address",
        Rule::Search {
            min: 0,
            max: Max::Text,
        },
    ),
    (
        "PhoneQuery.number",
        Rule::Search {
            min: Phone::LENGTH.min,
            max: Max::Chars(Phone::LENGTH.max),
        },
    ),
    ("SchemaIDQuery.id", SEARCH_ID),
    ("StateQuery.state", Rule::KnownState),
    ("SchemaTypeQuery.type", SEARCH_NAME),
];

/// The package every entry of [`FIELDS`] is in.
const PACKAGE: &str = "userdir.user.v1.";

/// The rule of a field or oneof, by its full proto name.
pub fn rule(full_name: &str) -> Option<Rule> {
    let name = full_name.strip_prefix(PACKAGE)?;
    FIELDS
        .iter()
        .find(|(field, _)| *field == name)
        .map(|(_, rule)| *rule)
}

/// What the OpenAPI generator writes for a field or oneof (by full proto name) on a server
/// with these bounds.
pub fn schema(full_name: &str, bounds: Bounds) -> Option<crate::api::http::FieldSchema> {
    let rule = rule(full_name)?;
    Some(crate::api::http::FieldSchema {
        keywords: rule.keywords(bounds),
        list_keywords: rule.list_keywords(),
        replacement: rule.replacement(),
        required: rule.required(),
        exactly_one: matches!(rule, Rule::ExactlyOne),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_TEXT: usize = 12;

    /// Whether `value` satisfies the rule's schema keywords.
    fn schema_accepts(rule: Rule, value: &str) -> bool {
        let keywords = rule.keywords(Bounds {
            max_text: MAX_TEXT,
            max_page: 10,
        });
        let chars = value.chars().count() as u64;
        let min = keywords
            .get("minLength")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let max = keywords["maxLength"].as_u64().unwrap();
        let pattern = regex::Regex::new(keywords["pattern"].as_str().unwrap()).unwrap();
        chars >= min && chars <= max && pattern.is_match(value)
    }

    #[test]
    fn schemas_agree_with_the_checks() {
        let samples = [
            "",
            " ",
            "a",
            "ab c",
            "a\u{0}b",
            "a\nb",
            "\tx",
            "é\u{85}",
            "\u{7f}",
            "x@y",
            "a@b.c",
            "@b",
            "a@",
            "a@@b",
            "a@.b",
            "a@b.",
            "a b@c",
            "+41 79 123",
            "+4-1",
            "12",
            "123",
            "+",
            "  7 ",
            "abcdefghijkl",
            "abcdefghijklm",
            "\u{a0}",
            "12345678901234567890",
            "123456789012345678901",
        ];
        let long_id = "i".repeat(Id::MAX_CHARS + 1);
        let rules = FIELDS.iter().map(|(_, rule)| *rule).filter(|rule| {
            !matches!(
                rule,
                Rule::Set
                    | Rule::ExactlyOne
                    | Rule::NonEmptyList
                    | Rule::Permissions
                    | Rule::PageSize
                    | Rule::Offset
                    | Rule::KnownState
                    | Rule::OffsetPaging
                    | Rule::Password { min: 8, .. }
            )
        });
        for rule in rules {
            for value in samples.iter().copied().chain([long_id.as_str()]) {
                assert_eq!(
                    schema_accepts(rule, value),
                    rule.check(value, "f", MAX_TEXT).is_ok(),
                    "{rule:?} on {value:?}"
                );
            }
        }
    }

    #[test]
    fn decimal_patterns_stop_at_their_maximum() {
        for max in [0u64, 7, 10, 99, 100, 4096, i64::MAX as u64, u64::MAX] {
            let pattern = regex::Regex::new(&decimal_at_most(max)).unwrap();
            let mut values: Vec<u128> = vec![0, 1, 9, 10, 11, 99, 100, 101, 4095, 4096, 4097];
            let m = max as u128;
            values.extend([m.saturating_sub(1), m, m + 1, m * 10, m + 10]);
            for value in values {
                assert_eq!(
                    pattern.is_match(&value.to_string()),
                    value <= m,
                    "{value} against {max}"
                );
                assert_eq!(
                    pattern.is_match(&format!("00{value}")),
                    value <= m,
                    "00{value} against {max}"
                );
            }
            for refused in ["", "-1", "+1", "1 ", "0x1", "1.0"] {
                assert!(!pattern.is_match(refused), "{refused:?} against {max}");
            }
        }
    }

    #[test]
    fn every_entry_names_a_request_field_or_oneof() {
        let pool = prost_reflect::DescriptorPool::decode(crate::proto::DESCRIPTOR_SET).unwrap();
        for (name, rule) in FIELDS {
            let (message, field) = name.rsplit_once('.').unwrap();
            let message = pool
                .get_message_by_name(&format!("{PACKAGE}{message}"))
                .unwrap_or_else(|| panic!("{name}: no such message"));
            let found = match rule {
                Rule::ExactlyOne => message.oneofs().any(|o| o.name() == field),
                _ => message.get_field_by_name(field).is_some(),
            };
            assert!(found, "{name}: no such field");
        }
    }
}
