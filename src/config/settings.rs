//! What the services need besides the database: the typed result of the flags, which tests
//! build directly.

use crate::auth::oidc::OidcSettings;
use crate::auth::rate_limit::RateLimitSettings;
use crate::limits::RequestLimits;
use crate::limits::connections::ConnectionLimits;
use crate::limits::hashing::HashingLimits;
use crate::limits::shutdown::ShutdownLimits;
use crate::query::PageLimits;
use crate::store::DatabaseTimeouts;

/// What the services need besides the database.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Default and largest page of list requests.
    pub pages: PageLimits,
    /// WebAuthn relying party id (the domain credentials are bound to).
    pub webauthn_rp_id: String,
    /// The origin browsers register credentials from.
    pub webauthn_origin: String,
    pub rate_limits: RateLimitSettings,
    /// Accept JWTs of this OIDC issuer besides access tokens.
    pub oidc: Option<OidcSettings>,
    /// Sizes, depths and deadlines of requests.
    pub limits: RequestLimits,
    /// How many password hashes run and wait at once, server-wide.
    pub hashing: HashingLimits,
    /// Timeouts and caps of connections.
    pub connections: ConnectionLimits,
    /// How the server drains when told to stop.
    pub shutdown: ShutdownLimits,
    /// How long the pool waits for the database (used by `Application::build`, which
    /// connects; a server given its pool has it already).
    pub database: DatabaseTimeouts,
    /// Where Prometheus metrics are served (`GET /metrics`); None: nowhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// The browser origins CORS allows (`api::cors::origin`); none: CORS off.
    pub cors_allowed_origins: Vec<http::HeaderValue>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            pages: PageLimits::default(),
            webauthn_rp_id: "localhost".into(),
            webauthn_origin: "http://localhost:8080".into(),
            rate_limits: RateLimitSettings::default(),
            oidc: None,
            limits: RequestLimits::default(),
            hashing: HashingLimits::default(),
            connections: ConnectionLimits::default(),
            shutdown: ShutdownLimits::default(),
            database: DatabaseTimeouts::default(),
            metrics_listen: None,
            cors_allowed_origins: Vec::new(),
        }
    }
}
