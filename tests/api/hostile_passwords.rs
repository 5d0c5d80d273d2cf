//! Hostile passwords through the real interfaces, on SQLite and PostgreSQL: imported hashes that
//! bring their own cost (refused above the ceiling, at import and before every verification),
//! and floods of hashing (bounded server-wide, refused beyond a short queue, never spent on a
//! user the caller cannot write).

use crate::common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use common::TestApp;
use common::api;
use common::http::{self as h, assert_error};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use tonic::Code;
use userdir::config::Settings;
use userdir::limits::hashing::HashingLimits;
use userdir::proto::user::v1 as pb;
use userdir::store::entities::password as password_row;

backend_tests!(
    imported_hashes_above_the_ceiling_are_refused_over_json,
    imported_hashes_above_the_ceiling_are_refused_over_grpc,
    malformed_imported_hashes_are_refused,
    stored_hashes_above_the_ceiling_are_never_run,
    hashing_beyond_the_queue_is_resource_exhausted,
    no_hashing_for_users_the_caller_cannot_write,
    imported_hashes_are_rehashed_to_ours_after_a_successful_check,
);

const CHEAP_SECRET: &str = "cheap secret";
const CHEAP_PARAMS: &str = "m=8,t=1,p=1";

/// A real argon2id hash of [`CHEAP_SECRET`] with the smallest parameters (fast to verify).
fn cheap_argon2() -> String {
    let params = Params::new(8, 1, 1, None).unwrap();
    let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(CHEAP_SECRET.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// The cheap argon2 hash with other parameters: syntactically valid, never verified here.
fn argon2_with(params: &str) -> String {
    cheap_argon2().replace(CHEAP_PARAMS, params)
}

/// A real bcrypt hash (cost 4) with its cost digits replaced.
fn bcrypt_with(cost: u32) -> String {
    let real = bcrypt::hash(CHEAP_SECRET, 4).unwrap();
    format!("{}{cost:02}{}", &real[..4], &real[6..])
}

/// Hashes above the ceiling, each with what the refusal must name.
fn above_the_ceiling() -> Vec<(String, &'static str)> {
    vec![
        (argon2_with("m=4294967295,t=1,p=1"), "65536 KiB"),
        (argon2_with("m=1048576,t=1,p=1"), "65536 KiB"),
        (argon2_with("m=64,t=100,p=1"), "ceiling of 10"),
        (argon2_with("m=512,t=1,p=64"), "ceiling of 4"),
        (bcrypt_with(31), "ceiling of 14"),
    ]
}

/// Hashes exactly at the ceiling: accepted on import (not verified here, they are slow).
fn at_the_ceiling() -> Vec<String> {
    vec![argon2_with("m=65536,t=10,p=4"), bcrypt_with(14)]
}

/// Runs every call at once and waits for all of them.
async fn all<T: Send + 'static>(
    calls: impl Iterator<Item = impl Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let tasks: Vec<_> = calls.map(tokio::spawn).collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("the call's task"));
    }
    outcomes
}

/// An organization and a schema to create users in.
async fn directory(app: &TestApp) -> (String, String) {
    let org = api::organization(app, "Acme").await;
    let schema = api::person_schema(app, "person").await;
    (org, schema)
}

fn with_hash(org: &str, schema: &str, name: &str, hash: &str) -> pb::CreateUserRequest {
    let mut request = api::new_user(org, schema, name);
    request.password = Some(pb::SetPassword {
        r#type: Some(pb::set_password::Type::Hash(hash.into())),
        change_required: false,
    });
    request
}

fn set_password(user_id: &str, kind: pb::set_password::Type) -> pb::SetPasswordRequest {
    pb::SetPasswordRequest {
        user_id: user_id.into(),
        new_password: Some(pb::SetPassword {
            r#type: Some(kind),
            change_required: false,
        }),
    }
}

fn verify(user_id: &str, password: &str) -> pb::VerifyPasswordRequest {
    pb::VerifyPasswordRequest {
        user_id: user_id.into(),
        password: password.into(),
    }
}

async fn imported_hashes_above_the_ceiling_are_refused_over_json(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let body = |name: &str, hash: &str| {
        json!({
            "organizationId": org,
            "schemaId": schema,
            "data": {"givenName": name},
            "usernames": [{"username": name}],
            "password": {"hash": hash},
        })
        .to_string()
    };
    for (i, (hash, ceiling)) in above_the_ceiling().into_iter().enumerate() {
        let reply = h::post(&app, "/v1/users", &body(&format!("over{i}"), &hash)).await;
        assert_error(&reply, 400, 3, "password.hash: ");
        assert_error(&reply, 400, 3, ceiling);
    }
    for (i, hash) in at_the_ceiling().into_iter().enumerate() {
        let reply = h::post(&app, "/v1/users", &body(&format!("at{i}"), &hash)).await;
        assert_eq!(reply.status, 200, "{hash}: {}", reply.text);
    }
    // A cheap real hash is imported and verifies.
    let reply = h::post(&app, "/v1/users", &body("cheap", &cheap_argon2())).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let id = reply.json["userId"].as_str().unwrap().to_owned();
    let reply = h::post(
        &app,
        &format!("/v1/users/{id}/password/verify"),
        &json!({"password": CHEAP_SECRET}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

async fn imported_hashes_above_the_ceiling_are_refused_over_grpc(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let mut users = app.users.clone();
    let id = api::create_user(&app, api::new_user(&org, &schema, "target")).await;
    for (i, (hash, ceiling)) in above_the_ceiling().into_iter().enumerate() {
        let status = users
            .create_user(with_hash(&org, &schema, &format!("over{i}"), &hash))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{hash}: {status:?}");
        assert!(
            status.message().starts_with("password.hash: "),
            "{status:?}"
        );
        assert!(status.message().contains(ceiling), "{status:?}");

        let status = users
            .set_password(set_password(
                &id,
                pb::set_password::Type::Hash(hash.clone()),
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{hash}: {status:?}");
        assert!(
            status.message().starts_with("newPassword.hash: "),
            "{status:?}"
        );
        assert!(status.message().contains(ceiling), "{status:?}");
    }
    for (i, hash) in at_the_ceiling().into_iter().enumerate() {
        users
            .create_user(with_hash(&org, &schema, &format!("at{i}"), &hash))
            .await
            .unwrap_or_else(|e| panic!("{hash}: {e:?}"));
        users
            .set_password(set_password(
                &id,
                pb::set_password::Type::Hash(hash.clone()),
            ))
            .await
            .unwrap_or_else(|e| panic!("{hash}: {e:?}"));
    }
    // Real cheap hashes of both kinds verify.
    for hash in [cheap_argon2(), bcrypt::hash(CHEAP_SECRET, 4).unwrap()] {
        users
            .set_password(set_password(
                &id,
                pb::set_password::Type::Hash(hash.clone()),
            ))
            .await
            .unwrap();
        users
            .verify_password(verify(&id, CHEAP_SECRET))
            .await
            .unwrap_or_else(|e| panic!("{hash}: {e:?}"));
    }
}

async fn malformed_imported_hashes_are_refused(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let cheap = cheap_argon2();
    let output = cheap.rsplit('$').next().unwrap();
    let malformed = [
        // A 4-byte salt: argon2 needs at least 8.
        format!("$argon2id$v=19${CHEAP_PARAMS}$c2FsdA${output}"),
        // No output.
        cheap[..cheap.rfind('$').unwrap()].to_owned(),
        // Less memory than 8 KiB per lane.
        argon2_with("m=8,t=1,p=4"),
        argon2_with("m=8,t=0,p=1"),
        cheap.replace("v=19", "v=18"),
        bcrypt_with(3),
        format!("$2b$10${}", "a".repeat(53)),
    ];
    for (i, hash) in malformed.iter().enumerate() {
        let status = app
            .users
            .clone()
            .create_user(with_hash(&org, &schema, &format!("bad{i}"), hash))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{hash}: {status:?}");
        assert!(
            status.message().starts_with("password.hash: "),
            "{status:?}"
        );
    }
}

async fn stored_hashes_above_the_ceiling_are_never_run(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let id = api::create_user(&app, with_hash(&org, &schema, "stored", &cheap_argon2())).await;
    // Written behind the server's back, as SQL or an older version could have.
    for (hash, ceiling) in [
        (argon2_with("m=4294967295,t=1,p=1"), "65536 KiB"),
        (bcrypt_with(31), "ceiling of 14"),
    ] {
        password_row::Entity::update_many()
            .col_expr(password_row::Column::Hash, Expr::value(hash.clone()))
            .filter(password_row::Column::UserId.eq(id.as_str()))
            .exec(&app.db)
            .await
            .unwrap();
        // Running the hash would abort the process (4 TiB) or take days (bcrypt 31).
        let status = tokio::time::timeout(
            Duration::from_secs(10),
            app.users.clone().verify_password(verify(&id, CHEAP_SECRET)),
        )
        .await
        .expect("refused at once, not run")
        .unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(
            status
                .message()
                .contains("exceeds the server's cost ceiling"),
            "{status:?}"
        );
        assert!(status.message().contains(ceiling), "{status:?}");
        assert!(status.message().contains("SetPassword"), "{status:?}");
        assert!(api::get_user(&app, &id).await.last_login.is_none());
    }
    // Setting a new password is the way out.
    app.users
        .clone()
        .set_password(set_password(
            &id,
            pb::set_password::Type::Password("a brand new password".into()),
        ))
        .await
        .unwrap();
    app.users
        .clone()
        .verify_password(verify(&id, "a brand new password"))
        .await
        .unwrap();
}

async fn hashing_beyond_the_queue_is_resource_exhausted(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let setter = api::create_user(&app, api::new_user(&org, &schema, "setter")).await;
    let checker = api::create_user(&app, api::new_user(&org, &schema, "checker")).await;
    let server = app
        .with_settings(Settings {
            hashing: HashingLimits {
                max_concurrent: 1,
                queue: 1,
            },
            ..Settings::default()
        })
        .await;
    let mut users = server.users.clone();
    users
        .set_password(set_password(
            &checker,
            pb::set_password::Type::Password("checker's password".into()),
        ))
        .await
        .unwrap();

    // Twenty at once: one runs, one waits, the rest are refused at once; hashing (SetPassword)
    // and verifying (VerifyPassword) share the bound.
    let calls = (0..20).map(|i| {
        let mut users = users.clone();
        let (setter, checker) = (setter.clone(), checker.clone());
        async move {
            if i % 2 == 0 {
                let new = pb::set_password::Type::Password(format!("password number {i}"));
                users.set_password(set_password(&setter, new)).await.err()
            } else {
                let request = verify(&checker, "checker's password");
                users.verify_password(request).await.err()
            }
        }
    });
    let outcomes = all(calls).await;
    let refused: Vec<_> = outcomes.iter().flatten().collect();
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status
                .message()
                .contains("--max-concurrent-password-hashes"),
            "{status:?}"
        );
    }
    assert!(!refused.is_empty(), "twenty at once with room for two");
    assert!(refused.len() < outcomes.len(), "some must succeed");

    // Over HTTP/JSON the refusal is 429; afterwards the bound is free again.
    let server = Arc::new(server);
    let bursts = (0..20).map(|i| {
        let server = server.clone();
        let path = format!("/v1/users/{setter}/password");
        async move {
            let body = json!({"newPassword": {"password": format!("json password {i}")}});
            h::post(&server, &path, &body.to_string()).await
        }
    });
    let replies = all(bursts).await;
    assert!(
        replies.iter().any(|reply| reply.status == 429),
        "twenty at once over HTTP"
    );
    for reply in replies.iter().filter(|reply| reply.status != 200) {
        assert_error(reply, 429, 8, "password hashing is busy");
    }
    users
        .set_password(set_password(
            &setter,
            pb::set_password::Type::Password("one at a time".into()),
        ))
        .await
        .unwrap();
}

async fn no_hashing_for_users_the_caller_cannot_write(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let other_org = api::organization(&app, "Other").await;
    let theirs = api::create_user(&app, api::new_user(&other_org, &schema, "theirs")).await;
    let scoped = app
        .tokens
        .clone()
        .create_access_token(pb::CreateAccessTokenRequest {
            description: "acme admin".into(),
            admin: true,
            organization_id: Some(org.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    // No room to wait: a call that hashed would be refused whenever another one hashes.
    let server = app
        .with_settings(Settings {
            hashing: HashingLimits {
                max_concurrent: 1,
                queue: 0,
            },
            ..Settings::default()
        })
        .await;
    let users = server.clients(Some(&scoped)).users;
    let missing = "0190a1b2-0000-7000-8000-000000000000".to_owned();
    let calls = (0..20).map(|i| {
        let mut users = users.clone();
        let target = if i % 2 == 0 {
            missing.clone()
        } else {
            theirs.clone()
        };
        async move {
            let new = pb::set_password::Type::Password(format!("password number {i}"));
            let status = users
                .set_password(set_password(&target, new))
                .await
                .unwrap_err();
            (target, status)
        }
    });
    for (target, status) in all(calls).await {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert_eq!(
            status.message(),
            format!("userId: no user with id {target:?}"),
            "exactly like a missing id"
        );
    }
    // Creating a user in another organization hashes nothing either.
    let mut request = api::new_user(&other_org, &schema, "smuggled");
    request.password = Some(pb::SetPassword {
        r#type: Some(pb::set_password::Type::Password("long enough".into())),
        change_required: false,
    });
    let status = users.clone().create_user(request).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

/// The stored hash of `user_id`, read behind the server's back.
async fn stored_hash(app: &TestApp, user_id: &str) -> String {
    password_row::Entity::find_by_id(user_id)
        .one(&app.db)
        .await
        .unwrap()
        .expect("a stored password")
        .hash
}

async fn imported_hashes_are_rehashed_to_ours_after_a_successful_check(app: TestApp) {
    let (org, schema) = directory(&app).await;
    let id = api::create_user(&app, api::new_user(&org, &schema, "imported")).await;
    let mut users = app.users.clone();
    let ours = "$argon2id$v=19$m=19456,t=2,p=1$";
    for imported in [cheap_argon2(), bcrypt::hash(CHEAP_SECRET, 4).unwrap()] {
        users
            .set_password(set_password(
                &id,
                pb::set_password::Type::Hash(imported.clone()),
            ))
            .await
            .unwrap();
        // A failed check changes nothing.
        users
            .verify_password(verify(&id, "not the secret"))
            .await
            .unwrap_err();
        assert_eq!(stored_hash(&app, &id).await, imported);
        users
            .verify_password(verify(&id, CHEAP_SECRET))
            .await
            .unwrap();
        let rehashed = stored_hash(&app, &id).await;
        assert!(rehashed.starts_with(ours), "{imported} became {rehashed}");
        // Ours stay as they are, and still verify.
        users
            .verify_password(verify(&id, CHEAP_SECRET))
            .await
            .unwrap();
        assert_eq!(stored_hash(&app, &id).await, rehashed);
    }
}
