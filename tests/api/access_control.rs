//! Access control through the real gRPC and HTTP interfaces, on SQLite and PostgreSQL: every
//! operation refuses anonymous and under-privileged callers, organization-scoped tokens learn
//! nothing about other organizations, and tokens are minted, listed, revoked and rate limited.

use crate::common;

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use common::api::{self, new_user};
use common::http as h;
use common::{Clients, TestApp};
use prost_reflect::DescriptorPool;
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use tonic::Code;
use userdir::auth::policy::{self, Rule};
use userdir::auth::rate_limit::{Rate, RateLimitSettings};
use userdir::auth::{Grant, Permission};
use userdir::config::Settings;
use userdir::proto::user::v1 as pb;

backend_tests!(
    every_rpc_refuses_anonymous_and_unpermitted_callers,
    every_http_route_refuses_anonymous_and_unpermitted_callers,
    every_bad_credential_gets_the_same_answer,
    organization_scoped_tokens_see_only_their_organization,
    scoped_tokens_cannot_mint_beyond_themselves,
    tokens_are_listed_revoked_and_expire,
    rate_limits_answer_resource_exhausted_with_retry_after,
);

/// Mints a token through the API (as the bootstrap admin).
async fn mint(app: &TestApp, grant: &Grant, organization: Option<&str>) -> String {
    let (admin, permissions) = match grant {
        Grant::Admin => (true, vec![]),
        Grant::Permissions(set) => (false, set.iter().map(|p| p.name().to_owned()).collect()),
    };
    app.tokens
        .clone()
        .create_access_token(pb::CreateAccessTokenRequest {
            description: "test".into(),
            admin,
            permissions,
            organization_id: organization.map(str::to_owned),
            expiration_date: None,
        })
        .await
        .expect("CreateAccessToken")
        .into_inner()
        .token
}

/// Every permission except `missing`.
fn all_but(missing: &[Permission]) -> Grant {
    Grant::Permissions(
        Permission::ALL
            .into_iter()
            .filter(|p| !missing.contains(p))
            .collect(),
    )
}

/// A gRPC call of `path` with an empty message: the grpc-status of a trailers-only answer (what
/// the auth layer sends), or "passed" when the call reached a service.
async fn grpc_status(app: &TestApp, path: &str, token: Option<&str>) -> String {
    let mut request = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
        .post(format!("http://{}{path}", app.address))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0u8, 0, 0, 0, 0]);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("an HTTP/2 answer");
    match response.headers().get("grpc-status") {
        Some(status) => status.to_str().unwrap().to_owned(),
        None => "passed".into(),
    }
}

fn userdir_methods() -> Vec<String> {
    let pool = DescriptorPool::decode(userdir::proto::DESCRIPTOR_SET).unwrap();
    pool.services()
        .filter(|s| s.full_name().starts_with("userdir."))
        .flat_map(|s| {
            s.methods()
                .map(|m| format!("/{}/{}", s.full_name(), m.name()))
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn every_rpc_refuses_anonymous_and_unpermitted_callers(app: TestApp) {
    let org = api::organization(&app, "Scoped").await;
    let methods = userdir_methods();
    assert!(methods.len() >= 51, "{methods:?}");
    let scoped_admin = mint(&app, &Grant::Admin, Some(&org)).await;
    for path in &methods {
        let (permissions, instance_only) = match policy::grpc_rule(path) {
            Rule::Requires {
                permissions,
                instance_only,
            } => (permissions, instance_only),
            // Every permission without the admin grant lacks what it needs.
            Rule::Admin => (&[][..], true),
            Rule::Public => panic!("{path} is public"),
        };
        assert_eq!(
            grpc_status(&app, path, None).await,
            "16",
            "{path} anonymous"
        );
        assert_eq!(
            grpc_status(&app, path, Some("udpat_not-a-real-token")).await,
            "16",
            "{path} with an unknown token"
        );
        let lacking = mint(&app, &all_but(permissions), None).await;
        assert_eq!(
            grpc_status(&app, path, Some(&lacking)).await,
            "7",
            "{path} without {permissions:?}"
        );
        let scoped = grpc_status(&app, path, Some(&scoped_admin)).await;
        if instance_only {
            assert_eq!(scoped, "7", "{path} is instance-only");
        } else {
            assert_ne!(scoped, "7", "{path} with an organization admin");
            assert_ne!(scoped, "16", "{path} with an organization admin");
        }
        // The bootstrap admin passes the gate (the empty request may still be invalid).
        let admin = grpc_status(&app, path, Some(&app.token)).await;
        assert!(!["7", "16"].contains(&admin.as_str()), "{path}: {admin}");
    }
    // Public: health and reflection, without any credential.
    assert_eq!(
        grpc_status(&app, "/grpc.health.v1.Health/Check", None).await,
        "passed"
    );
}

/// Every operation of /openapi.json (the transcoded routes and the REST dialects), with each
/// `{parameter}` filled in.
async fn documented_operations(app: &TestApp) -> Vec<(Method, String, String)> {
    let document = h::send_as(
        &reqwest::Client::new(),
        app,
        None,
        Method::GET,
        "/openapi.json",
        None,
    )
    .await;
    assert_eq!(document.status, StatusCode::OK, "the document is public");
    let mut operations = Vec::new();
    for (template, item) in document.json["paths"].as_object().unwrap() {
        let path: String = template
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "x1"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            // The document's public operations (`security: []`) need no credential.
            if operation["security"] == serde_json::json!([]) {
                continue;
            }
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            operations.push((method, path.clone(), id));
        }
    }
    operations
}

/// The code of an error body in the shape of the API `path` belongs to: Logto's `code`,
/// GreenLake's `errorCode`, grpc-gateway's numeric `code`.
fn refusal_code(path: &str, body: &serde_json::Value) -> serde_json::Value {
    if path.starts_with("/identity/") {
        body["errorCode"].clone()
    } else {
        body["code"].clone()
    }
}

/// What [`refusal_code`] should read for a refusal with `code`.
fn refusal_code_for(path: &str, code: Code) -> serde_json::Value {
    let (logto, greenlake) = match code {
        Code::Unauthenticated => ("auth.unauthorized", "HPE_GL_ERROR_UNAUTHORIZED"),
        Code::PermissionDenied => ("auth.forbidden", "HPE_GL_ERROR_FORBIDDEN"),
        other => panic!("no dialect code for {other:?}"),
    };
    if path.starts_with("/api/") {
        logto.into()
    } else if path.starts_with("/identity/") {
        greenlake.into()
    } else {
        (code as i32).into()
    }
}

async fn every_http_route_refuses_anonymous_and_unpermitted_callers(app: TestApp) {
    let operations = documented_operations(&app).await;
    assert!(operations.len() >= 55, "{}", operations.len());
    let client = reqwest::Client::new();
    let nothing = mint(&app, &Grant::from_names("schema.read").unwrap(), None).await;
    let mut forbidden = BTreeSet::new();
    for (method, path, id) in &operations {
        let body = (method != Method::GET && method != Method::DELETE).then_some(&b"{}"[..]);
        let anonymous = h::send_as(&client, &app, None, method.clone(), path, body).await;
        assert_eq!(anonymous.status, 401, "{method} {path}: {}", anonymous.text);
        assert_eq!(
            refusal_code(path, &anonymous.json),
            refusal_code_for(path, Code::Unauthenticated),
            "{method} {path}"
        );
        let other = h::send_as(&client, &app, Some(&nothing), method.clone(), path, body).await;
        if other.status == 403 {
            assert_eq!(
                refusal_code(path, &other.json),
                refusal_code_for(path, Code::PermissionDenied),
                "{method} {path}"
            );
            forbidden.insert(id.clone());
        } else {
            // Only schema reads are allowed to this token.
            assert!(
                path.starts_with("/v1/user_schemas"),
                "{method} {path}: {}",
                other.text
            );
        }
    }
    assert_eq!(forbidden.len(), operations.len() - 2, "{forbidden:?}");
}

async fn every_bad_credential_gets_the_same_answer(app: TestApp) {
    let revoked = mint(&app, &Grant::Admin, None).await;
    let listed = app
        .tokens
        .clone()
        .list_access_tokens(pb::ListAccessTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    let newest = &listed.result[0];
    app.tokens
        .clone()
        .revoke_access_token(pb::RevokeAccessTokenRequest {
            token_id: newest.token_id.clone(),
        })
        .await
        .unwrap();
    let expired = mint(&app, &Grant::Admin, None).await;
    app.db
        .execute_raw(Statement::from_string(
            app.db.get_database_backend(),
            "UPDATE access_tokens SET expires_at = 1 WHERE revoked_at IS NULL AND bootstrap = false",
        ))
        .await
        .unwrap();
    let headers = [
        None,
        Some("Basic dXNlcjpwYXNz".to_owned()),
        Some("Bearer".to_owned()),
        Some("Bearer udpat_wrong".to_owned()),
        Some("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned()),
        Some(format!("Bearer {revoked}")),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {}x", app.token)),
    ];
    let mut answers = BTreeSet::new();
    for header in &headers {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/v1/users/_search", app.address))
            .body("{}");
        if let Some(value) = header {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"userdir\""
        );
        let text = response.text().await.unwrap();
        answers.insert((status, text));
        let mut users = Clients::new(app.channel.clone(), None).users;
        let mut call = tonic::Request::new(pb::GetUserRequest {
            user_id: "x".into(),
        });
        if let Some(value) = header {
            call.metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        let refused = users.get_user(call).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated, "{header:?}");
        assert_eq!(refused.message(), userdir::auth::UNAUTHENTICATED);
    }
    assert_eq!(answers.len(), 1, "{answers:?}");
    let (status, _) = answers.into_iter().next().unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Two organizations with a user each; returns (org A, user A, org B, user B).
async fn two_organizations(app: &TestApp) -> (String, String, String, String) {
    let schema = api::person_schema(app, "person").await;
    let a = api::organization(app, "A").await;
    let b = api::organization(app, "B").await;
    let user_a = api::create_user(app, new_user(&a, &schema, "alice")).await;
    let user_b = api::create_user(app, new_user(&b, &schema, "bob")).await;
    (a, user_a, b, user_b)
}

async fn organization_scoped_tokens_see_only_their_organization(app: TestApp) {
    let (a, user_a, b, user_b) = two_organizations(&app).await;
    let schema = app
        .schemas
        .clone()
        .list_user_schemas(pb::ListUserSchemasRequest::default())
        .await
        .unwrap()
        .into_inner()
        .result[0]
        .schema_id
        .clone();
    let role = api::role(&app, "auditor").await;
    app.roles
        .clone()
        .assign_role(pb::AssignRoleRequest {
            role_id: role.clone(),
            user_ids: vec![user_a.clone(), user_b.clone()],
        })
        .await
        .unwrap();
    let token = mint(&app, &Grant::Admin, Some(&a)).await;
    let mut scoped = app.clients(Some(&token));

    // ListUsers narrows silently, totals included, whatever the query asks for.
    let list = |request: pb::ListUsersRequest| {
        let mut users = scoped.users.clone();
        async move { users.list_users(request).await.unwrap().into_inner() }
    };
    let all = list(pb::ListUsersRequest::default()).await;
    assert_eq!(all.details.unwrap().total_result, 1);
    assert_eq!(all.result[0].user_id, user_a);
    let of_b =
        common::queries::matching(vec![common::queries::org(&b, common::queries::M::Equals)]);
    let none = list(of_b).await;
    assert_eq!(none.details.unwrap().total_result, 0);
    assert!(none.result.is_empty());

    // Another organization's user is NotFound, exactly like a missing one.
    let missing = scoped
        .users
        .get_user(pb::GetUserRequest {
            user_id: "018c0000-0000-7000-8000-000000000000".into(),
        })
        .await
        .unwrap_err();
    let hidden = scoped
        .users
        .get_user(pb::GetUserRequest {
            user_id: user_b.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    assert_eq!(
        hidden.message().replace(&user_b, "ID"),
        missing
            .message()
            .replace("018c0000-0000-7000-8000-000000000000", "ID")
    );
    scoped
        .users
        .get_user(pb::GetUserRequest {
            user_id: user_a.clone(),
        })
        .await
        .unwrap();

    // Writes on another organization's user: NotFound, and nothing changes.
    let before = api::get_user(&app, &user_b).await;
    let codes = [
        scoped
            .users
            .lock_user(pb::LockUserRequest {
                user_id: user_b.clone(),
            })
            .await
            .unwrap_err()
            .code(),
        scoped
            .users
            .delete_user(pb::DeleteUserRequest {
                user_id: user_b.clone(),
            })
            .await
            .unwrap_err()
            .code(),
        scoped
            .users
            .verify_password(pb::VerifyPasswordRequest {
                user_id: user_b.clone(),
                password: "whatever".into(),
            })
            .await
            .unwrap_err()
            .code(),
        scoped
            .users
            .create_user(new_user(&b, &schema, "mallory"))
            .await
            .unwrap_err()
            .code(),
        scoped
            .roles
            .unassign_role(pb::UnassignRoleRequest {
                role_id: role.clone(),
                user_id: user_b.clone(),
            })
            .await
            .unwrap_err()
            .code(),
        scoped
            .organizations
            .get_organization(pb::GetOrganizationRequest {
                organization_id: b.clone(),
            })
            .await
            .unwrap_err()
            .code(),
    ];
    assert_eq!(codes, [Code::NotFound; 6]);
    assert_eq!(api::get_user(&app, &user_b).await, before);

    // Role members and organizations narrow too; the own organization works.
    let members = scoped
        .roles
        .list_role_users(pb::ListRoleUsersRequest {
            role_id: role.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(members.details.unwrap().total_result, 1);
    let orgs = scoped
        .organizations
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(orgs.result.len(), 1);
    assert_eq!(orgs.result[0].organization_id, a);
    scoped
        .users
        .create_user({
            // An organization's token adds only organization-specific usernames (see
            // tests/tenancy.rs).
            let mut carol = new_user(&a, &schema, "carol");
            carol.usernames[0].is_organization_specific = true;
            carol
        })
        .await
        .unwrap();

    // The REST dialects and JSON narrow the same way.
    let client = reqwest::Client::new();
    let logto = h::send_as(&client, &app, Some(&token), Method::GET, "/api/users", None).await;
    let ids: Vec<&str> = logto
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&user_a.as_str()) && !ids.contains(&user_b.as_str()),
        "{ids:?}"
    );
    let path = format!("/api/users/{user_b}");
    let logto_b = h::send_as(&client, &app, Some(&token), Method::GET, &path, None).await;
    assert_eq!(logto_b.status, 404);
    let green = h::send_as(
        &client,
        &app,
        Some(&token),
        Method::GET,
        "/identity/v1/users",
        None,
    )
    .await;
    assert_eq!(green.json["total"], 2, "{}", green.text);
    let path = format!("/v1/users/{user_b}");
    let json_b = h::send_as(&client, &app, Some(&token), Method::GET, &path, None).await;
    assert_eq!(json_b.status, 404, "{}", json_b.text);
}

async fn scoped_tokens_cannot_mint_beyond_themselves(app: TestApp) {
    let (a, _, b, _) = two_organizations(&app).await;
    let minter = mint(
        &app,
        &Grant::from_names("token.write,user.read").unwrap(),
        Some(&a),
    )
    .await;
    let mut tokens = app.clients(Some(&minter)).tokens;
    let request = |admin: bool, permissions: &[&str], organization: Option<&str>| {
        pb::CreateAccessTokenRequest {
            description: "child".into(),
            admin,
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            organization_id: organization.map(str::to_owned),
            expiration_date: None,
        }
    };
    for (admin, permissions, organization) in [
        (true, vec![], Some(a.as_str())),
        (false, vec!["user.write"], Some(a.as_str())),
        (false, vec!["user.read"], Some(b.as_str())),
        (false, vec!["user.read"], None),
    ] {
        let refused = tokens
            .create_access_token(request(admin, &permissions, organization))
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{permissions:?} {organization:?}"
        );
    }
    let child = tokens
        .create_access_token(request(false, &["user.read"], Some(&a)))
        .await
        .unwrap()
        .into_inner();
    // The child works, and the scoped minter lists only its organization's tokens.
    app.clients(Some(&child.token))
        .users
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap();
    let listed = tokens
        .list_access_tokens(pb::ListAccessTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.details.unwrap().total_result, 2);
    assert!(listed.result.iter().all(|t| t.organization_id == a));
    // The bootstrap token (instance-wide) is invisible to it, and cannot be revoked by it.
    let all = app
        .tokens
        .clone()
        .list_access_tokens(pb::ListAccessTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    let bootstrap = all.result.iter().find(|t| t.bootstrap).unwrap();
    assert!(bootstrap.admin && bootstrap.organization_id.is_empty());
    let refused = tokens
        .revoke_access_token(pb::RevokeAccessTokenRequest {
            token_id: bootstrap.token_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    // Bad requests name their field.
    for (request, field) in [
        (request(false, &[], Some(&a)), "permissions"),
        (request(false, &["user.admin"], Some(&a)), "permissions[0]"),
        (request(true, &["user.read"], Some(&a)), "permissions"),
    ] {
        let refused = app
            .tokens
            .clone()
            .create_access_token(request)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert!(
            refused.message().starts_with(field),
            "{}",
            refused.message()
        );
    }
    let mut past = request(false, &["user.read"], None);
    past.expiration_date = Some(prost_types::Timestamp {
        seconds: 1,
        nanos: 0,
    });
    let refused = app
        .tokens
        .clone()
        .create_access_token(past)
        .await
        .unwrap_err();
    assert!(
        refused.message().starts_with("expirationDate"),
        "{}",
        refused.message()
    );
}

async fn tokens_are_listed_revoked_and_expire(app: TestApp) {
    let created = app
        .tokens
        .clone()
        .create_access_token(pb::CreateAccessTokenRequest {
            description: "reader".into(),
            permissions: vec!["user.read".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.token.starts_with("udpat_"));
    let mut reader = app.clients(Some(&created.token)).users;
    reader
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap();
    // Only the hash is stored.
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT * FROM access_tokens",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let dump = format!("{rows:?}");
    assert!(!dump.contains(&created.token[6..]) && !dump.contains(&app.token[6..]));
    let events = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT payload FROM events",
        ))
        .await
        .unwrap();
    assert!(!format!("{events:?}").contains(&created.token[6..]));

    let listed = app
        .tokens
        .clone()
        .list_access_tokens(pb::ListAccessTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mine = listed
        .result
        .iter()
        .find(|t| t.token_id == created.token_id)
        .unwrap();
    assert_eq!(mine.permissions, vec!["user.read"]);
    assert_eq!(mine.description, "reader");
    assert!(mine.revocation_date.is_none() && mine.expiration_date.is_none());

    // Revoked: refused from the next call on, over gRPC and JSON.
    let path = format!("/v1/access_tokens/{}", created.token_id);
    let revoked = h::send(&app, Method::DELETE, &path, None).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let refused = reader
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let again = h::send(&app, Method::DELETE, &path, None).await;
    assert_eq!(again.status, 400, "{}", again.text);
    let listed = app
        .tokens
        .clone()
        .list_access_tokens(pb::ListAccessTokensRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .result
            .iter()
            .find(|t| t.token_id == created.token_id)
            .unwrap()
            .revocation_date
            .is_some()
    );
    // A minted expiry in the future works until then.
    let soon = app
        .tokens
        .clone()
        .create_access_token(pb::CreateAccessTokenRequest {
            description: "soon".into(),
            permissions: vec!["user.read".into()],
            expiration_date: Some(prost_types::Timestamp {
                seconds: chrono::Utc::now().timestamp() + 3600,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    api::processed_sequence(&app).await;
    app.clients(Some(&soon.token))
        .users
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap();
}

fn rate(per_second: u32, burst: u32) -> Option<Rate> {
    Some(Rate {
        per_second: NonZeroU32::new(per_second).unwrap(),
        burst: NonZeroU32::new(burst).unwrap(),
    })
}

async fn rate_limits_answer_resource_exhausted_with_retry_after(app: TestApp) {
    let other = mint(&app, &Grant::Admin, None).await;
    let limited = app
        .with_settings(Settings {
            rate_limits: RateLimitSettings {
                per_token: rate(1, 3),
                per_peer: None,
                exempt_bootstrap: false,
            },
            ..Settings::default()
        })
        .await;
    // A burst of 3 passes; at 1 request/s the budget runs out within a few more calls
    // (however slow the machine, ten calls take far less than the seconds they would need).
    let mut users = limited.users.clone();
    let mut passed = 0;
    let refused = loop {
        match users.list_users(pb::ListUsersRequest::default()).await {
            Ok(_) => passed += 1,
            Err(status) => break status,
        }
        assert!(passed < 10, "never limited");
    };
    assert!(passed >= 3, "the burst passes: {passed}");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let retry_after: u64 = refused
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let json = h::post(&limited, "/v1/users/_search", "{}").await;
    assert_eq!(json.status, 429, "{}", json.text);
    assert_eq!(json.json["code"], 8);
    // The REST dialects refuse in their own error shapes.
    let logto = h::get(&limited, "/api/users").await;
    assert_eq!(logto.status, 429, "{}", logto.text);
    assert_eq!(logto.json["code"], "request.general", "{}", logto.text);
    let green = h::get(&limited, "/identity/v1/users").await;
    assert_eq!(green.status, 429, "{}", green.text);
    assert_eq!(green.json["errorCode"], "HPE_GL_ERROR_TOO_MANY_REQUESTS");
    // Another token has its own budget.
    limited
        .clients(Some(&other))
        .users
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap();

    // Per peer: failed authentications count too, and the answer says when to come back.
    let peer_limited = app
        .with_settings(Settings {
            rate_limits: RateLimitSettings {
                per_token: None,
                per_peer: rate(1, 2),
                exempt_bootstrap: true,
            },
            ..Settings::default()
        })
        .await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    while statuses.last() != Some(&429) {
        let reply = h::send_as(
            &client,
            &peer_limited,
            None,
            Method::POST,
            "/v1/users/_search",
            Some(b"{}"),
        )
        .await;
        statuses.push(reply.status.as_u16());
        assert!(statuses.len() < 10, "never limited: {statuses:?}");
    }
    assert!(statuses.len() >= 3, "{statuses:?}");
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
    // A valid credential shares its peer's budget.
    let mut calls = 0;
    let response = loop {
        let response = client
            .post(format!("http://{}/v1/users/_search", peer_limited.address))
            .bearer_auth(&other)
            .body("{}")
            .send()
            .await
            .unwrap();
        calls += 1;
        if response.status() != 200 || calls == 10 {
            break response;
        }
    };
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    // The bootstrap token is exempt when so configured.
    for _ in 0..5 {
        peer_limited
            .users
            .clone()
            .list_users(pb::ListUsersRequest::default())
            .await
            .unwrap();
    }
}
