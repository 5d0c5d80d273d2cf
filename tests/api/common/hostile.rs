//! Hostile text for the hostile-input tests: SQL metacharacters, LIKE wildcards, regex
//! syntax, Unicode that compares badly (combining marks, RTL, emoji, zero-width joiners,
//! case foldings that change length), and a directory built from it with an oracle of what
//! every text match must find.

use serde_json::json;
use userdir::domain::fold_case;
use userdir::proto::user::v1 as pb;

use super::TestApp;
use super::api::object;

/// Values every name, username and search text must store and find byte for byte. Distinct
/// even when folded (usernames and schema types are unique ignoring case), none blank, none
/// over 200 characters.
pub const HOSTILE: &[&str] = &[
    "o'brien",
    "\"quoted\"",
    "semi;colon",
    "dash--dash",
    "/* comment */",
    "back\\slash",
    "trailing\\",
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "Robert'); DELETE FROM usernames;--",
    "%",
    "_",
    "50%_off",
    "a_b",
    "axb",
    "\\%",
    "%%__",
    "[abc]",
    "^$.*+?(|)",
    "e\u{301}",
    "\u{e9}",
    "שלום",
    "\u{202e}evil\u{202c}",
    "👩\u{200d}👩\u{200d}👧\u{200d}👦",
    "a\u{200d}b",
    "zero\u{200b}width",
    "İstanbul",
    "straße",
    "ΣΑΣ",
    "\u{feff}bom",
    "$1 ${x} {{y}}",
    // The ends of the prefix ranges (`reads::compile::prefix_range`): the last scalar value
    // before the surrogates, the last of all.
    "\u{d7ff}\u{10ffff}",
];

/// More search texts: fragments and foldings of the values above.
pub const PROBES: &[&str] = &[
    "\u{d7ff}",
    "\u{d7ff}\u{10ffff}",
    "%",
    "_",
    "\\",
    "'",
    "\"",
    "--",
    ";",
    "/*",
    "*/",
    "%%",
    "\\%",
    "\\_",
    "e",
    "\u{301}",
    "👩",
    "\u{200d}",
    "İ",
    "i\u{307}",
    "I",
    "ẞ",
    "ß",
    "SS",
    "Σ",
    "σ",
    "ς",
    " ",
    "@",
    ".",
    "*",
    "?",
    "[",
    "]",
    "^",
    "$",
    "(",
    ")",
    "|",
    "1",
    "4",
    "x.example",
    "0",
    "+",
];

/// Values no name, description or other stored text may hold: control characters, which would
/// reach an operator's terminal (`userdir token list`) as escape sequences or forged lines.
pub const CONTROL: &[&str] = &[
    "tab\there",
    "line\nbreak",
    "bell\u{7}",
    "clear\u{1b}[2J",
    "carriage\rreturn",
    "del\u{7f}",
    "csi\u{9b}31m",
];

/// The eight text query methods.
pub const METHODS: [pb::TextQueryMethod; 8] = [
    pb::TextQueryMethod::Equals,
    pb::TextQueryMethod::EqualsIgnoreCase,
    pb::TextQueryMethod::StartsWith,
    pb::TextQueryMethod::StartsWithIgnoreCase,
    pb::TextQueryMethod::Contains,
    pb::TextQueryMethod::ContainsIgnoreCase,
    pb::TextQueryMethod::EndsWith,
    pb::TextQueryMethod::EndsWithIgnoreCase,
];

/// What `method` must find: the server's meaning, computed in Rust.
pub fn matches(method: pb::TextQueryMethod, value: &str, probe: &str) -> bool {
    use pb::TextQueryMethod as M;
    let (value, probe) = match method {
        M::EqualsIgnoreCase
        | M::StartsWithIgnoreCase
        | M::ContainsIgnoreCase
        | M::EndsWithIgnoreCase => (fold_case(value), fold_case(probe)),
        _ => (value.to_owned(), probe.to_owned()),
    };
    match method {
        M::Equals | M::EqualsIgnoreCase => value == probe,
        M::StartsWith | M::StartsWithIgnoreCase => value.starts_with(&probe),
        M::Contains | M::ContainsIgnoreCase => value.contains(&probe),
        M::EndsWith | M::EndsWithIgnoreCase => value.ends_with(&probe),
    }
}

/// SQL LIKE with `\` as the escape character, as the Logto dialect's `like` mode means it.
pub fn like(value: &str, pattern: &str) -> bool {
    fn go(value: &[char], pattern: &[char]) -> bool {
        match pattern.split_first() {
            None => value.is_empty(),
            Some(('%', rest)) => (0..=value.len()).any(|i| go(&value[i..], rest)),
            Some(('_', rest)) => !value.is_empty() && go(&value[1..], rest),
            Some(('\\', rest)) if !rest.is_empty() => {
                value.first() == Some(&rest[0]) && go(&value[1..], &rest[1..])
            }
            Some((c, rest)) => value.first() == Some(c) && go(&value[1..], rest),
        }
    }
    let value: Vec<char> = value.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    go(&value, &pattern)
}

/// An email address made from `text`: its characters that an address may hold, `@x.example`.
pub fn email_of(text: &str, i: usize) -> String {
    let local: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control() && *c != '@')
        .collect();
    if local.is_empty() {
        format!("u{i}@x.example")
    } else {
        format!("{local}@x.example")
    }
}

/// A user of the hostile directory, as stored.
#[derive(Clone, Debug)]
pub struct Person {
    pub id: String,
    pub organization_id: String,
    pub organization_name: String,
    pub schema_type: String,
    /// (username, organization-specific)
    pub usernames: Vec<(String, bool)>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The name the user goes by (its `givenName`).
    pub name: String,
}

/// One user per hostile value, each in its own organization with its own schema type, all
/// with the value as given name and username, an email made of it, and every other one a
/// phone number; all hold one role. Returns the users and the role id.
pub async fn directory(app: &TestApp) -> (Vec<Person>, String) {
    let role = app
        .roles
        .clone()
        .create_role(pb::CreateRoleRequest {
            name: "everybody".into(),
            description: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .role_id;
    let mut people = Vec::new();
    for (i, text) in HOSTILE.iter().enumerate() {
        let organization_id = super::api::organization(app, text).await;
        let schema_id = app
            .schemas
            .clone()
            .create_user_schema(pb::CreateUserSchemaRequest {
                r#type: text.to_string(),
                schema: Some(object(json!({"type": "object"}))),
            })
            .await
            .unwrap_or_else(|e| panic!("schema type {text:?}: {e:?}"))
            .into_inner()
            .schema_id;
        let specific: String = format!("{i}:{}", text.chars().take(50).collect::<String>());
        let email = email_of(text, i);
        let phone = (i % 2 == 0).then(|| format!("+41 79 000 {i:02}"));
        let request = pb::CreateUserRequest {
            organization_id: organization_id.clone(),
            schema_id,
            data: Some(object(json!({"givenName": text}))),
            usernames: vec![
                pb::SetUsername {
                    username: text.to_string(),
                    is_organization_specific: false,
                },
                pb::SetUsername {
                    username: specific.clone(),
                    is_organization_specific: true,
                },
            ],
            contact: Some(pb::SetContact {
                email: Some(pb::SetEmail {
                    address: email.clone(),
                    verification: Some(pb::set_email::Verification::IsVerified(true)),
                }),
                phone: phone.clone().map(|number| pb::SetPhone {
                    number,
                    verification: Some(pb::set_phone::Verification::IsVerified(true)),
                }),
            }),
            password: None,
        };
        let id = app
            .users
            .clone()
            .create_user(request)
            .await
            .unwrap_or_else(|e| panic!("user {text:?}: {e:?}"))
            .into_inner()
            .user_id;
        people.push(Person {
            id,
            organization_id,
            organization_name: text.to_string(),
            schema_type: text.to_string(),
            usernames: vec![(text.to_string(), false), (specific, true)],
            email: Some(email),
            phone,
            name: text.to_string(),
        });
    }
    app.roles
        .clone()
        .assign_role(pb::AssignRoleRequest {
            role_id: role.clone(),
            user_ids: people.iter().map(|p| p.id.clone()).collect(),
        })
        .await
        .unwrap();
    (people, role)
}

/// Sorted ids of `people` for which `keep` holds.
pub fn ids_where(people: &[Person], keep: impl Fn(&Person) -> bool) -> Vec<String> {
    let mut ids: Vec<String> = people
        .iter()
        .filter(|p| keep(p))
        .map(|p| p.id.clone())
        .collect();
    ids.sort();
    ids
}
