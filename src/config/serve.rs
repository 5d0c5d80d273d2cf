//! `userdir serve`: where it listens, what it stores, and the settings of the services.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::Args;

use super::{DatabaseArgs, LimitArgs, Settings};
use crate::auth::oidc::{JwksSource, OidcSettings};
use crate::auth::rate_limit::{Rate, RateLimitSettings};
use crate::query::PageLimits;

/// How the server listens and answers.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address of every protocol, on one port: gRPC, gRPC-Web, HTTP/JSON and the REST dialects.
    #[arg(long, env = "USERDIR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Serve Prometheus metrics (`GET /metrics`) on this address, a listener of its own; off
    /// by default.
    #[arg(long, env = "USERDIR_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Page size of list requests that ask for none.
    #[arg(long, env = "USERDIR_DEFAULT_LIMIT", default_value_t = 100)]
    pub default_limit: u32,

    /// Largest page size a list request may ask for; larger is InvalidArgument.
    #[arg(long, env = "USERDIR_MAX_LIMIT", default_value_t = 1000)]
    pub max_limit: u32,

    /// WebAuthn relying party id: the domain passkeys are bound to.
    #[arg(long, env = "USERDIR_WEBAUTHN_RP_ID", default_value = "localhost")]
    pub webauthn_rp_id: String,

    /// The web origin that registers passkeys (must be within the relying party id).
    #[arg(
        long,
        env = "USERDIR_WEBAUTHN_ORIGIN",
        default_value = "http://localhost:8080"
    )]
    pub webauthn_origin: String,

    /// Requests per second each credential may make (bursts up to twice that); 0: unlimited.
    #[arg(long, env = "USERDIR_RATE_LIMIT_PER_TOKEN", default_value_t = 100)]
    pub rate_limit_per_token: u32,

    /// Requests per second each client may make (bursts up to twice that), counted per IPv4
    /// address and per IPv6 /64, failed authentications, health, reflection (every request of
    /// a stream) and /openapi.json included; 0: unlimited. Checked before any credential is
    /// looked up. Behind a proxy or sidecar all clients share its address.
    #[arg(long, env = "USERDIR_RATE_LIMIT_PER_PEER", default_value_t = 200)]
    pub rate_limit_per_peer: u32,

    /// Let the bootstrap admin token skip the rate limits (for a first bulk import).
    #[arg(long, env = "USERDIR_RATE_LIMIT_EXEMPT_BOOTSTRAP")]
    pub rate_limit_exempt_bootstrap: bool,

    /// On the first start of an empty directory, write the bootstrap admin token to this file
    /// (created with mode 0600) instead of printing it on stdout.
    #[arg(long, env = "USERDIR_BOOTSTRAP_TOKEN_FILE")]
    pub bootstrap_token_file: Option<PathBuf>,

    /// A browser origin (`https://app.example.com`) whose pages may call the server (CORS):
    /// preflights are answered before the gate, answers carry the CORS headers. Repeat the flag
    /// or separate origins with commas. None by default: no CORS headers at all.
    #[arg(
        long = "cors-allowed-origin",
        env = "USERDIR_CORS_ALLOWED_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_allowed_origins: Vec<String>,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub oidc: OidcArgs,
}

/// Accepting JWTs of an external OIDC issuer (all of issuer, audience and one JWKS source, or
/// none of them).
#[derive(Args, Clone, Debug, Default)]
pub struct OidcArgs {
    /// The issuer: tokens' `iss` must equal it exactly.
    #[arg(long, env = "USERDIR_OIDC_ISSUER", requires = "oidc_audience")]
    pub oidc_issuer: Option<String>,

    /// The audience: tokens' `aud` must contain it.
    #[arg(long, env = "USERDIR_OIDC_AUDIENCE", requires = "oidc_issuer")]
    pub oidc_audience: Option<String>,

    /// Where the issuer publishes its signing keys (JWKS), fetched and cached.
    #[arg(long, env = "USERDIR_OIDC_JWKS_URL", conflicts_with = "oidc_jwks_file")]
    pub oidc_jwks_url: Option<String>,

    /// The issuer's signing keys (JWKS) from a file, re-read when stale.
    #[arg(long, env = "USERDIR_OIDC_JWKS_FILE")]
    pub oidc_jwks_file: Option<PathBuf>,

    /// The claim holding permissions: an array, or a string separated by spaces or commas
    /// (`scope` works). `admin` grants every permission.
    #[arg(
        long,
        env = "USERDIR_OIDC_PERMISSIONS_CLAIM",
        default_value = "permissions"
    )]
    pub oidc_permissions_claim: String,

    /// The claim naming the organization a token is limited to; absent: instance-wide.
    #[arg(
        long,
        env = "USERDIR_OIDC_ORGANIZATION_CLAIM",
        default_value = "organization_id"
    )]
    pub oidc_organization_claim: String,

    /// Seconds after which cached keys are fetched again.
    #[arg(long, env = "USERDIR_OIDC_JWKS_REFRESH_SECONDS", default_value_t = 300)]
    pub oidc_jwks_refresh_seconds: u64,
}

impl OidcArgs {
    pub fn settings(&self) -> anyhow::Result<Option<OidcSettings>> {
        let (Some(issuer), Some(audience)) = (&self.oidc_issuer, &self.oidc_audience) else {
            anyhow::ensure!(
                self.oidc_jwks_url.is_none() && self.oidc_jwks_file.is_none(),
                "--oidc-jwks-url/--oidc-jwks-file need --oidc-issuer and --oidc-audience"
            );
            return Ok(None);
        };
        let jwks = match (&self.oidc_jwks_url, &self.oidc_jwks_file) {
            (Some(url), None) => JwksSource::Url(url.clone()),
            (None, Some(file)) => JwksSource::File(file.clone()),
            _ => anyhow::bail!("--oidc-issuer needs one of --oidc-jwks-url or --oidc-jwks-file"),
        };
        let mut settings = OidcSettings::new(issuer.clone(), audience.clone(), jwks);
        settings.permissions_claim = self.oidc_permissions_claim.clone();
        settings.organization_claim = self.oidc_organization_claim.clone();
        settings.refresh_interval = std::time::Duration::from_secs(self.oidc_jwks_refresh_seconds);
        Ok(Some(settings))
    }
}

impl ServeArgs {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings {
            pages: self.page_limits()?,
            webauthn_rp_id: self.webauthn_rp_id.clone(),
            webauthn_origin: self.webauthn_origin.clone(),
            rate_limits: RateLimitSettings {
                per_token: rate(self.rate_limit_per_token),
                per_peer: rate(self.rate_limit_per_peer),
                exempt_bootstrap: self.rate_limit_exempt_bootstrap,
            },
            limits: self.limits.limits()?,
            hashing: self.limits.hashing()?,
            connections: self.limits.connections()?,
            shutdown: self.limits.shutdown(),
            database: self.database.timeouts()?,
            oidc: self.oidc.settings()?,
            metrics_listen: self.metrics_listen,
            cors_allowed_origins: self
                .cors_allowed_origins
                .iter()
                .map(|text| crate::api::cors::origin(text))
                .collect::<anyhow::Result<_>>()?,
        })
    }

    pub fn page_limits(&self) -> anyhow::Result<PageLimits> {
        anyhow::ensure!(self.max_limit >= 1, "--max-limit must be at least 1");
        anyhow::ensure!(
            (1..=self.max_limit).contains(&self.default_limit),
            "--default-limit must be between 1 and --max-limit ({})",
            self.max_limit
        );
        Ok(PageLimits {
            default: self.default_limit,
            max: self.max_limit,
        })
    }
}

/// `per_second` sustained with bursts of twice that; None (unlimited) for 0.
fn rate(per_second: u32) -> Option<Rate> {
    let per_second = NonZeroU32::new(per_second)?;
    Some(Rate {
        per_second,
        burst: per_second.saturating_mul(NonZeroU32::new(2).expect("2 is not 0")),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn origins(args: &[&str]) -> anyhow::Result<Vec<http::HeaderValue>> {
        let cli = Cli::try_parse_from(std::iter::once("userdir").chain(args.iter().copied()))?;
        Ok(cli.serve.settings()?.cors_allowed_origins)
    }

    #[test]
    fn cors_origins_repeat_or_come_in_lists() {
        assert!(origins(&[]).unwrap().is_empty());
        assert_eq!(
            origins(&[
                "--cors-allowed-origin=https://a.example,http://localhost:3000",
                "--cors-allowed-origin",
                "https://B.example",
            ])
            .unwrap(),
            [
                "https://a.example",
                "http://localhost:3000",
                "https://b.example"
            ]
        );
        let error = origins(&["--cors-allowed-origin=https://a.example/"]).unwrap_err();
        assert!(error.to_string().contains("trailing slash"), "{error}");
    }
}
