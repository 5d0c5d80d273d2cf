//! Configuration, from command-line flags or their environment variables.

use std::net::SocketAddr;

use clap::Args;

use crate::query::PageLimits;
use crate::startup::Settings;

/// Where the directory is stored.
#[derive(Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://PATH?mode=rwc` (embedded, the default) or
    /// `postgres://USER@HOST:PORT/DATABASE`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://userdir.db?mode=rwc"
    )]
    pub database_url: String,
}

/// How the server listens and answers.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address for gRPC (and later HTTP/JSON) on one port.
    #[arg(long, env = "USERDIR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

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
}

impl ServeArgs {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings {
            limits: self.page_limits()?,
            webauthn_rp_id: self.webauthn_rp_id.clone(),
            webauthn_origin: self.webauthn_origin.clone(),
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
