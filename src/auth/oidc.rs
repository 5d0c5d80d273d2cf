//! JWTs from an external OIDC issuer (ZITADEL, Keycloak, Auth0, ...): signature against the
//! issuer's JWKS, the registered claims, and the configured claims mapped to a [`Principal`].

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

// Part of the settings this module takes; it lives with the loading it selects.
pub use super::jwks::JwksSource;
use super::jwks::{JwksCache, Key, Lookup, allowed_algorithm};
use super::permission::Grant;
use super::principal::{Credential, Principal};
use crate::domain::Timestamp;

/// Clock skew we tolerate between the issuer and us, for `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 60;
/// Real tokens are a few kilobytes; refusing huge ones early bounds the work a caller can cause.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Clone, Debug)]
pub struct OidcSettings {
    /// Compared exactly with `iss`.
    pub issuer: String,
    /// Must be `aud` or one of its entries.
    pub audience: String,
    pub jwks: JwksSource,
    /// Permission names: an array of strings, or one string separated by spaces or commas.
    pub permissions_claim: String,
    /// The organization the caller is limited to; absent means instance-wide.
    pub organization_claim: String,
    /// Keys older than this are fetched again when next used.
    pub refresh_interval: Duration,
}

impl OidcSettings {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, jwks: JwksSource) -> Self {
        OidcSettings {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks,
            permissions_claim: "permissions".into(),
            organization_claim: "organization_id".into(),
            refresh_interval: Duration::from_secs(300),
        }
    }
}

/// Why a JWT was refused. For DEBUG logs only: the caller gets a plain "unauthenticated", and no
/// variant carries the token, its signature or a claim value.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtRejected {
    #[error("not a well-formed JWT")]
    Malformed,
    #[error("the JWT has critical header extensions, which we don't implement")]
    CriticalHeader,
    #[error("signature algorithm {0:?} is not accepted")]
    AlgorithmNotAllowed(String),
    #[error("the issuer's keys are not available")]
    KeysUnavailable,
    #[error("no key of the issuer matches the JWT's kid")]
    UnknownKey,
    #[error("the JWT names no kid and several of the issuer's keys fit")]
    AmbiguousKey,
    #[error("the issuer's key does not fit the JWT's algorithm")]
    KeyMismatch,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the JWT has expired")]
    Expired,
    #[error("the JWT is not valid yet")]
    NotYetValid,
    #[error("the JWT is from another issuer")]
    WrongIssuer,
    #[error("the JWT is for another audience")]
    WrongAudience,
    #[error("the JWT lacks the claim {0:?}")]
    MissingClaim(String),
    #[error("the JWT's claim {0:?} has the wrong type or is empty")]
    InvalidClaim(String),
    #[error("the JWT was rejected")]
    Invalid,
}

/// Verifies issuer JWTs; cheap to share behind an `Arc` (keys refresh in place).
pub struct OidcVerifier {
    settings: OidcSettings,
    keys: JwksCache,
}

impl OidcVerifier {
    /// Loads the keys once. A file that can't be read or parsed is an error (it is a local
    /// misconfiguration); an unreachable URL is only a warning, since the issuer may start after
    /// us, and the keys are fetched again on first use.
    pub async fn new(settings: OidcSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(!settings.issuer.is_empty(), "the OIDC issuer is empty");
        anyhow::ensure!(!settings.audience.is_empty(), "the OIDC audience is empty");
        let keys = JwksCache::new(settings.jwks.clone(), settings.refresh_interval)?;
        if let Err(error) = keys.load_initial().await {
            match &settings.jwks {
                JwksSource::File(path) => {
                    return Err(error.context(format!("loading the JWKS from {}", path.display())));
                }
                JwksSource::Url(url) => tracing::warn!(
                    %url,
                    error = format!("{error:#}"),
                    "could not load the OIDC issuer's keys; trying again on first use"
                ),
            }
        }
        Ok(OidcVerifier { settings, keys })
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, JwtRejected> {
        let header = parse_header(token)?;
        // Before any key lookup: an HS*/none token must not even make us refetch.
        let alg = allowed_algorithm(&header.alg)
            .ok_or_else(|| JwtRejected::AlgorithmNotAllowed(printable(&header.alg)))?;
        let key = self.key_for(header.kid.as_deref(), alg).await?;
        let claims = self.decode(token, &key, alg)?;
        principal_from_claims(&claims, &self.settings)
    }

    /// The key for the token; an unknown kid gets one (throttled) refetch, for key rotation.
    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Arc<Key>, JwtRejected> {
        let mut keys = self.keys.keys().await;
        let mut lookup = keys.find(kid, alg);
        if matches!(lookup, Lookup::Unknown) {
            keys = self.keys.keys_after_unknown_kid().await;
            lookup = keys.find(kid, alg);
        }
        match lookup {
            Lookup::Found(key) => Ok(key),
            Lookup::Unknown if keys.is_empty() => Err(JwtRejected::KeysUnavailable),
            Lookup::Unknown => Err(JwtRejected::UnknownKey),
            Lookup::Mismatch => Err(JwtRejected::KeyMismatch),
            Lookup::Ambiguous => Err(JwtRejected::AmbiguousKey),
        }
    }

    /// Signature first, then `exp`, `nbf`, `iss`, `aud` and `sub` (by the library), then the
    /// exact `iss` (the library would also take an array containing ours).
    fn decode(
        &self,
        token: &str,
        key: &Key,
        alg: Algorithm,
    ) -> Result<Map<String, Value>, JwtRejected> {
        let validation = validation(alg, &self.settings);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(rejection)?;
        if data.claims.get("iss").and_then(Value::as_str) != Some(self.settings.issuer.as_str()) {
            return Err(JwtRejected::WrongIssuer);
        }
        Ok(data.claims)
    }
}

/// Three base64url segments separated by dots: what tells a JWT from an access token. The
/// signature may be empty (as in `alg: none`), so that such a token is refused as a JWT.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let base64url = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    !header.is_empty()
        && !payload.is_empty()
        && [header, payload, signature].into_iter().all(base64url)
}

/// The JOSE header members we act on before verifying.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

fn parse_header(token: &str) -> Result<JoseHeader, JwtRejected> {
    if token.len() > MAX_TOKEN_BYTES || !looks_like_jwt(token) {
        return Err(JwtRejected::Malformed);
    }
    let encoded = token.split('.').next().unwrap_or_default();
    let json = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| JwtRejected::Malformed)?;
    let header: JoseHeader = serde_json::from_slice(&json).map_err(|_| JwtRejected::Malformed)?;
    // RFC 7515 §4.1.11: extensions marked critical that we don't understand mean "reject".
    if header.crit.is_some() {
        return Err(JwtRejected::CriticalHeader);
    }
    Ok(header)
}

/// The header's `alg` for a log line: bounded, and only characters an algorithm name has.
fn printable(alg: &str) -> String {
    alg.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(16)
        .collect()
}

fn validation(alg: Algorithm, settings: &OidcSettings) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&[&settings.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation
}

/// The library's error as our reason, dropping its detail: a JSON error could quote claims.
fn rejection(error: jsonwebtoken::errors::Error) -> JwtRejected {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => JwtRejected::BadSignature,
        ErrorKind::ExpiredSignature => JwtRejected::Expired,
        ErrorKind::ImmatureSignature => JwtRejected::NotYetValid,
        ErrorKind::InvalidIssuer => JwtRejected::WrongIssuer,
        ErrorKind::InvalidAudience => JwtRejected::WrongAudience,
        ErrorKind::MissingRequiredClaim(name) => JwtRejected::MissingClaim(name.clone()),
        ErrorKind::InvalidClaimFormat(name) => JwtRejected::InvalidClaim(name.clone()),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => JwtRejected::Malformed,
        ErrorKind::InvalidAlgorithm => JwtRejected::KeyMismatch,
        _ => JwtRejected::Invalid,
    }
}

fn principal_from_claims(
    claims: &Map<String, Value>,
    settings: &OidcSettings,
) -> Result<Principal, JwtRejected> {
    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        Some(_) => return Err(JwtRejected::InvalidClaim("sub".into())),
        None => return Err(JwtRejected::MissingClaim("sub".into())),
    };
    Ok(Principal {
        credential: Credential::Jwt { subject },
        grant: grant_from_claim(claims.get(&settings.permissions_claim)),
        organization: organization_from_claim(claims, &settings.organization_claim)?,
        expires_at: expiry_from_claim(claims),
    })
}

/// `exp` (seconds; the library has checked it is a number and in the future), so that tokens
/// minted with the JWT do not outlive it. Out-of-range values saturate rather than vanish: a
/// missing cap would let a short-lived JWT mint a permanent token.
fn expiry_from_claim(claims: &Map<String, Value>) -> Option<Timestamp> {
    let seconds = claims.get("exp").and_then(Value::as_f64)?;
    // `as` saturates: an absurd `exp` caps at the end of time, not at "never".
    Some(Timestamp::from_micros((seconds * 1e6) as i64))
}

/// `admin` anywhere grants everything; otherwise the known permission names, ignoring the rest
/// (an issuer's `scope` holds `openid`, `profile`, ...). Nothing known is an empty grant: the
/// caller is authenticated but allowed nothing, and the policy answers PermissionDenied.
fn grant_from_claim(value: Option<&Value>) -> Grant {
    let names: Vec<&str> = match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .collect(),
        Some(Value::String(joined)) => joined
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|name| !name.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    if names.contains(&"admin") {
        return Grant::Admin;
    }
    Grant::Permissions(names.iter().filter_map(|name| name.parse().ok()).collect())
}

/// Absent means instance-wide. Present but not a non-empty string is refused rather than read as
/// absent: that would widen an organization's credential to the whole instance.
fn organization_from_claim(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, JwtRejected> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(id)) if !id.is_empty() => Ok(Some(id.clone())),
        Some(_) => Err(JwtRejected::InvalidClaim(name.to_owned())),
    }
}

#[cfg(test)]
mod tests;
