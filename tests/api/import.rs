//! Bulk import on SQLite and PostgreSQL: `userdir import FILE` (the binary, JSON Lines), the
//! client-streaming ImportUsers RPC and its HTTP rule. Good records are imported with their
//! authenticators, bad ones are reported by line or index without stopping the rest, a re-run
//! skips the records that carry ids, and counters, events and indexes end up as individual
//! creates would leave them.

use crate::common;

use std::collections::BTreeMap;

use common::api::{self, object};
use common::http as h;
use common::{Clients, TestApp};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tonic::Code;
use userdir::auth::Permission;
use userdir::proto::user::v1 as pb;
use userdir::seed::{self, SeedOptions};

backend_tests!(
    a_file_imports_good_records_and_reports_bad_ones_by_line,
    the_rpc_imports_a_stream_and_reports_errors_by_index,
    the_http_rule_takes_a_json_array_of_records,
    a_stream_is_cut_after_the_record_limit,
    an_import_beside_concurrent_creates_keeps_the_log_and_counters_exact,
    seeding_writes_one_event_per_user,
    an_exclusive_import_puts_back_every_index_and_foreign_key,
    an_exclusive_import_that_stops_leaves_the_directory_as_it_was,
    an_exclusive_import_decides_each_batch_after_the_ones_before,
);

const BINARY: &str = env!("CARGO_BIN_EXE_userdir");

/// An organization and a person schema (`givenName` required, `age` an integer ≥ 0).
async fn directory(app: &TestApp) -> (String, String) {
    let org = api::organization(app, "Acme").await;
    let schema = api::person_schema(app, "person").await;
    (org, schema)
}

/// `userdir import` over the test database: success, stdout.
async fn import_file(app: &TestApp, lines: &[String]) -> (bool, String) {
    let (ok, stdout, _) = run_import(app, lines, &[]).await;
    (ok, stdout)
}

/// `userdir import` in batches of 3 with more arguments: success, stdout, stderr.
async fn run_import(app: &TestApp, lines: &[String], args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let output = tokio::process::Command::new(BINARY)
        .arg("import")
        .arg(&file)
        .args(["--batch-size", "3", "--database-url", &app.database_url])
        .args(args)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        stderr,
    )
}

/// The import's report on stdout, line by line, starts with `expected`'s lines.
fn assert_reported(stdout: &str, expected: &[&str]) {
    let reported: Vec<&str> = stdout.lines().collect();
    assert_eq!(reported.len(), expected.len(), "{stdout}");
    for (line, prefix) in reported.iter().zip(expected) {
        assert!(
            line.starts_with(prefix),
            "{line:?} should start with {prefix:?}"
        );
    }
}

/// Every event: (sequence, type, aggregate, organization, position in it, actor).
async fn events(app: &TestApp) -> Vec<(i64, String, String, Option<String>, Option<i64>, String)> {
    app.db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT sequence, event_type, aggregate_id, organization_id, organization_sequence, \
             actor FROM events ORDER BY sequence",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.try_get("", "sequence").unwrap(),
                row.try_get("", "event_type").unwrap(),
                row.try_get("", "aggregate_id").unwrap(),
                row.try_get("", "organization_id").unwrap(),
                row.try_get("", "organization_sequence").unwrap(),
                row.try_get("", "actor").unwrap(),
            )
        })
        .collect()
}

/// The log is gapless from 1, each organization's stream too, and every user event names a
/// user that exists or existed; returns the ids of `user.created` events.
async fn assert_log_is_gapless(app: &TestApp) -> Vec<String> {
    let events = events(app).await;
    let sequences: Vec<i64> = events.iter().map(|e| e.0).collect();
    assert_eq!(sequences, (1..=events.len() as i64).collect::<Vec<_>>());
    let mut streams: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (_, _, _, org, position, _) in &events {
        if let (Some(org), Some(position)) = (org, position) {
            streams.entry(org.clone()).or_default().push(*position);
        }
    }
    for (org, positions) in streams {
        assert_eq!(
            positions,
            (1..=positions.len() as i64).collect::<Vec<_>>(),
            "the stream of {org}"
        );
    }
    events
        .into_iter()
        .filter(|e| e.1 == "user.created")
        .map(|e| e.2)
        .collect()
}

async fn assert_counters_exact(app: &TestApp) {
    let recount = userdir::store::reads::recount::recount(&app.db)
        .await
        .unwrap();
    assert_eq!(recount.drift, [], "the counters drifted from the rows");
}

async fn total(app: &TestApp, queries: Vec<pb::SearchQuery>) -> u64 {
    app.users
        .clone()
        .list_users(pb::ListUsersRequest {
            queries,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .details
        .unwrap()
        .total_result
}

fn email_contains(text: &str) -> pb::SearchQuery {
    pb::SearchQuery {
        query: Some(pb::search_query::Query::EmailQuery(pb::EmailQuery {
            address: text.into(),
            method: pb::TextQueryMethod::ContainsIgnoreCase as i32,
        })),
    }
}

fn username_contains(text: &str) -> pb::SearchQuery {
    username_query(text, pb::TextQueryMethod::ContainsIgnoreCase)
}

fn username_equals(text: &str) -> pb::SearchQuery {
    username_query(text, pb::TextQueryMethod::EqualsIgnoreCase)
}

fn username_query(text: &str, method: pb::TextQueryMethod) -> pb::SearchQuery {
    pb::SearchQuery {
        query: Some(pb::search_query::Query::UsernameQuery(pb::UsernameQuery {
            username: text.into(),
            method: method as i32,
            is_organization_specific: None,
        })),
    }
}

async fn a_file_imports_good_records_and_reports_bad_ones_by_line(app: TestApp) {
    let (org, schema) = directory(&app).await;
    // Taken before the import: a record asking for it fails.
    api::create_user(&app, api::new_user(&org, &schema, "taken")).await;
    let bcrypt = bcrypt::hash("correct horse", 4).unwrap();
    let key = userdir::domain::keys::generate().unwrap();
    let totp = userdir::domain::totp::register("ann@acme.example").unwrap();
    let ann = "0190a3b1-0000-7000-8000-00000000a001";
    let record = |fields: Value| {
        let mut base =
            json!({"organizationId": org, "schemaId": schema, "data": {"givenName": "X"}});
        base.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        base.to_string()
    };
    let lines = vec![
        // 1: everything an import carries; the id is written upper-case.
        record(json!({
            "userId": ann.to_uppercase(),
            "data": {"givenName": "Ann", "age": 41},
            "usernames": [{"username": "ann.lee"}, {"username": "ann", "isOrganizationSpecific": true}],
            "contact": {"email": {"address": "Ann.Lee@Acme.example", "isVerified": true},
                        "phone": {"number": "+41791234567"}},
            "password": {"hash": bcrypt, "changeRequired": true},
            "state": "USER_STATE_LOCKED",
            "idpLinks": [{"idpId": "github", "idpName": "GitHub", "linkedUserId": "583231", "linkedUsername": "octocat"}],
            "authenticationKeys": [{"publicKey": key.public_pem, "expirationDate": "2099-01-01T00:00:00Z"}],
            "totps": [{"secret": totp.secret}],
            "otpSms": [{"phone": "+41791234567"}],
            "otpEmails": [{"address": "ann@acme.example"}],
        })),
        // 2: bad JSON
        "{\"organizationId\": ".into(),
        // 3: an unknown organization
        record(json!({"organizationId": "no-such-org", "usernames": [{"username": "carl"}]})),
        // 4: data the schema refuses
        record(json!({"data": {"givenName": "Dan", "age": -1}})),
        // 5: a username taken by an existing user (case-insensitively)
        record(json!({"usernames": [{"username": "TAKEN"}]})),
        // 6: a username taken by record 1
        record(json!({"usernames": [{"username": "Ann.Lee"}]})),
        // 7: a malformed password hash
        record(json!({"password": {"hash": "$2b$04$short"}})),
        // 8: a plain password: an import never hashes
        record(json!({"password": {"password": "correct horse"}})),
        // 9: an unknown field
        record(json!({"nickname": "eve"})),
        // 10: a verification code asked for
        record(json!({"contact": {"email": {"address": "f@acme.example", "returnCode": {}}}})),
        // 11: an id that is no UUID
        record(json!({"userId": "not-a-uuid"})),
        String::new(),
        // 13: a plain good record with an id, 14: one without an id or usernames
        record(
            json!({"userId": "0190a3b1-0000-7000-8000-00000000b002", "usernames": [{"username": "bob"}],
                      "contact": {"email": {"address": "bob@acme.example"}}}),
        ),
        record(json!({"data": {"givenName": "Nobody"}})),
        // 15: the IdP link of record 1 again
        record(
            json!({"idpLinks": [{"idpId": "github", "idpName": "GitHub", "linkedUserId": "583231"}]}),
        ),
        // 16: a TOTP secret too short for RFC 4226
        record(json!({"totps": [{"secret": "JBSWY3DPEHPK3PXP"}]})),
    ];
    let (ok, stdout) = import_file(&app, &lines).await;
    assert!(!ok, "failures make the exit status 1: {stdout}");
    let expected = [
        "line 2: failed: InvalidArgument: record: invalid JSON: ",
        "line 3: failed: NotFound: organizationId: no organization with id \"no-such-org\"",
        "line 4: failed: InvalidArgument: data.age: ",
        "line 5: failed: AlreadyExists: usernames[0].username: the username \"TAKEN\" is taken",
        "line 6: failed: AlreadyExists: usernames[0].username: the username \"Ann.Lee\" is taken",
        "line 7: failed: InvalidArgument: password.hash: ",
        "line 8: failed: InvalidArgument: password.password: an import takes only an existing hash",
        "line 9: failed: InvalidArgument: record: unknown field \"nickname\" in the record",
        "line 10: failed: InvalidArgument: contact.email.returnCode: an import sends no verification codes",
        "line 11: failed: InvalidArgument: userId: must be a UUID",
        "line 15: failed: AlreadyExists: idpLinks[0].linkedUserId: \"583231\" at \"github\" is already linked",
        "line 16: failed: InvalidArgument: totps[0].secret: ",
        "imported 3, skipped 0 (already present), failed 12: 15 records in ",
    ];
    assert_reported(&stdout, &expected);

    // The imported user, read through the API, with every authenticator.
    let user = api::get_user(&app, ann).await;
    assert_eq!(user.state, pb::State::UserStateLocked as i32);
    assert_eq!(
        api::json_of(user.data.as_ref().unwrap()),
        json!({"givenName": "Ann", "age": 41})
    );
    let contact = user.contact.unwrap();
    let email = contact.email.unwrap();
    assert_eq!(
        (email.address.as_str(), email.is_verified),
        ("Ann.Lee@Acme.example", true)
    );
    let phone = contact.phone.unwrap();
    assert_eq!(
        (phone.number.as_str(), phone.is_verified),
        ("+41791234567", false)
    );
    let bob = api::get_user(&app, "0190a3b1-0000-7000-8000-00000000b002").await;
    let bob_email = bob.contact.unwrap().email.unwrap();
    assert_eq!(
        (bob_email.address.as_str(), bob_email.is_verified),
        ("bob@acme.example", false),
        "without isVerified an address is imported unverified"
    );
    let details = user.details.unwrap();
    assert_eq!(details.resource_owner, org);
    let authenticators = user.authenticators.unwrap();
    let mut names: Vec<(String, bool)> = authenticators
        .usernames
        .iter()
        .map(|u| (u.username.clone(), u.is_organization_specific))
        .collect();
    names.sort();
    assert_eq!(names, [("ann".into(), true), ("ann.lee".into(), false)]);
    assert!(authenticators.password.is_some());
    assert_eq!(authenticators.identity_providers.len(), 1);
    let link = &authenticators.identity_providers[0];
    assert_eq!(
        (
            link.idp_id.as_str(),
            link.user_id.as_str(),
            link.username.as_str()
        ),
        ("github", "583231", "octocat")
    );
    assert_eq!(authenticators.authentication_keys.len(), 1);
    assert_eq!(
        authenticators.authentication_keys[0]
            .expiration_date
            .as_ref()
            .unwrap()
            .seconds,
        4_070_908_800
    );
    assert_eq!(authenticators.totps.len(), 1);
    assert!(authenticators.totps[0].is_verified);
    assert_eq!(authenticators.totps[0].name, "Authenticator app");
    assert!(authenticators.otp_sms[0].is_verified);
    assert!(authenticators.otp_email[0].is_verified);

    // The hash is stored as it came: the password verifies once the user is unlocked.
    let mut users = app.users.clone();
    users
        .unlock_user(pb::UnlockUserRequest {
            user_id: ann.into(),
        })
        .await
        .unwrap();
    let verified = users
        .verify_password(pb::VerifyPasswordRequest {
            user_id: ann.into(),
            password: "correct horse".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(verified.change_required);

    // Indexed and counted like created users: ignore-case substring and username searches
    // find them, totals (from counters or counted) include them.
    assert_eq!(total(&app, vec![email_contains("lee@acme")]).await, 1);
    assert_eq!(total(&app, vec![username_equals("BOB")]).await, 1);
    assert_eq!(total(&app, vec![]).await, 4);
    assert_counters_exact(&app).await;
    let created = assert_log_is_gapless(&app).await;
    assert_eq!(created.len(), 4, "one user.created per user");
    let imported_by_cli = events(&app)
        .await
        .into_iter()
        .filter(|e| e.1 == "user.created" && e.5 == "cli")
        .count();
    assert_eq!(imported_by_cli, 3);

    // The same file again: records with ids are skipped, the record without id or usernames is
    // a new user, the failures fail as before, and the record with usernames but no id now
    // clashes with itself.
    let (ok, stdout) = import_file(&app, &lines).await;
    assert!(!ok);
    assert!(
        stdout.contains(&format!(
            "line 1: skipped: the user {ann} is already present"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 13: skipped: the user 0190a3b1-0000-7000-8000-00000000b002"),
        "{stdout}"
    );
    assert!(stdout.contains("line 6: failed: AlreadyExists"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("imported 1, skipped 2 (already present), failed 12: 15 records"),
        "{stdout}"
    );
    assert_eq!(total(&app, vec![]).await, 5);
    assert_counters_exact(&app).await;
    assert_eq!(assert_log_is_gapless(&app).await.len(), 5);

    // A file of good records only exits 0.
    let (ok, stdout) =
        import_file(&app, &[record(json!({"usernames": [{"username": "zed"}]}))]).await;
    assert!(ok, "{stdout}");
    assert!(stdout.starts_with("imported 1, skipped 0 (already present), failed 0: 1 records"));
}

fn import_record(org: &str, schema: &str, username: &str) -> pb::ImportUserRecord {
    pb::ImportUserRecord {
        organization_id: org.into(),
        schema_id: schema.into(),
        data: Some(object(json!({"givenName": username}))),
        usernames: vec![pb::SetUsername {
            username: username.into(),
            is_organization_specific: false,
        }],
        ..Default::default()
    }
}

async fn import_stream(
    users: &mut userdir::proto::user::v1::user_service_client::UserServiceClient<common::Authed>,
    records: Vec<pb::ImportUserRecord>,
) -> Result<pb::ImportUsersResponse, tonic::Status> {
    users
        .import_users(tokio_stream::iter(records))
        .await
        .map(tonic::Response::into_inner)
}

async fn mint(app: &TestApp, admin: bool, organization: Option<&str>) -> String {
    let permissions = if admin {
        vec![]
    } else {
        Permission::ALL
            .iter()
            .map(|p| p.name().to_owned())
            .collect()
    };
    app.tokens
        .clone()
        .create_access_token(pb::CreateAccessTokenRequest {
            description: "import test".into(),
            admin,
            permissions,
            organization_id: organization.map(str::to_owned),
            expiration_date: None,
        })
        .await
        .unwrap()
        .into_inner()
        .token
}

async fn the_rpc_imports_a_stream_and_reports_errors_by_index(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let mut users = app.users.clone();
    let with_id = pb::ImportUserRecord {
        user_id: "0190a3b1-0000-7000-8000-00000000c003".into(),
        ..import_record(&org, &schema, "carol")
    };
    let records = vec![
        import_record(&org, &schema, "alice"),
        import_record(&org, &schema, "ALICE"),
        with_id.clone(),
        pb::ImportUserRecord {
            schema_id: "no-such-schema".into(),
            ..import_record(&org, &schema, "dave")
        },
        pb::ImportUserRecord {
            usernames: vec![],
            ..import_record(&org, &schema, "")
        },
    ];
    let response = import_stream(&mut users, records).await.unwrap();
    assert_eq!(
        (response.imported, response.skipped, response.failed),
        (2, 0, 3),
        "{response:?}"
    );
    let expected = [
        (
            1,
            Code::AlreadyExists,
            "usernames[0].username: the username \"ALICE\" is taken",
        ),
        (
            3,
            Code::NotFound,
            "schemaId: no user schema with id \"no-such-schema\"",
        ),
        (4, Code::InvalidArgument, "data.givenName: "),
    ];
    assert_eq!(response.errors.len(), expected.len(), "{response:?}");
    for (error, (index, code, message)) in response.errors.iter().zip(expected) {
        assert_eq!((error.index, error.code), (index, code as i32), "{error:?}");
        assert!(error.message.starts_with(message), "{error:?}");
    }
    let imported: Vec<(u64, bool)> = response
        .users
        .iter()
        .map(|u| (u.index, u.skipped))
        .collect();
    assert_eq!(imported, [(0, false), (2, false)]);
    assert_eq!(response.users[1].user_id, with_id.user_id);
    let alice = api::get_user(&app, &response.users[0].user_id).await;
    assert_eq!(alice.authenticators.unwrap().usernames[0].username, "alice");

    // Again: the record with an id is skipped and reported so.
    let again = import_stream(&mut users, vec![with_id]).await.unwrap();
    assert_eq!((again.imported, again.skipped, again.failed), (0, 1, 0));
    assert!(again.users[0].skipped);
    assert_counters_exact(&app).await;
    assert_eq!(assert_log_is_gapless(&app).await.len(), 2);

    // Events name who imported: the bootstrap token.
    let actors: Vec<String> = events(&app)
        .await
        .into_iter()
        .filter(|e| e.1 == "user.created")
        .map(|e| e.5)
        .collect();
    assert!(actors.iter().all(|a| a.starts_with("token:")), "{actors:?}");

    // Only instance-wide admins import: every permission without the admin grant, or an admin
    // limited to an organization, is refused.
    for token in [
        mint(&app, false, None).await,
        mint(&app, true, Some(&org)).await,
    ] {
        let mut refused = app.clients(Some(&token)).users;
        let status = import_stream(&mut refused, vec![import_record(&org, &schema, "mallory")])
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    let admin = mint(&app, true, None).await;
    let Clients { mut users, .. } = app.clients(Some(&admin));
    let response = import_stream(&mut users, vec![import_record(&org, &schema, "erin")])
        .await
        .unwrap();
    assert_eq!(response.imported, 1);
}

async fn the_http_rule_takes_a_json_array_of_records(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let body = json!([
        {"organizationId": org, "schemaId": schema, "data": {"givenName": "Hal"},
         "usernames": [{"username": "hal"}], "userId": "0190a3b1-0000-7000-8000-00000000d004"},
        {"organizationId": org, "schemaId": schema, "data": {"givenName": "Hal"},
         "usernames": [{"username": "hal"}]},
    ]);
    let reply = h::post(&app, "/v1/users/_import", &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["imported"], "1");
    assert_eq!(reply.json["failed"], "1");
    assert_eq!(reply.json["errors"][0]["index"], "1");
    assert_eq!(reply.json["errors"][0]["code"], Code::AlreadyExists as i32);
    assert_eq!(
        reply.json["users"][0]["userId"],
        "0190a3b1-0000-7000-8000-00000000d004"
    );
    api::get_user(&app, "0190a3b1-0000-7000-8000-00000000d004").await;

    // A record the transcoder cannot bind refuses the whole body, naming the element.
    let reply = h::post(
        &app,
        "/v1/users/_import",
        &json!([{"organizationId": org}, {"organizationId": org, "bogus": 1}]).to_string(),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.json["message"],
        "[1]: unknown field \"bogus\" in the request body"
    );
    // The body is the stream: an object is no array, and query parameters have no place.
    let reply = h::post(&app, "/v1/users/_import", "{}").await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    let reply = h::post(&app, "/v1/users/_import?userId=x", "[]").await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    // An empty array imports nothing.
    let reply = h::post(&app, "/v1/users/_import", "[]").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json, json!({}));
    assert_eq!(total(&app, vec![]).await, 1);
    assert_counters_exact(&app).await;
}

async fn a_stream_is_cut_after_the_record_limit(app: TestApp) {
    use userdir::api::grpc::import::MAX_RECORDS_PER_CALL;
    let (org, schema) = directory(&app).await;
    let mut users = app.users.clone();
    // One good record, then more than the limit of records the edge refuses (a bad id).
    let mut records = vec![import_record(&org, &schema, "first")];
    records.extend((1..MAX_RECORDS_PER_CALL + 5).map(|_| pb::ImportUserRecord {
        user_id: "not-a-uuid".into(),
        ..import_record(&org, &schema, "x")
    }));
    let response = import_stream(&mut users, records).await.unwrap();
    assert_eq!(response.imported, 1);
    assert_eq!(response.failed, MAX_RECORDS_PER_CALL);
    let last = response.errors.last().unwrap();
    assert_eq!(last.index, MAX_RECORDS_PER_CALL);
    assert_eq!(last.code, Code::ResourceExhausted as i32);
    assert!(last.message.contains("another call"), "{last:?}");
    assert_eq!(total(&app, vec![]).await, 1);
}

async fn an_import_beside_concurrent_creates_keeps_the_log_and_counters_exact(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..3 {
        let app_users = app.users.clone();
        let (org, schema) = (org.clone(), schema.clone());
        writers.spawn(async move {
            let mut users = app_users;
            let mut created = 0;
            for i in 0..20 {
                // Every second name is one the import takes too: exactly one of each pair wins.
                let name = if i % 2 == 0 {
                    format!("shared{writer}-{i}")
                } else {
                    format!("api{writer}-{i}")
                };
                match users.create_user(api::new_user(&org, &schema, &name)).await {
                    Ok(_) => created += 1,
                    Err(status) => assert_eq!(status.code(), Code::AlreadyExists),
                }
            }
            created
        });
    }
    let mut records = Vec::new();
    for writer in 0..3 {
        for i in (0..20).step_by(2) {
            records.push(import_record(&org, &schema, &format!("shared{writer}-{i}")));
        }
        for i in 0..30 {
            records.push(import_record(&org, &schema, &format!("bulk{writer}-{i}")));
        }
    }
    let mut users = app.users.clone();
    let response = import_stream(&mut users, records).await.unwrap();
    let mut created = 0;
    while let Some(done) = writers.join_next().await {
        created += done.unwrap();
    }
    // The API's own names all exist; each shared name went to exactly one side.
    assert!(created >= 30, "{created}");
    assert_eq!(response.imported + created, 150, "{response:?}");
    assert_eq!(response.failed, created - 30, "{response:?}");
    assert_eq!(total(&app, vec![]).await, 150);
    assert_counters_exact(&app).await;
    assert_eq!(assert_log_is_gapless(&app).await.len(), 150);
}

async fn seeding_writes_one_event_per_user(app: TestApp) {
    seed::run(
        &app.db,
        SeedOptions {
            users: 120,
            seed: 5,
            batch_size: 50,
            progress: false,
        },
    )
    .await
    .unwrap();
    let created = assert_log_is_gapless(&app).await;
    assert_eq!(created.len(), 120);
    assert_eq!(total(&app, vec![]).await, 120);
    assert_counters_exact(&app).await;
    // The import path's payload: CreateUser's, marked imported.
    let payload: Value = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT payload FROM events WHERE event_type = 'user.created' ORDER BY sequence LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "payload")
        .unwrap();
    assert_eq!(payload["imported"], true);
    assert!(payload["usernames"].is_array(), "{payload}");
}

/// Every index and constraint of the database, with its definition, as the catalog has it.
async fn schema_objects(app: &TestApp) -> Vec<(String, String)> {
    let backend = app.db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => {
            "SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS definition \
             FROM pg_index WHERE indrelid::regclass::text NOT LIKE 'pg_%' \
             UNION ALL SELECT conrelid::regclass::text || '.' || conname, \
             pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        }
        _ => {
            // Not ANALYZE's own statistics table, which the import's ANALYZE makes.
            "SELECT name, coalesce(sql, '') AS definition FROM sqlite_master \
             WHERE type IN ('index', 'trigger', 'table') AND name NOT LIKE 'sqlite_stat%' \
             ORDER BY 1, 2"
        }
    };
    let objects: Vec<(String, String)> = app
        .db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.try_get("", "name").unwrap(),
                row.try_get("", "definition").unwrap(),
            )
        })
        .collect();
    assert!(objects.len() > 20, "{objects:?}");
    objects
}

/// Ten good records (usernames bulk0..bulk9, emails bulk0@acme.example..) and one whose
/// username is taken.
fn bulk_records(org: &str, schema: &str) -> Vec<String> {
    (0..10)
        .map(|i| format!("bulk{i}"))
        .chain(["taken".to_owned()])
        .map(|name| {
            json!({
                "organizationId": org,
                "schemaId": schema,
                "data": {"givenName": name},
                "usernames": [{"username": name}],
                "contact": {"email": {"address": format!("{name}@acme.example"), "isVerified": true}},
                "idpLinks": [{"idpId": "github", "idpName": "GitHub", "linkedUserId": name}],
            })
            .to_string()
        })
        .collect()
}

async fn an_exclusive_import_puts_back_every_index_and_foreign_key(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let taken = api::create_user(&app, api::new_user(&org, &schema, "taken")).await;
    let before = schema_objects(&app).await;
    let (ok, stdout, stderr) =
        run_import(&app, &bulk_records(&org, &schema), &["--exclusive"]).await;
    assert!(!ok, "{stderr}");
    let reported: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        reported[0],
        "line 11: failed: AlreadyExists: usernames[0].username: the username \"taken\" is taken"
    );
    assert!(
        reported[1].starts_with("imported 10, skipped 0 (already present), failed 1: 11 records"),
        "{stdout}"
    );
    // Put back exactly: the same names and definitions (the trigram, composite and reversed
    // indexes, every foreign key with its ON DELETE; on SQLite the trigram tables' triggers).
    assert_eq!(schema_objects(&app).await, before);
    assert_eq!(total(&app, vec![]).await, 11);
    // The imported rows are in the trigram search (SQLite fills its trigram tables at the end),
    // once each, and the rows from before still are.
    assert_eq!(total(&app, vec![email_contains("ULK3@acme")]).await, 1);
    assert_eq!(total(&app, vec![username_contains("ULK")]).await, 10);
    assert_eq!(total(&app, vec![username_contains("AKE")]).await, 1);
    assert_eq!(total(&app, vec![username_equals("BULK7")]).await, 1);
    let created = assert_log_is_gapless(&app).await;
    assert_eq!(created.len(), 11);
    assert_counters_exact(&app).await;
    // The foreign keys hold again: deleting a user takes its usernames and links with it.
    app.users
        .clone()
        .delete_user(pb::DeleteUserRequest {
            user_id: created[1].clone(),
        })
        .await
        .unwrap();
    let orphans = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT (SELECT count(*) FROM usernames u WHERE NOT EXISTS \
             (SELECT 1 FROM users WHERE id = u.user_id)) + (SELECT count(*) FROM idp_links l \
             WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = l.user_id)) AS n",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(orphans, 0);
    assert_ne!(created[1], taken);
}

async fn an_exclusive_import_that_stops_leaves_the_directory_as_it_was(app: TestApp) {
    use userdir::command::import::Importer;
    let (org, schema) = directory(&app).await;
    let before = schema_objects(&app).await;
    let db = userdir::store::ScopedDb::instance(app.db.clone());
    let mut importer = Importer::exclusive(db).await.unwrap();
    let records = userdir::api::grpc::import::JsonRecords::new(1 << 20, 200).unwrap();
    let batch = bulk_records(&org, &schema)
        .iter()
        .map(|line| records.parse(line.as_bytes()).unwrap())
        .collect();
    let outcomes = importer.import(batch).await.unwrap();
    assert_eq!(outcomes.len(), 11);
    if app.db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        // SQLite's readers read the last commit meanwhile (PostgreSQL's wait for the import).
        assert_eq!(total(&app, vec![]).await, 0);
        assert_eq!(total(&app, vec![username_equals("BULK7")]).await, 0);
    }
    // Stopped before its end (an error, ^C): nothing of it stays, and the schema is whole.
    drop(importer);
    assert_eq!(schema_objects(&app).await, before);
    assert_eq!(total(&app, vec![]).await, 0);
    assert_eq!(assert_log_is_gapless(&app).await.len(), 0);
    assert_counters_exact(&app).await;
}

/// An exclusive import decides a batch while the one before is being written (see
/// `command::import::Importer::import`): what that batch took, not yet in the database, counts
/// as taken all the same, and so does what earlier batches wrote.
async fn an_exclusive_import_decides_each_batch_after_the_ones_before(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let ann = "0190a3b1-0000-7000-8000-00000000c001";
    let record = |id: Option<&str>, username: &str, linked: Option<&str>| {
        let mut record = json!({
            "organizationId": org,
            "schemaId": schema,
            "data": {"givenName": username},
            "usernames": [{"username": username}],
        });
        if let Some(id) = id {
            record["userId"] = json!(id);
        }
        if let Some(linked) = linked {
            record["idpLinks"] =
                json!([{"idpId": "github", "idpName": "GitHub", "linkedUserId": linked}]);
        }
        record.to_string()
    };
    // Batches of 3: the second batch is decided before the first is written, the third after.
    let lines = vec![
        record(Some(ann), "carry", Some("4711")),
        record(None, "two", None),
        record(None, "three", None),
        record(None, "CARRY", None),
        record(Some(ann), "ann-again", None),
        record(None, "linked-again", Some("4711")),
        record(None, "Carry", None),
        record(Some(ann), "ann-once-more", None),
        record(None, "nine", Some("4711")),
        record(None, "ten", None),
    ];
    let (ok, stdout, stderr) = run_import(&app, &lines, &["--exclusive"]).await;
    assert!(!ok, "failures make the exit status 1: {stdout} {stderr}");
    let expected = [
        "line 4: failed: AlreadyExists: usernames[0].username: the username \"CARRY\" is taken",
        &format!("line 5: skipped: the user {ann} is already present"),
        "line 6: failed: AlreadyExists: idpLinks[0].linkedUserId: \"4711\" at \"github\" is already linked",
        "line 7: failed: AlreadyExists: usernames[0].username: the username \"Carry\" is taken",
        &format!("line 8: skipped: the user {ann} is already present"),
        "line 9: failed: AlreadyExists: idpLinks[0].linkedUserId: \"4711\" at \"github\" is already linked",
        "imported 4, skipped 2 (already present), failed 4: 10 records in ",
    ];
    assert_reported(&stdout, &expected);
    assert_eq!(total(&app, vec![]).await, 4);
    assert_eq!(total(&app, vec![username_equals("CARRY")]).await, 1);
    let created = assert_log_is_gapless(&app).await;
    assert_eq!(created.len(), 4);
    assert_eq!(created[0], ann);
    assert_counters_exact(&app).await;
    // Event times never go backwards along the sequence, across the batches too.
    let times: Vec<i64> = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT created_at FROM events ORDER BY sequence",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<i64>("", "created_at").unwrap())
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
}
