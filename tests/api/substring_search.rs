//! Contains and ends-with searches on email, phone, name and username, on SQLite and
//! PostgreSQL: whatever index serves them (SQLite's FTS5 trigram tables, PostgreSQL's pg_trgm),
//! a search finds exactly the users whose text has the value at that position, for values of
//! every length and with LIKE's wildcards, the escape character, FTS5's quote and non-ASCII
//! characters; and SQLite's trigram tables follow every write.

use std::collections::BTreeSet;

use crate::common;

use common::TestApp;
use common::api;
use common::fixtures::{self, NewUser};
use common::queries::{self as q, M};
use serde_json::json;
use userdir::domain::fold_case;
use userdir::proto::user::v1::{self as pb, FieldName};

backend_tests!(
    searches_find_what_the_text_holds,
    logto_name_searches_find_what_the_pattern_matches,
    the_trigram_index_follows_every_write,
    the_trigram_index_survives_migrating_down_and_up,
);

/// (email, phone, name, username) of each user; None leaves the property unset.
type Texts = (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

const TEXTS: [Texts; 10] = [
    (
        Some("Ann.Lee@Example.com"),
        Some("+41791234567"),
        Some("Ann Lee"),
        "AnnLee",
    ),
    (
        Some("50%_off\\x@shop.ch"),
        Some("+41 79 %12_3"),
        Some("50% _off\\"),
        "per%cent_\\x",
    ),
    (
        Some("quote\"d\"@mail.test"),
        None,
        Some("Say \"hi\""),
        "q\"uo\"te",
    ),
    (
        Some("Zoë.Ünal@Beispiel.de"),
        Some("+4930123"),
        Some("Zoë Ünal"),
        "ZOË_ÜNAL",
    ),
    (Some("ΟΔΟΣ@greek.gr"), None, Some("ΟΔΟΣΧ Σοφία"), "ΟΔΟΣ"),
    (Some("a@b.cd"), Some("1"), Some("A"), "ab"),
    (None, None, None, "plain"),
    (
        Some("lee.ann@example.org"),
        Some("+41791234"),
        Some("Lee Ann"),
        "leeann",
    ),
    (
        Some("İstanbul@örnek.tr"),
        Some("+90212"),
        Some("İlkay"),
        "İlkay",
    ),
    (
        Some("x@ann-lee.example.com"),
        Some("007"),
        Some("ann lee"),
        "x_ann_lee",
    ),
];

/// Values of 1, 2, 3 and more characters, with wildcards, the escape character, quotes,
/// cased non-ASCII (`Σ`, whose lower case depends on what follows it) and multi-character
/// foldings (`İ`). The long ones (nine characters or more) are looked up on SQLite by their
/// rarest window of four characters (`compile::rarest_phrase`), wildcards, escapes and quotes
/// inside the windows too.
const VALUES: [&str; 32] = [
    "a",
    "n",
    "an",
    "ee",
    "ann",
    "Ann",
    "ANN",
    "lee",
    "e.com",
    "example.com",
    "%",
    "%_",
    "0%_o",
    "_",
    "\\",
    "\\x",
    "\"",
    "\"d\"",
    "d\"@",
    "zoë",
    "ÜNAL",
    "ë.Ü",
    "ΟΔΟΣ",
    "οδος",
    "Σ",
    "İst",
    "123",
    "lee@example.com",
    "Ann-Lee.Example.COM",
    "50%_off\\x@shop",
    "quote\"d\"@mail.test",
    "+41791234567",
];

fn user(n: u64, (email, phone, name, username): Texts) -> NewUser {
    let mut user = NewUser::new(n)
        .without_usernames()
        .username(username, false);
    if let Some(email) = email {
        user = user.email(email);
    }
    if let Some(phone) = phone {
        user = user.phone(phone);
    }
    if let Some(name) = name {
        user = user.data(json!({ "name": name }));
    }
    user
}

async fn population(app: &TestApp) -> Vec<(String, Texts)> {
    fixtures::base(&app.db).await;
    let users: Vec<NewUser> = TEXTS
        .iter()
        .enumerate()
        .map(|(n, texts)| user(n as u64, *texts))
        .collect();
    let ids = users.iter().map(NewUser::id).collect::<Vec<_>>();
    fixtures::insert(&app.db, users).await;
    ids.into_iter().zip(TEXTS).collect()
}

/// Does `text` hold `value` where `method` says, compared as the directory compares?
fn holds(text: &str, value: &str, method: M) -> bool {
    let (text, value) = match method {
        M::ContainsIgnoreCase | M::EndsWithIgnoreCase => (fold_case(text), fold_case(value)),
        _ => (text.to_owned(), value.to_owned()),
    };
    match method {
        M::Contains | M::ContainsIgnoreCase => text.contains(&value),
        M::EndsWith | M::EndsWithIgnoreCase => text.ends_with(&value),
        other => panic!("not a substring method: {other:?}"),
    }
}

async fn found(app: &TestApp, queries: Vec<pb::SearchQuery>) -> BTreeSet<String> {
    let response = app
        .users
        .clone()
        .list_users(q::request(queries, 0, 1000, false, FieldName::Unspecified))
        .await
        .expect("ListUsers")
        .into_inner();
    let ids: BTreeSet<String> = response.result.into_iter().map(|u| u.user_id).collect();
    assert_eq!(
        response.details.unwrap().total_result,
        ids.len() as u64,
        "the total counts the page"
    );
    ids
}

/// The text of one property of a user.
type Property = fn(&Texts) -> Option<&'static str>;

/// A test of a folded name.
type NameTest = fn(&str) -> bool;

const METHODS: [M; 4] = [
    M::Contains,
    M::ContainsIgnoreCase,
    M::EndsWith,
    M::EndsWithIgnoreCase,
];

async fn searches_find_what_the_text_holds(app: TestApp) {
    let users = population(&app).await;
    let mut matched = 0;
    for value in VALUES {
        for method in METHODS {
            let fields: [(&str, pb::SearchQuery, Property); 3] = [
                ("email", q::email(value, method), |t| t.0),
                ("phone", q::phone(value, method), |t| t.1),
                ("username", q::username(value, method, None), |t| Some(t.3)),
            ];
            for (field, query, text) in fields {
                let expected: BTreeSet<String> = users
                    .iter()
                    .filter(|(_, texts)| text(texts).is_some_and(|t| holds(t, value, method)))
                    .map(|(id, _)| id.clone())
                    .collect();
                matched += expected.len();
                assert_eq!(
                    found(&app, vec![query.clone()]).await,
                    expected,
                    "{field} {method:?} {value:?}"
                );
                // NOT is still the complement.
                let rest: BTreeSet<String> = users
                    .iter()
                    .map(|(id, _)| id.clone())
                    .filter(|id| !expected.contains(id))
                    .collect();
                assert_eq!(
                    found(&app, vec![q::not(query)]).await,
                    rest,
                    "NOT {field} {method:?} {value:?}"
                );
            }
        }
    }
    assert!(matched > 100, "the values match some users ({matched})");
}

/// Logto's `search.name=%…%` is a caller's LIKE pattern (wildcards live), the one way to search
/// names; on SQLite its longest literal run goes to the trigram index.
async fn logto_name_searches_find_what_the_pattern_matches(app: TestApp) {
    let users = population(&app).await;
    // (pattern, a test of the folded name)
    let cases: [(&str, NameTest); 6] = [
        ("%ann%", |n| n.contains("ann")),
        ("%lee", |n| n.ends_with("lee")),
        ("%ünal%", |n| n.contains("ünal")),
        ("%a_n%", |n| {
            let chars: Vec<char> = n.chars().collect();
            chars.windows(3).any(|w| w[0] == 'a' && w[2] == 'n')
        }),
        ("%\\_off\\\\", |n| n.ends_with("_off\\")),
        ("%\"hi\"%", |n| n.contains("\"hi\"")),
    ];
    for (pattern, test) in cases {
        let expected: BTreeSet<String> = users
            .iter()
            .filter(|(_, texts)| texts.2.is_some_and(|name| test(&fold_case(name))))
            .map(|(id, _)| id.clone())
            .collect();
        assert!(!expected.is_empty(), "{pattern} matches someone");
        let query = url_encode(pattern);
        let reply = common::http::get(
            &app,
            &format!("/api/users?page_size=100&search.name={query}"),
        )
        .await;
        assert_eq!(reply.status, 200, "{pattern}: {}", reply.text);
        let found: BTreeSet<String> = reply
            .json
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(found, expected, "{pattern}");
    }
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

async fn ids_with_email(app: &TestApp, value: &str) -> BTreeSet<String> {
    found(app, vec![q::email(value, M::ContainsIgnoreCase)]).await
}

async fn ids_with_username(app: &TestApp, value: &str) -> BTreeSet<String> {
    found(app, vec![q::username(value, M::ContainsIgnoreCase, None)]).await
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|id| (*id).clone()).collect()
}

/// Creates, email changes, username changes and deletes through the API: each search finds
/// exactly the users whose current text holds the value.
async fn the_trigram_index_follows_every_write(app: TestApp) {
    let org = api::organization(&app, "Sync").await;
    let schema = api::person_schema(&app, "person").await;
    let mut users = app.users.clone();
    let create = |name: &str, email: &str| {
        let mut request = api::new_user(&org, &schema, name);
        request.contact = Some(pb::SetContact {
            email: Some(pb::SetEmail {
                address: email.into(),
                verification: None,
            }),
            phone: None,
        });
        request
    };
    let first = api::create_user(&app, create("firstuser", "Alpha.One@Example.com")).await;
    let second = api::create_user(&app, create("seconduser", "beta.two@example.com")).await;
    assert_eq!(ids_with_email(&app, "alpha.one").await, set(&[&first]));
    assert_eq!(
        ids_with_email(&app, "ample.com").await,
        set(&[&first, &second])
    );
    assert_eq!(ids_with_username(&app, "conduse").await, set(&[&second]));

    // A new email: the old text is gone from the index, the new one is there.
    users
        .set_contact_email(pb::SetContactEmailRequest {
            user_id: first.clone(),
            email: Some(pb::SetEmail {
                address: "gamma.three@other.org".into(),
                verification: None,
            }),
        })
        .await
        .expect("SetContactEmail");
    assert_eq!(ids_with_email(&app, "alpha.one").await, set(&[]));
    assert_eq!(ids_with_email(&app, "ample.com").await, set(&[&second]));
    assert_eq!(ids_with_email(&app, "mma.thr").await, set(&[&first]));

    // A username renamed: added under its new name, the old one removed.
    let added = users
        .add_username(pb::AddUsernameRequest {
            user_id: second.clone(),
            username: Some(pb::SetUsername {
                username: "renamed-beta".into(),
                is_organization_specific: false,
            }),
        })
        .await
        .expect("AddUsername")
        .into_inner()
        .username_id;
    let old = api::get_user(&app, &second)
        .await
        .authenticators
        .unwrap()
        .usernames
        .into_iter()
        .find(|u| u.username_id != added)
        .expect("the old username")
        .username_id;
    users
        .remove_username(pb::RemoveUsernameRequest {
            user_id: second.clone(),
            username_id: old,
        })
        .await
        .expect("RemoveUsername");
    assert_eq!(ids_with_username(&app, "conduse").await, set(&[]));
    assert_eq!(ids_with_username(&app, "named-be").await, set(&[&second]));

    // A deleted user leaves nothing behind, neither its email nor its usernames.
    users
        .delete_user(pb::DeleteUserRequest {
            user_id: second.clone(),
        })
        .await
        .expect("DeleteUser");
    assert_eq!(ids_with_email(&app, "two@").await, set(&[]));
    assert_eq!(ids_with_username(&app, "named-be").await, set(&[]));
    // And a new user with the same texts is found, and only it.
    let third = api::create_user(&app, create("renamed-beta", "beta.two@example.com")).await;
    assert_eq!(ids_with_email(&app, "two@").await, set(&[&third]));
    assert_eq!(ids_with_username(&app, "named-be").await, set(&[&third]));
    assert_eq!(ids_with_email(&app, "@").await.len(), 2);
}

/// Rolling migration 10 back and applying it again refills the trigram tables from the users
/// that exist, and searches keep finding them.
async fn the_trigram_index_survives_migrating_down_and_up(app: TestApp) {
    let users = population(&app).await;
    let ann = |users: &[(String, Texts)]| -> BTreeSet<String> {
        users
            .iter()
            .filter(|(_, t)| t.0.is_some_and(|e| holds(e, "ANN", M::ContainsIgnoreCase)))
            .map(|(id, _)| id.clone())
            .collect()
    };
    let expected = ann(&users);
    assert_eq!(expected.len(), 3);
    assert_eq!(ids_with_email(&app, "ANN").await, expected);
    common::migrate_down_through_and_up(&app.db, "m20261202_000010_sqlite_trigram").await;
    assert_eq!(ids_with_email(&app, "ANN").await, expected);
    assert_eq!(
        ids_with_username(&app, "ünal").await.len(),
        1,
        "usernames are refilled too"
    );
}
