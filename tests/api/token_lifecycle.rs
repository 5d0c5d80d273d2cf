//! The lifecycle of access tokens through the real gRPC interface, on SQLite and PostgreSQL:
//! a caller revokes only tokens its own grant covers, a minted token never outlives the token
//! that minted it, revoking a token revokes everything minted under it, and no caller can
//! revoke the last usable admin token.

use crate::common;

use common::TestApp;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement};
use tonic::Code;
use userdir::auth::Grant;
use userdir::command::tokens::{self, Minter, NewToken};
use userdir::proto::user::v1 as pb;
use userdir::store::ScopedDb;
use userdir::store::entities::event;

backend_tests!(
    a_token_revokes_only_tokens_its_grant_covers,
    a_child_never_outlives_its_parent,
    revoking_a_token_revokes_its_descendants,
    the_last_admin_token_cannot_be_revoked,
);

/// What a token is minted with.
fn request(permissions: &[&str], expires_in_seconds: Option<i64>) -> pb::CreateAccessTokenRequest {
    pb::CreateAccessTokenRequest {
        description: "lifecycle".into(),
        admin: permissions.is_empty(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        organization_id: None,
        expiration_date: expires_in_seconds.map(|seconds| prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp() + seconds,
            nanos: 0,
        }),
    }
}

/// Mints with `token`'s credential; returns (id, secret). No permissions: an admin token.
async fn mint(
    app: &TestApp,
    token: &str,
    permissions: &[&str],
    expires_in_seconds: Option<i64>,
) -> (String, String) {
    let created = app
        .clients(Some(token))
        .tokens
        .create_access_token(request(permissions, expires_in_seconds))
        .await
        .expect("CreateAccessToken")
        .into_inner();
    (created.token_id, created.token)
}

async fn revoke(app: &TestApp, token: &str, id: &str) -> Result<(), tonic::Status> {
    app.clients(Some(token))
        .tokens
        .revoke_access_token(pb::RevokeAccessTokenRequest {
            token_id: id.to_owned(),
        })
        .await
        .map(drop)
}

/// Every token, as the bootstrap admin lists them.
async fn listed(app: &TestApp) -> Vec<pb::AccessToken> {
    app.tokens
        .clone()
        .list_access_tokens(pb::ListAccessTokensRequest::default())
        .await
        .unwrap()
        .into_inner()
        .result
}

async fn token(app: &TestApp, id: &str) -> pb::AccessToken {
    listed(app)
        .await
        .into_iter()
        .find(|t| t.token_id == id)
        .unwrap_or_else(|| panic!("token {id} is listed"))
}

fn bootstrap_id(tokens: &[pb::AccessToken]) -> String {
    tokens
        .iter()
        .find(|t| t.bootstrap)
        .expect("the bootstrap token is listed")
        .token_id
        .clone()
}

/// Whether `token` still authenticates (any read it may do; Unauthenticated otherwise).
async fn works(app: &TestApp, token: &str) -> bool {
    match app
        .clients(Some(token))
        .tokens
        .list_access_tokens(pb::ListAccessTokensRequest::default())
        .await
    {
        Ok(_) => true,
        Err(status) if status.code() == Code::PermissionDenied => true,
        Err(status) => {
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
            false
        }
    }
}

fn micros(time: &prost_types::Timestamp) -> i64 {
    time.seconds * 1_000_000 + i64::from(time.nanos) / 1_000
}

async fn a_token_revokes_only_tokens_its_grant_covers(app: TestApp) {
    let bootstrap = bootstrap_id(&listed(&app).await);
    let (_, writer) = mint(&app, &app.token, &["token.write"], None).await;
    let (reader_id, reader) = mint(&app, &app.token, &["user.read"], None).await;
    let (other_writer_id, _) = mint(&app, &app.token, &["token.write"], None).await;

    for (id, what) in [
        (&bootstrap, "the bootstrap admin token"),
        (&reader_id, "user.read"),
    ] {
        let refused = revoke(&app, &writer, id).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{what}: {refused:?}"
        );
        assert!(refused.message().starts_with("tokenId"), "{refused:?}");
    }
    assert!(token(&app, &bootstrap).await.revocation_date.is_none());
    assert!(works(&app, &app.token).await && works(&app, &reader).await);

    // A grant it covers: revoked.
    revoke(&app, &writer, &other_writer_id).await.unwrap();
    assert!(
        token(&app, &other_writer_id)
            .await
            .revocation_date
            .is_some()
    );
}

async fn a_child_never_outlives_its_parent(app: TestApp) {
    let (parent_id, parent) =
        mint(&app, &app.token, &["token.write", "user.read"], Some(600)).await;
    let parent_expiry = micros(&token(&app, &parent_id).await.expiration_date.unwrap());
    let (forever, _) = mint(&app, &parent, &["user.read"], None).await;
    let (later, _) = mint(&app, &parent, &["user.read"], Some(86_400)).await;
    let (sooner, _) = mint(&app, &parent, &["user.read"], Some(300)).await;
    for id in [&forever, &later] {
        let expiry = token(&app, id).await.expiration_date;
        assert_eq!(
            expiry.as_ref().map(micros),
            Some(parent_expiry),
            "capped at the parent's expiry"
        );
    }
    let sooner = micros(&token(&app, &sooner).await.expiration_date.unwrap());
    assert!(sooner < parent_expiry, "an earlier expiry stays as asked");
}

async fn revoking_a_token_revokes_its_descendants(app: TestApp) {
    let (parent_id, parent) = mint(&app, &app.token, &["token.write", "user.read"], None).await;
    let (child_id, child) = mint(&app, &parent, &["token.write", "user.read"], None).await;
    let (grandchild_id, grandchild) = mint(&app, &child, &["user.read"], None).await;
    let (sibling_id, sibling) = mint(&app, &app.token, &["user.read"], None).await;
    assert!(works(&app, &child).await && works(&app, &grandchild).await);

    revoke(&app, &app.token, &parent_id).await.unwrap();
    for secret in [&parent, &child, &grandchild] {
        assert!(!works(&app, secret).await, "revoked with its ancestor");
    }
    for id in [&parent_id, &child_id, &grandchild_id] {
        assert!(token(&app, id).await.revocation_date.is_some(), "{id}");
    }
    assert!(works(&app, &sibling).await, "not minted under the parent");
    assert!(token(&app, &sibling_id).await.revocation_date.is_none());

    // The event says who revoked, and what went with it.
    let events = event::Entity::find()
        .filter(event::Column::EventType.eq("access_token.revoked"))
        .filter(event::Column::AggregateId.eq(parent_id.as_str()))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let payload = &events[0].payload;
    let bootstrap = bootstrap_id(&listed(&app).await);
    assert_eq!(
        payload["revokedBy"],
        format!("token:{bootstrap}"),
        "{payload}"
    );
    let mut cascade = payload["cascade"].as_array().cloned().unwrap_or_default();
    cascade.sort_by_key(|id| id.to_string());
    let mut expected = vec![
        serde_json::json!(child_id),
        serde_json::json!(grandchild_id),
    ];
    expected.sort_by_key(|id| id.to_string());
    assert_eq!(cascade, expected, "{payload}");
}

async fn the_last_admin_token_cannot_be_revoked(app: TestApp) {
    let bootstrap = bootstrap_id(&listed(&app).await);
    let last_admin = |refused: tonic::Status| {
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        assert!(
            refused.message().contains("userdir token create --admin"),
            "{refused:?}"
        );
    };
    last_admin(revoke(&app, &app.token, &bootstrap).await.unwrap_err());
    // An admin token minted with it goes with it, so that does not help.
    let (child_admin_id, child_admin) = mint(&app, &app.token, &[], None).await;
    last_admin(revoke(&app, &child_admin, &bootstrap).await.unwrap_err());
    // Nor does one that expires (or has expired: it cannot administer anything).
    app.db
        .execute_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!("UPDATE access_tokens SET expires_at = 1 WHERE id = '{child_admin_id}'"),
        ))
        .await
        .unwrap();
    last_admin(revoke(&app, &app.token, &bootstrap).await.unwrap_err());
    assert!(works(&app, &app.token).await);

    // With another admin token (minted by the operator, so not under the bootstrap token), the
    // bootstrap token can go; then that one is the last.
    let operator = tokens::create(
        &ScopedDb::instance(app.db.clone()),
        Minter::Operator,
        NewToken {
            description: "operator".into(),
            grant: Grant::Admin,
            organization_id: None,
            expires_at: None,
        },
    )
    .await
    .unwrap();
    revoke(&app, &operator.secret, &bootstrap).await.unwrap();
    assert!(!works(&app, &app.token).await);
    last_admin(
        revoke(&app, &operator.secret, &operator.id)
            .await
            .unwrap_err(),
    );
    assert!(works(&app, &operator.secret).await);
}
