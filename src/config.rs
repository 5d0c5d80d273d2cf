//! Configuration, from command-line flags or their environment variables.

use std::net::SocketAddr;

use clap::Args;

use crate::query::PageLimits;

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
}

impl ServeArgs {
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
