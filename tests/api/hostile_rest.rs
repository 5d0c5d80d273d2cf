//! Hostile input through the Logto and GreenLake REST dialects, on SQLite and PostgreSQL:
//! every `search.*` key in every mode and OData `filter` literals, with SQL metacharacters,
//! LIKE wildcards, regex syntax, Unicode, NUL and oversized values. Answers agree with an
//! oracle, or are a 400 that names the key (or the filter position); never a 500.

use crate::common;

use common::TestApp;
use common::hostile::{self, HOSTILE, PROBES, Person};
use common::http as h;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use userdir::domain::fold_case;

backend_tests!(
    logto_search_keys_match_literally_or_refuse_clearly,
    logto_nul_oversized_and_undecodable_values_are_400,
    odata_literals_match_exactly_or_refuse_clearly,
);

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

fn ids(reply: &h::Reply, items: Option<&str>) -> Vec<String> {
    let list = match items {
        Some(key) => &reply.json[key],
        None => &reply.json,
    };
    let mut ids: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("a list: {}", reply.text))
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The values a Logto search field looks at.
fn logto_values(person: &Person, field: &str) -> Vec<String> {
    match field {
        "id" => vec![person.id.clone()],
        "primaryEmail" => person.email.iter().cloned().collect(),
        "primaryPhone" => person.phone.iter().cloned().collect(),
        "username" => person.usernames.iter().map(|(u, _)| u.clone()).collect(),
        "name" => vec![person.name.clone()],
        _ => ["id", "primaryEmail", "primaryPhone", "username", "name"]
            .iter()
            .flat_map(|f| logto_values(person, f))
            .collect(),
    }
}

/// A LIKE pattern whose last `\` escapes nothing (the dialect refuses it).
fn lone_escape(pattern: &str) -> bool {
    pattern.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

async fn logto_search_keys_match_literally_or_refuse_clearly(app: TestApp) {
    let (people, _) = hostile::directory(&app).await;
    let probes: Vec<&str> = HOSTILE.iter().chain(PROBES).copied().collect();
    for field in ["username", "primaryEmail", "primaryPhone", "id", "name", ""] {
        let key = if field.is_empty() {
            "search".to_owned()
        } else {
            format!("search.{field}")
        };
        for (mode, case_sensitive) in [
            ("exact", true),
            ("exact", false),
            ("like", true),
            ("like", false),
            ("posix", true),
        ] {
            for probe in &probes {
                let path = format!(
                    "/api/users?page_size=100&mode={mode}&isCaseSensitive={case_sensitive}&{}={}",
                    encode(&key),
                    encode(probe)
                );
                let reply = h::get(&app, &path).await;
                let context = format!("{key} {mode} case-sensitive={case_sensitive} {probe:?}");
                let fold = |s: &str| {
                    if case_sensitive {
                        s.to_owned()
                    } else {
                        fold_case(s)
                    }
                };
                let expected = match mode {
                    "exact" => Some(hostile::ids_where(&people, |p| {
                        logto_values(p, field)
                            .iter()
                            .any(|v| fold(v) == fold(probe))
                    })),
                    "like" if lone_escape(probe) => None,
                    "like" => Some(hostile::ids_where(&people, |p| {
                        logto_values(p, field)
                            .iter()
                            .any(|v| hostile::like(&fold(v), &fold(probe)))
                    })),
                    // A regular expression: refused unless in the common subset, then
                    // matched as Rust's regex crate matches it.
                    _ => match regex::Regex::new(&format!("(?s){probe}")) {
                        Ok(re) if reply.status == 200 => Some(hostile::ids_where(&people, |p| {
                            logto_values(p, field).iter().any(|v| re.is_match(v))
                        })),
                        _ => None,
                    },
                };
                match expected {
                    Some(expected) => {
                        assert_eq!(reply.status, 200, "{context}: {}", reply.text);
                        assert_eq!(ids(&reply, None), expected, "{context}");
                    }
                    None => {
                        assert_eq!(reply.status, 400, "{context}: {}", reply.text);
                        assert_eq!(reply.json["code"], "request.invalid_input", "{context}");
                        let details = reply.json["details"].as_str().unwrap();
                        assert!(details.contains(&key), "{context}: {details}");
                    }
                }
            }
        }
    }
    // Nothing was harmed.
    let reply = h::get(&app, "/api/users?page_size=100").await;
    assert_eq!(ids(&reply, None).len(), people.len());
}

async fn logto_nul_oversized_and_undecodable_values_are_400(app: TestApp) {
    let (people, role) = hostile::directory(&app).await;
    for key in [
        "search",
        "search.id",
        "search.primaryEmail",
        "search.primaryPhone",
        "search.username",
        "search.name",
    ] {
        for mode in ["exact", "like", "posix", "similar_to"] {
            for (value, reason) in [
                ("a%00b".to_owned(), "NUL"),
                (encode(&"é".repeat(300)), "at most"),
            ] {
                let path = format!("/api/users?mode={mode}&isCaseSensitive=1&{key}={value}");
                let reply = h::get(&app, &path).await;
                assert_eq!(reply.status, 400, "{path}: {}", reply.text);
                assert_eq!(reply.json["code"], "request.invalid_input", "{path}");
                let details = reply.json["details"].as_str().unwrap();
                assert!(
                    details.contains(key) && details.contains(reason),
                    "{path}: {details}"
                );
            }
        }
    }
    // Not UTF-8 after decoding: refused, in keys and values, on every route.
    let role_path = format!("/api/roles/{role}/users?search.id=%C3%28");
    for path in [
        "/api/users?search=%FF",
        "/api/users?%FF=1",
        role_path.as_str(),
        "/identity/v1/users?filter=%FF",
    ] {
        let reply = h::get(&app, path).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text);
    }
    // Ids that cannot exist are not found, never looked up wrongly.
    for id in ["%00", "%27%20OR%20%271%27%3D%271", "%25", "_"] {
        let reply = h::get(&app, &format!("/api/users/{id}")).await;
        assert_eq!(reply.status, 404, "{id}: {}", reply.text);
        let reply = h::get(&app, &format!("/api/roles/{id}/users")).await;
        assert_eq!(reply.status, 404, "{id}: {}", reply.text);
    }
    let long = "x".repeat(300);
    let reply = h::get(&app, &format!("/api/users/{long}")).await;
    assert_eq!(reply.status, 404);
    // Role members, with a hostile search: literal.
    let probe = "a_b";
    let reply = h::get(
        &app,
        &format!(
            "/api/roles/{role}/users?page_size=100&mode=exact&search.username={}",
            encode(probe)
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        ids(&reply, None),
        hostile::ids_where(&people, |p| p.usernames.iter().any(|(u, _)| u == probe))
    );
}

/// An OData string literal: single quotes, `''` for a quote.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

async fn odata_literals_match_exactly_or_refuse_clearly(app: TestApp) {
    let (people, _) = hostile::directory(&app).await;
    let everybody = hostile::ids_where(&people, |_| true);
    let probes: Vec<&str> = HOSTILE.iter().chain(PROBES).copied().collect();
    let list = |filter: String| {
        let app = &app;
        async move {
            let path = format!("/identity/v1/users?limit=600&filter={}", encode(&filter));
            (filter, h::get(app, &path).await)
        }
    };
    for probe in &probes {
        let expected = hostile::ids_where(&people, |p| p.usernames.iter().any(|(u, _)| u == probe));
        let (filter, reply) = list(format!("username eq {}", literal(probe))).await;
        assert_eq!(reply.status, 200, "{filter}: {}", reply.text);
        assert_eq!(ids(&reply, Some("items")), expected, "{filter}");
        let (filter, reply) = list(format!("not (username eq {})", literal(probe))).await;
        assert_eq!(reply.status, 200, "{filter}: {}", reply.text);
        let complement: Vec<String> = everybody
            .iter()
            .filter(|id| !expected.contains(id))
            .cloned()
            .collect();
        assert_eq!(ids(&reply, Some("items")), complement, "{filter}");
        let (filter, reply) = list(format!(
            "id eq {} or id ne {}",
            literal(probe),
            literal(probe)
        ))
        .await;
        assert_eq!(ids(&reply, Some("items")), everybody, "{filter}");
    }
    for person in people.iter().take(3) {
        let (filter, reply) = list(format!("id eq {}", literal(&person.id))).await;
        assert_eq!(
            ids(&reply, Some("items")),
            vec![person.id.clone()],
            "{filter}"
        );
    }
    // NUL, oversized literals and hostile text outside a literal: 400 with where and why.
    for (filter, position, reason) in [
        ("username eq 'a\0b'".to_owned(), 13, "NUL"),
        (
            format!("username eq '{}'", "é".repeat(201)),
            13,
            "1 to 200 characters",
        ),
        (
            format!("id eq '{}'", "x".repeat(201)),
            7,
            "1 to 200 characters",
        ),
        (
            "username eq 'a' ; DROP TABLE users".to_owned(),
            17,
            "unexpected character",
        ),
        (
            "username eq 'a' -- comment".to_owned(),
            17,
            "unexpected character",
        ),
        ("username eq \"a\"".to_owned(), 13, "unexpected character"),
        ("username eq 'o'brien'".to_owned(), 21, "not closed"),
        ("username eq 'unclosed".to_owned(), 13, "not closed"),
        ("username like '%'".to_owned(), 10, "unknown operator"),
        (
            "userStatus eq 'VERIFIED'' OR ''1''=''1'".to_owned(),
            15,
            "unknown userStatus",
        ),
    ] {
        let (filter, reply) = list(filter).await;
        assert_eq!(reply.status, 400, "{filter:?}: {}", reply.text);
        let issue = &reply.json["errorDetails"][0]["issues"][0];
        assert_eq!(issue["source"], "filter", "{filter:?}");
        assert_eq!(issue["position"], position, "{filter:?}: {}", reply.text);
        assert!(
            issue["description"].as_str().unwrap().contains(reason),
            "{filter:?}: {}",
            reply.text
        );
    }
    let (_, reply) = list(String::new()).await;
    assert_eq!(ids(&reply, Some("items")), everybody);
    assert_eq!(reply.json["total"], Value::from(people.len()));
}
