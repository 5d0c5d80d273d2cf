//! Keys are generated per run (none are committed); the issuer's JWKS is served from a file or
//! from a local axum server that counts its requests.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{EncodingKey, Header};
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::*;
use crate::auth::Permission;
use crate::auth::jwks::KeySet;

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "userdir";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// A signing key and the JWK the issuer publishes for it.
struct TestKey {
    kid: Option<String>,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl TestKey {
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    fn with_jwk(mut self, member: &str, value: Value) -> Self {
        self.jwk[member] = value;
        self
    }
}

fn jwk_with_kid(mut jwk: Value, kid: Option<&str>) -> Value {
    if let Some(kid) = kid {
        jwk["kid"] = kid.into();
    }
    jwk
}

/// 2048-bit generation takes a moment even optimized: one key serves every test.
fn rsa_private() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap())
}

fn rsa_public_pem() -> String {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    rsa_private()
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap()
}

fn rsa_key(kid: &str) -> TestKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let private = rsa_private();
    let der = private.to_pkcs1_der().unwrap();
    TestKey {
        kid: Some(kid.into()),
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({
            "kty": "RSA", "use": "sig", "kid": kid,
            "n": b64(private.n().to_bytes_be()), "e": b64(private.e().to_bytes_be()),
        }),
    }
}

fn ed25519_key(kid: Option<&str>) -> TestKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let der = signing.to_pkcs8_der().unwrap();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(signing.verifying_key().as_bytes())});
    TestKey {
        kid: kid.map(str::to_owned),
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
        jwk: jwk_with_kid(jwk, kid),
    }
}

fn p256_key(kid: &str) -> TestKey {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let der = secret.to_pkcs8_der().unwrap();
    let point = secret.public_key().to_encoded_point(false);
    TestKey {
        kid: Some(kid.into()),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(der.as_bytes()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        }),
    }
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.jwk.clone()).collect::<Vec<_>>() })
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now(), "exp": now() + 600})
}

fn claims_with(member: &str, value: Value) -> Value {
    let mut claims = claims();
    claims[member] = value;
    claims
}

fn claims_without(member: &str) -> Value {
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove(member);
    claims
}

/// A token with any header at all and a junk signature, as an attacker would write it.
fn hand_made(header: Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string()),
        b64(claims.to_string())
    )
}

fn set(permissions: &[Permission]) -> Grant {
    Grant::Permissions(permissions.iter().copied().collect::<BTreeSet<_>>())
}

/// The principal of a JWT with these `claims`; it expires at their `exp`.
fn jwt_principal(
    subject: &str,
    grant: Grant,
    organization: Option<&str>,
    claims: &Value,
) -> Principal {
    Principal {
        credential: Credential::Jwt {
            subject: subject.into(),
        },
        grant,
        organization: organization.map(str::to_owned),
        expires_at: Some(crate::domain::Timestamp::from_micros(
            claims["exp"].as_i64().unwrap() * 1_000_000,
        )),
    }
}

/// Verifies a token that must be refused, and checks the reason never echoes the token.
async fn rejected(verifier: &OidcVerifier, token: &str) -> JwtRejected {
    let reason = verifier.verify(token).await.unwrap_err();
    let text = format!("{reason} {reason:?}");
    for segment in token.split('.').filter(|segment| segment.len() > 8) {
        assert!(!text.contains(segment), "{text} echoes the token");
    }
    reason
}

struct FileIssuer {
    verifier: OidcVerifier,
    _dir: tempfile::TempDir,
}

async fn file_issuer(document: &Value, configure: impl FnOnce(&mut OidcSettings)) -> FileIssuer {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, document.to_string()).unwrap();
    let mut settings = OidcSettings::new(ISSUER, AUDIENCE, JwksSource::File(path));
    configure(&mut settings);
    FileIssuer {
        verifier: OidcVerifier::new(settings).await.unwrap(),
        _dir: dir,
    }
}

/// A local issuer whose JWKS, status and latency the test changes, counting every fetch.
struct HttpIssuer {
    addr: SocketAddr,
    state: Arc<IssuerState>,
}

struct IssuerState {
    jwks: Mutex<Value>,
    status: Mutex<StatusCode>,
    delay: Mutex<Duration>,
    hits: AtomicUsize,
}

impl HttpIssuer {
    async fn start(document: Value) -> Self {
        let state = Arc::new(IssuerState {
            jwks: Mutex::new(document),
            status: Mutex::new(StatusCode::OK),
            delay: Mutex::new(Duration::ZERO),
            hits: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route("/jwks", axum::routing::get(serve_jwks))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        HttpIssuer { addr, state }
    }

    fn settings(&self) -> OidcSettings {
        let url = format!("http://{}/jwks", self.addr);
        OidcSettings::new(ISSUER, AUDIENCE, JwksSource::Url(url))
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    fn publish(&self, document: Value) {
        *self.state.jwks.lock().unwrap() = document;
    }

    fn answer(&self, status: StatusCode) {
        *self.state.status.lock().unwrap() = status;
    }
}

async fn serve_jwks(State(state): State<Arc<IssuerState>>) -> Response {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let delay = *state.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    let status = *state.status.lock().unwrap();
    let document = state.jwks.lock().unwrap().clone();
    (status, axum::Json(document)).into_response()
}

#[test]
fn the_verifier_and_its_future_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<OidcVerifier>();
    send_sync::<JwtRejected>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let issuer = runtime.block_on(file_issuer(&jwks(&[&ed25519_key(Some("a"))]), |_| {}));
    send(&issuer.verifier.verify("a.b.c"));
}

#[test]
fn settings_have_the_documented_defaults() {
    let settings = OidcSettings::new("iss", "aud", JwksSource::Url("https://x/jwks".into()));
    assert_eq!(settings.permissions_claim, "permissions");
    assert_eq!(settings.organization_claim, "organization_id");
    assert_eq!(settings.refresh_interval, Duration::from_secs(300));
}

#[tokio::test]
async fn rs256_token_with_a_permission_array() {
    let key = rsa_key("rsa-1");
    let issuer = file_issuer(&jwks(&[&key]), |_| {}).await;
    let claims = claims_with("permissions", json!(["user.read", "no.such", "role.write"]));
    let token = key.sign(&claims);
    let principal = issuer.verifier.verify(&token).await.unwrap();
    assert_eq!(
        principal,
        jwt_principal(
            "user-1",
            set(&[Permission::UserRead, Permission::RoleWrite]),
            None,
            &claims,
        )
    );
}

#[tokio::test]
async fn eddsa_token_with_a_scope_string_and_a_zitadel_org_claim() {
    let key = ed25519_key(Some("ed-1"));
    let issuer = file_issuer(&jwks(&[&key]), |settings| {
        settings.permissions_claim = "scope".into();
        settings.organization_claim = "urn:zitadel:iam:org:id".into();
    })
    .await;
    let mut claims = claims_with("scope", json!("openid profile user.read,user.write"));
    claims["urn:zitadel:iam:org:id"] = json!("270011231");
    let principal = issuer.verifier.verify(&key.sign(&claims)).await.unwrap();
    assert_eq!(
        principal,
        jwt_principal(
            "user-1",
            set(&[Permission::UserRead, Permission::UserWrite]),
            Some("270011231"),
            &claims,
        )
    );
}

#[tokio::test]
async fn es256_token_verifies_too() {
    let key = p256_key("ec-1");
    let issuer = file_issuer(&jwks(&[&key]), |_| {}).await;
    let token = key.sign(&claims_with("permissions", json!("org.read")));
    let principal = issuer.verifier.verify(&token).await.unwrap();
    assert_eq!(principal.grant, set(&[Permission::OrgRead]));
}

#[tokio::test]
async fn admin_no_permissions_and_org_claim_types() {
    let key = ed25519_key(Some("ed-1"));
    let issuer = file_issuer(&jwks(&[&key]), |_| {}).await;
    let verify = async |claims: Value| issuer.verifier.verify(&key.sign(&claims)).await;

    let admin = verify(claims_with("permissions", json!(["user.read", "admin"]))).await;
    assert_eq!(admin.unwrap().grant, Grant::Admin);
    let admin = verify(claims_with("permissions", json!("admin"))).await;
    assert_eq!(admin.unwrap().grant, Grant::Admin);

    // Authenticated but allowed nothing: the policy answers PermissionDenied.
    let none = verify(claims()).await.unwrap();
    assert_eq!(none.grant, set(&[]));
    assert_eq!(none.organization, None);
    let unknown = verify(claims_with(
        "permissions",
        json!(["openid", 7, "user.admin"]),
    ))
    .await;
    assert_eq!(unknown.unwrap().grant, set(&[]));
    let odd = verify(claims_with("permissions", json!({"user.read": true}))).await;
    assert_eq!(odd.unwrap().grant, set(&[]));

    let org = verify(claims_with("organization_id", json!("org-1"))).await;
    assert_eq!(org.unwrap().organization.as_deref(), Some("org-1"));
    // Present but unusable must not fall back to instance-wide.
    for bad in [json!(""), json!(42), json!(null), json!(["org-1"])] {
        let token = key.sign(&claims_with("organization_id", bad));
        assert_eq!(
            rejected(&issuer.verifier, &token).await,
            JwtRejected::InvalidClaim("organization_id".into())
        );
    }
}

#[tokio::test]
async fn time_claims_with_sixty_seconds_leeway() {
    let key = ed25519_key(Some("ed-1"));
    let issuer = file_issuer(&jwks(&[&key]), |_| {}).await;
    let verifier = &issuer.verifier;

    let expired = key.sign(&claims_with("exp", json!(now() - 120)));
    assert_eq!(rejected(verifier, &expired).await, JwtRejected::Expired);
    let within_leeway = key.sign(&claims_with("exp", json!(now() - 30)));
    assert!(verifier.verify(&within_leeway).await.is_ok());

    let future = key.sign(&claims_with("nbf", json!(now() + 300)));
    assert_eq!(rejected(verifier, &future).await, JwtRejected::NotYetValid);
    let nearly = key.sign(&claims_with("nbf", json!(now() + 30)));
    assert!(verifier.verify(&nearly).await.is_ok());

    let no_exp = key.sign(&claims_without("exp"));
    assert_eq!(
        rejected(verifier, &no_exp).await,
        JwtRejected::MissingClaim("exp".into())
    );
    let text_exp = key.sign(&claims_with("exp", json!("tomorrow")));
    assert!(verifier.verify(&text_exp).await.is_err());
}

#[tokio::test]
async fn issuer_audience_and_subject_are_checked() {
    let key = ed25519_key(Some("ed-1"));
    let issuer = file_issuer(&jwks(&[&key]), |_| {}).await;
    let verifier = &issuer.verifier;
    let check = async |claims: Value| rejected(verifier, &key.sign(&claims)).await;

    assert_eq!(
        check(claims_with("iss", json!("https://evil.test"))).await,
        JwtRejected::WrongIssuer
    );
    // Exact: not a prefix, not an array that happens to contain it.
    assert_eq!(
        check(claims_with("iss", json!(format!("{ISSUER}/")))).await,
        JwtRejected::WrongIssuer
    );
    assert_eq!(
        check(claims_with("iss", json!([ISSUER]))).await,
        JwtRejected::WrongIssuer
    );
    assert_eq!(
        check(claims_without("iss")).await,
        JwtRejected::MissingClaim("iss".into())
    );

    assert_eq!(
        check(claims_with("aud", json!("someone-else"))).await,
        JwtRejected::WrongAudience
    );
    assert_eq!(
        check(claims_with("aud", json!(["a", "b"]))).await,
        JwtRejected::WrongAudience
    );
    assert_eq!(
        check(claims_without("aud")).await,
        JwtRejected::MissingClaim("aud".into())
    );
    let several = key.sign(&claims_with("aud", json!(["other", AUDIENCE])));
    assert!(verifier.verify(&several).await.is_ok());

    assert_eq!(
        check(claims_without("sub")).await,
        JwtRejected::MissingClaim("sub".into())
    );
    assert_eq!(
        check(claims_with("sub", json!(""))).await,
        JwtRejected::InvalidClaim("sub".into())
    );
}

#[tokio::test]
async fn a_wrong_or_tampered_signature_is_refused() {
    let published = ed25519_key(Some("ed-1"));
    let impostor = ed25519_key(Some("ed-1"));
    let issuer = file_issuer(&jwks(&[&published]), |_| {}).await;
    let verifier = &issuer.verifier;

    let forged = impostor.sign(&claims());
    assert_eq!(rejected(verifier, &forged).await, JwtRejected::BadSignature);

    let genuine = published.sign(&claims_with("permissions", json!("user.read")));
    let mut parts: Vec<&str> = genuine.split('.').collect();
    let elevated = b64(claims_with("permissions", json!("admin")).to_string());
    parts[1] = &elevated;
    assert_eq!(
        rejected(verifier, &parts.join(".")).await,
        JwtRejected::BadSignature
    );
}

#[tokio::test]
async fn alg_none_is_refused_before_any_key_lookup() {
    let key = rsa_key("rsa-1");
    let issuer = HttpIssuer::start(jwks(&[&key])).await;
    let verifier = OidcVerifier::new(issuer.settings()).await.unwrap();
    assert_eq!(issuer.hits(), 1);

    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": "rsa-1"}),
        json!({"alg": "None", "kid": "unknown"}),
    ] {
        for signature in ["", "c2lnbmF0dXJl"] {
            let token = hand_made(header.clone(), &claims(), signature);
            assert!(matches!(
                rejected(&verifier, &token).await,
                JwtRejected::AlgorithmNotAllowed(_)
            ));
        }
    }
    // An unknown kid on a refused algorithm must not make us refetch.
    assert_eq!(issuer.hits(), 1);
}

#[tokio::test]
async fn hmac_signed_with_the_public_key_is_refused() {
    let key = rsa_key("rsa-1");
    let issuer = HttpIssuer::start(jwks(&[&key])).await;
    let verifier = OidcVerifier::new(issuer.settings()).await.unwrap();
    let pem = rsa_public_pem();

    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        for kid in [Some("rsa-1"), None, Some("other")] {
            let mut header = Header::new(alg);
            header.kid = kid.map(str::to_owned);
            let secret = EncodingKey::from_secret(pem.as_bytes());
            let token = jsonwebtoken::encode(&header, &claims(), &secret).unwrap();
            assert_eq!(
                rejected(&verifier, &token).await,
                JwtRejected::AlgorithmNotAllowed(format!("{alg:?}"))
            );
        }
    }
    assert_eq!(issuer.hits(), 1);
    // The same claims signed properly do pass: the refusals above are about the algorithm.
    assert!(verifier.verify(&key.sign(&claims())).await.is_ok());
}

#[tokio::test]
async fn the_header_alg_must_fit_the_key() {
    let ec = p256_key("ec-1");
    let ed = ed25519_key(Some("ed-1"));
    let pinned = rsa_key("rsa-pinned").with_jwk("alg", json!("PS256"));
    let issuer = file_issuer(&jwks(&[&ec, &ed, &pinned]), |_| {}).await;
    let verifier = &issuer.verifier;

    for (alg, kid) in [
        ("RS256", "ec-1"),
        ("RS256", "ed-1"),
        ("PS256", "ed-1"),
        ("ES384", "ec-1"),
        ("EdDSA", "ec-1"),
        ("ES256", "ed-1"),
    ] {
        let token = hand_made(json!({"alg": alg, "kid": kid}), &claims(), "c2lnbmF0dXJl");
        assert_eq!(
            rejected(verifier, &token).await,
            JwtRejected::KeyMismatch,
            "{alg} with {kid}"
        );
    }
    // A really RS256-signed token with a key whose JWK pins PS256.
    let rs256 = pinned.sign(&claims());
    assert_eq!(rejected(verifier, &rs256).await, JwtRejected::KeyMismatch);
    let mut ps256 = Header::new(Algorithm::PS256);
    ps256.kid = Some("rsa-pinned".into());
    let token = jsonwebtoken::encode(&ps256, &claims(), &pinned.encoding).unwrap();
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn without_kid_only_a_single_fitting_key_is_used() {
    let only = ed25519_key(None);
    let issuer = file_issuer(&jwks(&[&only]), |_| {}).await;
    assert!(issuer.verifier.verify(&only.sign(&claims())).await.is_ok());
    let rs256 = hand_made(json!({"alg": "RS256"}), &claims(), "c2ln");
    assert_eq!(
        rejected(&issuer.verifier, &rs256).await,
        JwtRejected::KeyMismatch
    );

    let other = ed25519_key(None);
    let issuer = file_issuer(&jwks(&[&only, &other]), |_| {}).await;
    assert_eq!(
        rejected(&issuer.verifier, &only.sign(&claims())).await,
        JwtRejected::AmbiguousKey
    );
    // An RSA key beside the Ed25519 one doesn't make an EdDSA token ambiguous.
    let issuer = file_issuer(&jwks(&[&only, &rsa_key("rsa-1")]), |_| {}).await;
    assert!(issuer.verifier.verify(&only.sign(&claims())).await.is_ok());
}

#[tokio::test]
async fn an_unknown_kid_refetches_once_per_thirty_seconds() {
    let old = rsa_key("rsa-1");
    let issuer = HttpIssuer::start(jwks(&[&old])).await;
    let verifier = OidcVerifier::new(issuer.settings()).await.unwrap();
    assert_eq!(issuer.hits(), 1);
    assert!(verifier.verify(&old.sign(&claims())).await.is_ok());
    assert_eq!(issuer.hits(), 1, "fresh keys are not refetched");

    // The issuer rotates: the new kid triggers one refetch, which finds it.
    let rotated = ed25519_key(Some("ed-2"));
    issuer.publish(jwks(&[&old, &rotated]));
    let principal = verifier.verify(&rotated.sign(&claims())).await.unwrap();
    assert_eq!(principal.subject(), "jwt:user-1");
    assert_eq!(issuer.hits(), 2);

    // Another unknown kid within 30 s: refused from the cache, the issuer is left alone, even
    // though it has meanwhile published that key too.
    let later = ed25519_key(Some("ed-3"));
    issuer.publish(jwks(&[&old, &rotated, &later]));
    for _ in 0..5 {
        assert_eq!(
            rejected(&verifier, &later.sign(&claims())).await,
            JwtRejected::UnknownKey
        );
    }
    assert_eq!(issuer.hits(), 2);
    assert!(verifier.verify(&rotated.sign(&claims())).await.is_ok());
}

#[tokio::test]
async fn stale_keys_are_refetched_and_a_failed_refresh_keeps_them() {
    let key = ed25519_key(Some("ed-1"));
    let issuer = HttpIssuer::start(jwks(&[&key])).await;
    let mut settings = issuer.settings();
    settings.refresh_interval = Duration::ZERO;
    let verifier = OidcVerifier::new(settings).await.unwrap();
    assert_eq!(issuer.hits(), 1);

    let token = key.sign(&claims());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(issuer.hits(), 2, "stale keys are fetched on use");

    // The issuer breaks, then serves a set with no usable key: both keep the previous keys, and
    // the failure is retried only after 30 s, not on every token.
    issuer.answer(StatusCode::INTERNAL_SERVER_ERROR);
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(issuer.hits(), 3);
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(issuer.hits(), 3);

    let issuer = HttpIssuer::start(jwks(&[&key])).await;
    let mut settings = issuer.settings();
    settings.refresh_interval = Duration::ZERO;
    let verifier = OidcVerifier::new(settings).await.unwrap();
    issuer.publish(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}));
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(issuer.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_make_one_fetch() {
    let key = ed25519_key(Some("ed-1"));
    let issuer = HttpIssuer::start(jwks(&[&key])).await;
    let mut settings = issuer.settings();
    settings.refresh_interval = Duration::from_secs(1);
    let verifier = Arc::new(OidcVerifier::new(settings).await.unwrap());
    assert_eq!(issuer.hits(), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    *issuer.state.delay.lock().unwrap() = Duration::from_millis(300);
    let token = key.sign(&claims());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (verifier, token) = (verifier.clone(), token.clone());
        tasks.spawn(async move { verifier.verify(&token).await });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert!(outcome.unwrap().is_ok());
    }
    assert_eq!(issuer.hits(), 2);
}

#[tokio::test]
async fn an_unreachable_url_at_start_is_retried_on_first_use() {
    let key = ed25519_key(Some("ed-1"));
    let issuer = HttpIssuer::start(jwks(&[&key])).await;
    issuer.answer(StatusCode::SERVICE_UNAVAILABLE);
    let verifier = OidcVerifier::new(issuer.settings()).await.unwrap();
    assert_eq!(issuer.hits(), 1);

    issuer.answer(StatusCode::OK);
    assert!(verifier.verify(&key.sign(&claims())).await.is_ok());
    assert_eq!(issuer.hits(), 2);

    // Nothing listening at all: still only a warning, and tokens are refused meanwhile.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", closed.local_addr().unwrap());
    drop(closed);
    let settings = OidcSettings::new(ISSUER, AUDIENCE, JwksSource::Url(url));
    let verifier = OidcVerifier::new(settings).await.unwrap();
    assert_eq!(
        rejected(&verifier, &key.sign(&claims())).await,
        JwtRejected::KeysUnavailable
    );
}

#[tokio::test]
async fn a_jwks_larger_than_a_mebibyte_is_refused() {
    let key = ed25519_key(Some("ed-1"));
    let mut document = jwks(&[&key]);
    document["padding"] = json!("x".repeat(1024 * 1024));
    let issuer = HttpIssuer::start(document.clone()).await;
    let verifier = OidcVerifier::new(issuer.settings()).await.unwrap();
    assert_eq!(
        rejected(&verifier, &key.sign(&claims())).await,
        JwtRejected::KeysUnavailable
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    std::fs::write(&path, document.to_string()).unwrap();
    let settings = OidcSettings::new(ISSUER, AUDIENCE, JwksSource::File(path));
    assert!(OidcVerifier::new(settings).await.is_err());
}

#[tokio::test]
async fn a_jwks_file_must_load_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let start = async |name: &str, content: Option<&str>| {
        let path = dir.path().join(name);
        if let Some(content) = content {
            std::fs::write(&path, content).unwrap();
        }
        OidcVerifier::new(OidcSettings::new(ISSUER, AUDIENCE, JwksSource::File(path))).await
    };
    assert!(start("missing.json", None).await.is_err());
    assert!(start("garbage.json", Some("not json")).await.is_err());
    assert!(start("nokeys.json", Some(r#"{"keys": []}"#)).await.is_err());
    let hmac_only = r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]}"#;
    assert!(start("hmac.json", Some(hmac_only)).await.is_err());
    let good = jwks(&[&ed25519_key(Some("ed-1"))]).to_string();
    assert!(start("good.json", Some(&good)).await.is_ok());
}

#[test]
fn unusable_jwks_keys_are_skipped_not_trusted() {
    let ed = ed25519_key(Some("ok"));
    let short_x = json!({"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": b64([1u8; 8])});
    // About half of all y coordinates have no point on the curve; take the first such.
    let off_curve = (0u8..=255)
        .map(|first| [[first].as_slice(), &[0u8; 31]].concat())
        .find(|bytes| ed25519_dalek::VerifyingKey::try_from(bytes.as_slice()).is_err())
        .unwrap();
    let not_a_point = json!({"kty": "OKP", "crv": "Ed25519", "kid": "bad", "x": b64(off_curve)});
    let small_rsa = json!({"kty": "RSA", "kid": "small", "n": b64([0xc1u8; 128]), "e": "AQAB"});
    let enc = rsa_key("enc").with_jwk("use", json!("enc")).jwk;
    let ops = rsa_key("ops").with_jwk("key_ops", json!(["sign"])).jwk;
    let rsa_as_es = rsa_key("rsa-es").with_jwk("alg", json!("ES256")).jwk;
    let rsa_as_hs = rsa_key("rsa-hs").with_jwk("alg", json!("HS256")).jwk;
    let p521 = json!({"kty": "EC", "crv": "P-521", "kid": "p521", "x": b64([1u8; 66]), "y": b64([1u8; 66])});
    let short_ec = json!({"kty": "EC", "crv": "P-256", "kid": "short-ec", "x": b64([1u8; 31]), "y": b64([1u8; 32])});
    let wrong_types = json!({"kty": "RSA", "kid": 7, "n": [1], "e": null});
    let document = json!({"keys": [
        short_x, not_a_point, small_rsa, enc, ops, rsa_as_es, rsa_as_hs, p521, short_ec,
        wrong_types, "junk", 42, ed.jwk,
    ]});
    let keys = KeySet::parse(document.to_string().as_bytes()).unwrap();
    assert!(matches!(
        keys.find(Some("ok"), Algorithm::EdDSA),
        crate::auth::jwks::Lookup::Found(_)
    ));
    for kid in [
        "short", "bad", "small", "enc", "ops", "rsa-es", "rsa-hs", "p521", "short-ec",
    ] {
        for alg in [Algorithm::EdDSA, Algorithm::RS256, Algorithm::ES256] {
            assert!(
                matches!(
                    keys.find(Some(kid), alg),
                    crate::auth::jwks::Lookup::Unknown
                ),
                "{kid} was kept"
            );
        }
    }
}

#[test]
fn looks_like_jwt_wants_three_base64url_segments() {
    for yes in ["a.b.c", "eyJh.eyJz.", "A-_z.0.9"] {
        assert!(looks_like_jwt(yes), "{yes}");
    }
    for no in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        ".b.c",
        "a..c",
        "a.b+.c",
        "a.b.c=",
        "a.b/c.d",
        "ud_0123456789abcdef",
        "a.b.c ",
        "ä.b.c",
    ] {
        assert!(!looks_like_jwt(no), "{no}");
    }
}

#[tokio::test]
async fn garbage_never_panics_and_is_refused() {
    let key = ed25519_key(Some("ed-1"));
    let issuer = file_issuer(&jwks(&[&key]), |_| {}).await;
    let verifier = &issuer.verifier;

    let valid = key.sign(&claims());
    let (header, rest) = valid.split_once('.').unwrap();
    let mut inputs: Vec<String> = [
        "",
        ".",
        "..",
        "...",
        "a.b.c",
        "e30.e30.e30",
        "bnVsbA.bnVsbA.",
        "W10.W10.W10",
        "IiI.IiI.IiI",
        "eyJhbGciOjF9.e30.",
        "eyJhbGciOiJFZERTQSJ9.e30.AAAA",
        "eyJhbGciOiJFZERTQSIsImtpZCI6MX0.e30.AAAA",
        "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkLTEifQ.e30.AAAA",
        "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkLTEifQ.W10.AAAA",
    ]
    .map(str::to_owned)
    .into();
    inputs.push(format!("{header}.{rest}.extra"));
    inputs.push(format!("{header}.."));
    inputs.push(format!("{header}.e30.{}", rest.split('.').nth(1).unwrap()));
    inputs.push(format!("{valid}x"));
    inputs.push("a".repeat(MAX_TOKEN_BYTES + 1));
    let huge_claims = claims_with("junk", json!("x".repeat(MAX_TOKEN_BYTES)));
    inputs.push(key.sign(&huge_claims));
    inputs.push(hand_made(
        json!({"alg": "EdDSA", "kid": "ed-1"}),
        &json!([1, 2]),
        "AAAA",
    ));
    // Properly signed, with claims of odd types and sizes.
    for (member, value) in [
        ("exp", json!(1e300)),
        ("exp", json!(-1)),
        ("exp", json!(null)),
        ("nbf", json!("soon")),
        ("nbf", json!(-5)),
        ("aud", json!(null)),
        ("aud", json!([])),
        ("aud", json!({"aud": AUDIENCE})),
        ("iss", json!(7)),
        ("sub", json!(["user-1"])),
        ("organization_id", json!({})),
    ] {
        inputs.push(key.sign(&claims_with(member, value)));
    }
    // Random strings over the characters that matter, with a fixed seed to stay reproducible.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let alphabet = b"eyJ0.-_AZaz09=+/{}\":, \x00";
    for _ in 0..2000 {
        let length = rng.random_range(0..64);
        let bytes: Vec<u8> = (0..length)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        inputs.push(String::from_utf8_lossy(&bytes).into_owned());
        // And random base64url segments, which get past the shape check.
        let segment = |rng: &mut rand_chacha::ChaCha8Rng| {
            let raw: Vec<u8> = (0..rng.random_range(1..48)).map(|_| rng.random()).collect();
            b64(raw)
        };
        inputs.push(format!(
            "{}.{}.{}",
            segment(&mut rng),
            segment(&mut rng),
            segment(&mut rng)
        ));
        inputs.push(format!(
            "{header}.{}.{}",
            segment(&mut rng),
            segment(&mut rng)
        ));
    }

    for input in &inputs {
        assert!(
            verifier.verify(input).await.is_err(),
            "{input:?} was accepted"
        );
    }
    for input in inputs.iter().take(200) {
        let _ = KeySet::parse(input.as_bytes());
        let _ = KeySet::parse(format!(r#"{{"keys": [{input:?}]}}"#).as_bytes());
    }
    // Odd but harmless values are fine; they must only not panic.
    for (member, value) in [
        ("exp", json!(u64::MAX)),
        ("nbf", json!(0)),
        ("permissions", json!(null)),
    ] {
        let _ = verifier
            .verify(&key.sign(&claims_with(member, value)))
            .await;
    }

    let critical = json!({"alg": "EdDSA", "kid": "ed-1", "crit": ["exp"]});
    let token = hand_made(critical, &claims(), "AAAA");
    assert_eq!(
        rejected(verifier, &token).await,
        JwtRejected::CriticalHeader
    );
}
