//! Logto's REST dialect (`/api/users`, `/api/users/{id}`, `/api/roles/{id}/users`) through the
//! real server, on SQLite and PostgreSQL: every answer is compared with the equivalent gRPC
//! ListUsers (or ListRoleUsers) query.

use crate::common;

use common::TestApp;
use common::fixtures::{self, NewUser, user_id};
use common::queries::{self as q, M};
use reqwest::StatusCode;
use serde_json::Value;
use userdir::domain::UserState;
use userdir::proto::user::v1::{self as pb, FieldName};

backend_tests!(
    pages_carry_total_and_links_and_bounds_are_checked,
    like_mode_has_live_wildcards_and_ignores_case_by_default,
    exact_mode_takes_several_values,
    regex_modes_match_and_bad_patterns_are_400,
    general_search_and_joint_combine_like_grpc_or_and_and,
    role_users_are_the_role_filter_and_the_search,
    get_user_maps_the_user_and_404s_unknown_ids,
    name_is_derived_from_the_data_on_create_and_patch,
    regexes_mean_what_rust_regex_means_on_both_backends,
    page_size_follows_a_lower_server_maximum,
);

/// Twelve users, newest last: varied emails (case), phones, usernames and states.
async fn population(app: &TestApp) {
    fixtures::base(&app.db).await;
    let mut users = Vec::new();
    for n in 0..12u64 {
        let mut user = NewUser::new(n);
        user = match n % 4 {
            0 => user.email(&format!("Ann{n}@Example.com")),
            1 => user
                .email(&format!("bob{n}@example.com"))
                .phone("+41791234567"),
            2 => user.email(&format!("50%_off{n}@shop.ch")),
            _ => user,
        };
        if n % 3 == 0 {
            user = user.username(&format!("Special{n}"), true);
        }
        if n == 5 {
            user = user.state(UserState::Locked).every_authenticator();
        }
        users.push(user);
    }
    fixtures::insert(&app.db, users).await;
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .get(format!("http://{}{path}", app.address))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("HTTP request");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.expect("a JSON body");
    (status, headers, body)
}

fn ids(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

/// All users of a Logto search (one page of 100), newest first.
async fn logto(app: &TestApp, query: &str) -> Vec<String> {
    let (status, headers, body) = get(app, &format!("/api/users?page_size=100&{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    let found = ids(&body);
    assert_eq!(
        headers["Total-Number"].to_str().unwrap(),
        found.len().to_string(),
        "{query}"
    );
    found
}

/// The same through gRPC ListUsers: creation date descending, as Logto sorts.
async fn grpc(app: &TestApp, queries: Vec<pb::SearchQuery>) -> Vec<String> {
    grpc_page(app, queries, 0, 1000).await
}

async fn grpc_page(
    app: &TestApp,
    queries: Vec<pb::SearchQuery>,
    offset: u64,
    limit: u32,
) -> Vec<String> {
    app.users
        .clone()
        .list_users(q::request(
            queries,
            offset,
            limit,
            false,
            FieldName::CreationDate,
        ))
        .await
        .expect("ListUsers")
        .into_inner()
        .result
        .into_iter()
        .map(|u| u.user_id)
        .collect()
}

async fn error(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let (status, _, body) = get(app, path).await;
    (
        status,
        body["code"].as_str().unwrap_or_default().to_owned(),
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn pages_carry_total_and_links_and_bounds_are_checked(app: TestApp) {
    population(&app).await;
    let (status, headers, body) = get(&app, "/api/users?page=2&page_size=5&mode=like").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), grpc_page(&app, vec![], 5, 5).await);
    assert_eq!(headers["Total-Number"], "12");
    assert_eq!(
        headers["Link"].to_str().unwrap(),
        "</api/users?page=1&page_size=5&mode=like>; rel=\"first\", \
         </api/users?page=1&page_size=5&mode=like>; rel=\"prev\", \
         </api/users?page=3&page_size=5&mode=like>; rel=\"next\", \
         </api/users?page=3&page_size=5&mode=like>; rel=\"last\""
    );
    // Defaults: page 1 of 20.
    let (_, headers, body) = get(&app, "/api/users").await;
    assert_eq!(ids(&body), grpc(&app, vec![]).await);
    assert_eq!(
        headers["Link"].to_str().unwrap(),
        "</api/users?page=1>; rel=\"first\""
    );
    // Past the end: empty, same total.
    let (_, headers, body) = get(&app, "/api/users?page=9&page_size=5").await;
    assert_eq!(ids(&body), Vec::<String>::new());
    assert_eq!(headers["Total-Number"], "12");
    for bad in [
        "page=0",
        "page=-1",
        "page=1.5",
        "page=x",
        "page_size=0",
        "page_size=101",
        "page=99999999999999999999",
        "page=999999999999999999&page_size=100",
    ] {
        assert_eq!(
            error(&app, &format!("/api/users?{bad}")).await,
            (
                StatusCode::BAD_REQUEST,
                "guard.invalid_pagination".into(),
                "The request pagination value is invalid.".into()
            ),
            "{bad}"
        );
    }
    // Non-UTF-8 in the query string.
    let (status, code, _) = error(&app, "/api/users?search=%FF").await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "request.invalid_input")
    );
}

async fn like_mode_has_live_wildcards_and_ignores_case_by_default(app: TestApp) {
    population(&app).await;
    assert_eq!(
        logto(&app, "search.primaryEmail=%25ANN%25").await,
        grpc(&app, vec![q::email("ann", M::ContainsIgnoreCase)]).await
    );
    assert_eq!(
        logto(&app, "search.primary_email=ann%25&isCaseSensitive=true").await,
        grpc(&app, vec![q::email("ann", M::StartsWith)]).await
    );
    // `_` is one character; `\` escapes a wildcard.
    assert_eq!(
        logto(&app, "search.primaryEmail=bob_@%25").await,
        grpc(
            &app,
            vec![q::or(
                (0..10)
                    .map(|d| q::email(&format!("bob{d}@"), M::StartsWithIgnoreCase))
                    .collect()
            )]
        )
        .await
    );
    assert_eq!(
        logto(&app, "search.primaryEmail=50%5C%25%5C_off%25").await,
        grpc(&app, vec![q::email("50%_off", M::StartsWith)]).await
    );
    assert_eq!(
        logto(&app, "search.primaryPhone=%2B41%25&mode.primaryPhone=like").await,
        grpc(&app, vec![q::phone("+41", M::StartsWith)]).await
    );
    // Without wildcards `like` is a whole-value match.
    assert_eq!(
        logto(&app, "search.username=USER3").await,
        grpc(&app, vec![q::username("user3", M::EqualsIgnoreCase, None)]).await
    );
    let (status, code, message) = error(&app, "/api/users?search.id=ab%5C").await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "request.invalid_input")
    );
    assert!(message.contains("lone"), "{message}");
}

async fn exact_mode_takes_several_values(app: TestApp) {
    population(&app).await;
    let (a, b) = (user_id(2), user_id(7));
    assert_eq!(
        logto(
            &app,
            &format!("search.id={}&search.id={b}&mode.id=exact", a.to_uppercase())
        )
        .await,
        grpc(
            &app,
            vec![q::or(vec![
                q::user_id(&a, M::Equals),
                q::user_id(&b, M::Equals)
            ])]
        )
        .await
    );
    assert_eq!(
        logto(
            &app,
            &format!(
                "search.id={}&mode=exact&isCaseSensitive=true",
                a.to_uppercase()
            )
        )
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        logto(&app, "search.username=special3&mode=exact").await,
        grpc(
            &app,
            vec![q::username("special3", M::EqualsIgnoreCase, None)]
        )
        .await
    );
    assert_eq!(
        logto(
            &app,
            "search.username=special3&mode=exact&isCaseSensitive=yes"
        )
        .await,
        Vec::<String>::new()
    );
    let (status, code, message) = error(&app, "/api/users?search.id=a&search.id=b").await;
    assert_eq!(
        (status, code.as_str(), message.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "request.invalid_input",
            "Input is invalid. Only one search value is allowed when search mode is not `exact`."
        )
    );
}

async fn regex_modes_match_and_bad_patterns_are_400(app: TestApp) {
    population(&app).await;
    // Users 10 and 11: usernames user10, user11.
    assert_eq!(
        logto(&app, "search.username=%5EUSER1%5B0-9%5D%24&mode=posix").await,
        grpc(
            &app,
            vec![q::or(vec![
                q::username("user10", M::Equals, None),
                q::username("user11", M::Equals, None)
            ])]
        )
        .await
    );
    assert_eq!(
        logto(
            &app,
            "search.username=%5EUSER1%5B0-9%5D%24&mode=posix&isCaseSensitive=1"
        )
        .await,
        Vec::<String>::new()
    );
    // Emails ending in .ch, dot escaped.
    assert_eq!(
        logto(
            &app,
            "search.primaryEmail=%5C.ch%24&mode.primaryEmail=posix"
        )
        .await,
        grpc(&app, vec![q::email(".ch", M::EndsWith)]).await
    );
    // similar_to: anchored, % and _ wildcards, case-sensitive only.
    assert_eq!(
        logto(
            &app,
            "search.username=Special(3|6)%25&mode=similar_to&isCaseSensitive=true"
        )
        .await,
        grpc(
            &app,
            vec![q::or(vec![
                q::username("Special3", M::StartsWith, None),
                q::username("Special6", M::StartsWith, None)
            ])]
        )
        .await
    );
    let (status, code, message) =
        error(&app, "/api/users?search.username=a%25&mode=similar_to").await;
    assert_eq!(
        (status, code.as_str(), message.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "request.invalid_input",
            "Input is invalid. Cannot use case-insensitive match for `similar to`."
        )
    );
    for bad in [
        "(a",
        "%5Cd%2B",
        "a%7B999%7D",
        "(%3F%3Da)",
        "%5B%5B%3Aalpha%3A%5D%5D",
        "(a%7B255%7D)%7B255%7D",
        "*",
    ] {
        let (status, code, message) = error(
            &app,
            &format!("/api/users?search.username={bad}&mode=posix"),
        )
        .await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "request.invalid_input"),
            "{bad}: {message}"
        );
        assert!(
            message.starts_with("Input is invalid. Search value is invalid"),
            "{message}"
        );
    }
    let long = "a".repeat(257);
    let (status, _, message) = error(
        &app,
        &format!("/api/users?search.username={long}&mode=posix"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("at most 256"), "{message}");
}

async fn general_search_and_joint_combine_like_grpc_or_and_and(app: TestApp) {
    population(&app).await;
    // `search` looks at id, primary email, primary phone and every username.
    let any_field = |text: &str, method: M| {
        q::or(vec![
            q::user_id(text, method),
            q::email(text, method),
            q::phone(text, method),
            q::username(text, method, None),
        ])
    };
    assert_eq!(
        logto(&app, "search=%25special%25").await,
        grpc(&app, vec![any_field("special", M::ContainsIgnoreCase)]).await
    );
    assert_eq!(
        logto(&app, "search=%25ann%25&search.primaryPhone=%2B41%25").await,
        grpc(
            &app,
            vec![q::or(vec![
                any_field("ann", M::ContainsIgnoreCase),
                q::phone("+41", M::StartsWith)
            ])]
        )
        .await
    );
    assert_eq!(
        logto(
            &app,
            "search.primaryEmail=%25example%25&search.username=%25special%25&joint=and"
        )
        .await,
        grpc(
            &app,
            vec![
                q::email("example", M::ContainsIgnoreCase),
                q::username("special", M::ContainsIgnoreCase, None)
            ]
        )
        .await
    );
    let (status, code, message) = error(&app, "/api/users?search.id=a&joint=xor").await;
    assert_eq!(
        (status, code.as_str(), message.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "request.invalid_input",
            "Input is invalid. Search joint mode `xor` is not valid, expect one of or, and."
        )
    );
    let (_, _, message) = error(&app, "/api/users?search.nickname=a").await;
    assert!(
        message.contains("Search field `nickname` is not valid"),
        "{message}"
    );
}

async fn role_users_are_the_role_filter_and_the_search(app: TestApp) {
    population(&app).await;
    let mut roles = app.roles.clone();
    let role = common::api::role(&app, "Admin").await;
    roles
        .assign_role(pb::AssignRoleRequest {
            role_id: role.clone(),
            user_ids: [0, 1, 4, 8, 9].map(user_id).to_vec(),
        })
        .await
        .unwrap();
    let role_users = |queries: Vec<pb::SearchQuery>| {
        let mut roles = roles.clone();
        let role = role.clone();
        async move {
            roles
                .list_role_users(pb::ListRoleUsersRequest {
                    role_id: role,
                    query: Some(pb::ListQuery {
                        offset: 0,
                        limit: 100,
                        asc: false,
                        ..Default::default()
                    }),
                    sorting_column: FieldName::CreationDate.into(),
                    queries,
                })
                .await
                .unwrap()
                .into_inner()
                .result
                .into_iter()
                .map(|u| u.user_id)
                .collect::<Vec<_>>()
        }
    };
    let (status, headers, body) = get(&app, &format!("/api/roles/{role}/users")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), role_users(vec![]).await);
    assert_eq!(headers["Total-Number"], "5");
    let (_, headers, body) = get(
        &app,
        &format!("/api/roles/{role}/users?search.primaryEmail=ann%25&page_size=1&page=2"),
    )
    .await;
    let all = role_users(vec![q::email("ann", M::StartsWithIgnoreCase)]).await;
    assert_eq!(ids(&body), all[1..2].to_vec());
    assert_eq!(headers["Total-Number"], all.len().to_string());
    assert!(
        headers["Link"].to_str().unwrap().starts_with(&format!(
            "</api/roles/{role}/users?search.primaryEmail=ann%25&page_size=1&page=1>; rel=\"first\""
        )),
        "{:?}",
        headers["Link"]
    );
    assert_eq!(
        error(&app, "/api/roles/nope/users").await,
        (
            StatusCode::NOT_FOUND,
            "entity.not_exists_with_id".into(),
            "The roles with ID `nope` does not exist.".into()
        )
    );
    let (status, code, _) = error(&app, &format!("/api/roles/{role}/users?page=0")).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "guard.invalid_pagination")
    );
}

async fn get_user_maps_the_user_and_404s_unknown_ids(app: TestApp) {
    population(&app).await;
    // One user created through the gRPC write API as well.
    let org = common::api::organization(&app, "Acme").await;
    let schema = common::api::person_schema(&app, "person").await;
    let created = common::api::create_user(&app, common::api::new_user(&org, &schema, "zoe")).await;
    let (status, _, zoe) = get(&app, &format!("/api/users/{created}")).await;
    assert_eq!(status, StatusCode::OK);
    let grpc_user = common::api::get_user(&app, &created).await;
    assert_eq!(zoe["id"], grpc_user.user_id);
    assert_eq!(zoe["username"], "zoe");
    assert_eq!(zoe["name"], "zoe");
    assert_eq!(zoe["profile"]["givenName"], "zoe");
    assert_eq!(zoe["customData"], serde_json::json!({"givenName": "zoe"}));
    assert_eq!(zoe["primaryEmail"], Value::Null);
    assert_eq!(zoe["isSuspended"], false);
    assert_eq!(zoe["hasPassword"], false);
    assert_eq!(zoe["lastSignInAt"], Value::Null);
    assert!(zoe.get("ssoIdentities").is_none());

    let five = user_id(5);
    let (status, _, user) = get(&app, &format!("/api/users/{five}?includeSsoIdentities=yes")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["id"], five);
    assert_eq!(user["primaryEmail"], "bob5@example.com");
    assert_eq!(user["primaryPhone"], "+41791234567");
    assert_eq!(user["username"], "user5");
    assert_eq!(user["isSuspended"], true, "locked");
    assert_eq!(user["hasPassword"], true);
    assert_eq!(
        user["identities"]["github"]["userId"],
        format!("ext-{five}")
    );
    assert_eq!(
        user["createdAt"],
        fixtures::BASE_MILLIS + 5 * 1000,
        "epoch milliseconds"
    );
    assert_eq!(user["ssoIdentities"], serde_json::json!([]));
    // The list shows the same JSON.
    let (_, _, list) = get(&app, &format!("/api/users?search.id={five}&mode=exact")).await;
    assert_eq!(list[0], {
        let mut without = user.clone();
        without.as_object_mut().unwrap().remove("ssoIdentities");
        without
    });

    for missing in ["nope".to_owned(), "x".repeat(300), "a%00b".into()] {
        assert_eq!(
            error(&app, &format!("/api/users/{missing}")).await,
            (
                StatusCode::NOT_FOUND,
                "entity.not_found".into(),
                "The resource does not exist.".into()
            ),
            "{missing}"
        );
    }
}

/// Users created over gRPC: `name` is the data's given name; it follows PatchUser.
async fn name_is_derived_from_the_data_on_create_and_patch(app: TestApp) {
    let org = common::api::organization(&app, "Acme").await;
    let schema = common::api::person_schema(&app, "person").await;
    let mut ids = Vec::new();
    for name in ["Zoë", "zoe", "Ann", "ZOLTAN"] {
        let mut request = common::api::new_user(&org, &schema, name);
        request.usernames[0].username = format!("u-{}", ids.len());
        ids.push(common::api::create_user(&app, request).await);
    }
    // Expected: every ListUsers user whose data's given name passes `keep`, newest first.
    let expected = |keep: fn(&str) -> bool| {
        let app = &app;
        async move {
            app.users
                .clone()
                .list_users(q::request(vec![], 0, 100, false, FieldName::CreationDate))
                .await
                .unwrap()
                .into_inner()
                .result
                .into_iter()
                .filter(|u| {
                    let data = common::api::json_of(u.data.as_ref().unwrap());
                    keep(data["givenName"].as_str().unwrap())
                })
                .map(|u| u.user_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        logto(&app, "search.name=ZO%25").await,
        expected(|n| n.to_lowercase().starts_with("zo")).await
    );
    assert_eq!(
        logto(&app, "search.name=zo%C3%AB&mode=exact&isCaseSensitive=true").await,
        expected(|n| n == "zoë").await
    );
    assert_eq!(
        logto(&app, "search=%5Ez.%7B2%7D%24&mode=posix").await,
        expected(|n| n.chars().count() == 3 && n.to_lowercase().starts_with('z')).await
    );
    app.users
        .clone()
        .patch_user(pb::PatchUserRequest {
            user_id: ids[2].clone(),
            data: Some(common::api::object(serde_json::json!({"givenName": "Zed"}))),
            ..Default::default()
        })
        .await
        .expect("PatchUser");
    assert_eq!(
        logto(&app, "search.name=z%25").await,
        expected(|n| n.to_lowercase().starts_with('z')).await
    );
    let (_, _, zed) = get(&app, &format!("/api/users/{}", ids[2])).await;
    assert_eq!(zed["name"], "Zed");
}

/// Both backends agree with Rust's `regex` crate on the accepted subset, Unicode line and space
/// separators and non-ASCII case folding included (names refuse control characters such as
/// `\n`).
async fn regexes_mean_what_rust_regex_means_on_both_backends(app: TestApp) {
    let org = common::api::organization(&app, "Acme").await;
    let schema = common::api::person_schema(&app, "person").await;
    let names = [
        "a\u{2028}b",
        "Ab",
        "x.y",
        "xzy",
        "[br]",
        "ümlaut",
        "ÜMLAUT",
        "tab\u{a0}here",
        "ΣΑΣ",
        "b",
    ];
    let mut users = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut request = common::api::new_user(&org, &schema, name);
        request.usernames[0].username = format!("u-{i}");
        users.push((common::api::create_user(&app, request).await, *name));
    }
    users.reverse(); // newest first, as Logto lists
    let patterns = [
        "a.b",
        "^b",
        "b$",
        "x\\.y",
        "^.{2}$",
        "[a-c]b",
        "ü",
        "^[^a]",
        "(a|x)+z?y",
        "t.*e",
        "^σ",
        "Σ$",
        "[\\[]b",
        "a|^$",
        "^(ab|b)$",
        "m{1,3}l.?u*t?",
    ];
    for pattern in patterns {
        for case_sensitive in [false, true] {
            let (subject, rule): (fn(&str) -> String, String) = if case_sensitive {
                (|s| s.to_owned(), format!("(?s){pattern}"))
            } else {
                (
                    |s| s.to_lowercase(),
                    format!("(?s){}", pattern.to_lowercase()),
                )
            };
            let regex = regex::Regex::new(&rule).unwrap();
            let expected: Vec<String> = users
                .iter()
                .filter(|(_, name)| regex.is_match(&subject(name)))
                .map(|(id, _)| id.clone())
                .collect();
            let encoded: String = pattern.bytes().map(|b| format!("%{b:02X}")).collect();
            let found = logto(
                &app,
                &format!("search.name={encoded}&mode=posix&isCaseSensitive={case_sensitive}"),
            )
            .await;
            assert_eq!(
                found, expected,
                "{pattern:?} case-sensitive: {case_sensitive}"
            );
        }
    }
}

async fn page_size_follows_a_lower_server_maximum(app: TestApp) {
    population(&app).await;
    let small = app
        .with_limits(userdir::query::PageLimits {
            default: 5,
            max: 10,
        })
        .await;
    let (_, headers, body) = get(&small, "/api/users").await;
    assert_eq!(ids(&body), grpc_page(&app, vec![], 0, 10).await);
    assert_eq!(headers["Total-Number"], "12");
    let (status, code, _) = error(&small, "/api/users?page_size=11").await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "guard.invalid_pagination")
    );
}
