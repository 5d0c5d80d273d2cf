//! JWTs of a configured OIDC issuer through the real server, on SQLite and PostgreSQL: they
//! authenticate like access tokens, their claims grant permissions and an organization scope,
//! and a token for another audience is refused exactly like a bad access token.

use crate::common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::TestApp;
use common::api::{self, new_user};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tonic::Code;
use userdir::auth::oidc::{JwksSource, OidcSettings};
use userdir::config::Settings;
use userdir::proto::user::v1 as pb;

backend_tests!(
    issuer_jwts_authenticate_and_scope_callers,
    a_jwt_mints_tokens_that_expire_with_it,
);

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "userdir";

struct Issuer {
    key: EncodingKey,
    _dir: tempfile::TempDir,
    settings: OidcSettings,
}

fn issuer() -> Issuer {
    let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let jwks = json!({"keys": [{
        "kty": "OKP", "crv": "Ed25519", "kid": "k1", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes()),
    }]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, jwks.to_string()).unwrap();
    let mut settings = OidcSettings::new(ISSUER, AUDIENCE, JwksSource::File(path));
    settings.organization_claim = "urn:zitadel:iam:org:id".into();
    Issuer {
        key: EncodingKey::from_ed_der(signing.to_pkcs8_der().unwrap().as_bytes()),
        _dir: dir,
        settings,
    }
}

impl Issuer {
    fn sign(&self, claims: Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    fn token(&self, permissions: &str, organization: Option<&str>, audience: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": ISSUER, "aud": audience, "sub": "svc-1",
            "iat": now, "exp": now + 600, "permissions": permissions,
        });
        if let Some(organization) = organization {
            claims["urn:zitadel:iam:org:id"] = json!(organization);
        }
        self.sign(claims)
    }
}

async fn issuer_jwts_authenticate_and_scope_callers(app: TestApp) {
    let schema = api::person_schema(&app, "person").await;
    let a = api::organization(&app, "A").await;
    let b = api::organization(&app, "B").await;
    let alice = api::create_user(&app, new_user(&a, &schema, "alice")).await;
    api::create_user(&app, new_user(&b, &schema, "bob")).await;
    let issuer = issuer();
    let server = app
        .with_settings(Settings {
            oidc: Some(issuer.settings.clone()),
            ..Settings::default()
        })
        .await;

    // Instance-wide reader: sees both organizations, may not write.
    let reader = issuer.token("user.read", None, AUDIENCE);
    let mut clients = server.clients(Some(&reader));
    let all = clients
        .users
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.details.unwrap().total_result, 2);
    let denied = clients
        .users
        .lock_user(pb::LockUserRequest {
            user_id: alice.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        denied.code(),
        Code::PermissionDenied,
        "{}",
        denied.message()
    );

    // Scoped to A by ZITADEL's organization claim: sees only A, over gRPC and JSON.
    let scoped = issuer.token("openid user.read", Some(&a), AUDIENCE);
    let mine = server
        .clients(Some(&scoped))
        .users
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.details.unwrap().total_result, 1);
    assert_eq!(mine.result[0].user_id, alice);
    let reply = common::http::send_as(
        &reqwest::Client::new(),
        &server,
        Some(&scoped),
        reqwest::Method::POST,
        "/v1/users/_search",
        Some(b"{}"),
    )
    .await;
    assert_eq!(reply.json["details"]["totalResult"], "1", "{}", reply.text);

    // Wrong audience, unsigned, expired: the same Unauthenticated as any bad credential.
    let now = chrono::Utc::now().timestamp();
    let expired = issuer.sign(json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "svc-1", "exp": now - 3600,
        "permissions": "admin",
    }));
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 600, "permissions": "admin"})
            .to_string(),
    );
    for bad in [
        issuer.token("admin", None, "someone-else"),
        expired,
        format!("{header}.{body}."),
    ] {
        let refused = server
            .clients(Some(&bad))
            .users
            .list_users(pb::ListUsersRequest::default())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
        assert_eq!(refused.message(), userdir::auth::UNAUTHENTICATED);
    }
    // The server without OIDC refuses issuer tokens altogether.
    let refused = app
        .clients(Some(&reader))
        .users
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
}

/// A short-lived admin JWT mints an admin token that expires when the JWT does, however long
/// the token was asked to live.
async fn a_jwt_mints_tokens_that_expire_with_it(app: TestApp) {
    let issuer = issuer();
    let server = app
        .with_settings(Settings {
            oidc: Some(issuer.settings.clone()),
            ..Settings::default()
        })
        .await;
    let exp = chrono::Utc::now().timestamp() + 120;
    let jwt = issuer.sign(json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "svc-1", "exp": exp, "permissions": "admin",
    }));
    let mut tokens = server.clients(Some(&jwt)).tokens;
    for expiration_date in [
        None,
        Some(prost_types::Timestamp {
            seconds: exp + 86_400,
            nanos: 0,
        }),
    ] {
        let minted = tokens
            .create_access_token(pb::CreateAccessTokenRequest {
                description: "minted with a JWT".into(),
                admin: true,
                expiration_date,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let listed = app
            .tokens
            .clone()
            .list_access_tokens(pb::ListAccessTokensRequest::default())
            .await
            .unwrap()
            .into_inner()
            .result;
        let token = listed
            .iter()
            .find(|t| t.token_id == minted.token_id)
            .unwrap();
        assert_eq!(
            token.expiration_date,
            Some(prost_types::Timestamp {
                seconds: exp,
                nanos: 0
            }),
            "capped at the JWT's exp"
        );
        assert_eq!(token.created_by, "jwt:svc-1");
    }
}
