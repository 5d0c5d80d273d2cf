//! Configuration: the command-line flags (or their environment variables) of every command,
//! and the [`Settings`] they become. `startup` reads settings from here, never the reverse.

mod duration;
pub mod limits;
mod serve;
mod settings;
mod token;

use std::time::Duration;

use clap::Args;

pub use limits::LimitArgs;
pub use serve::{OidcArgs, ServeArgs};
pub use settings::Settings;
pub use token::{TokenCreateArgs, expiry};

use crate::store::DatabaseTimeouts;

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

    /// Longest a request waits for a database connection, opening one included, e.g. `500ms`,
    /// `2s`; past it the request is Unavailable (HTTP 503), so requests fail this quickly while
    /// the database is gone.
    #[arg(
        long,
        env = "USERDIR_DATABASE_ACQUIRE_TIMEOUT",
        default_value = "500ms",
        value_parser = limits::flag_duration
    )]
    pub database_acquire_timeout: Duration,

    /// Longest a command waits at start for the database to answer (retrying while it cannot
    /// be reached: not started yet, restarting), e.g. `30s`, `2m`.
    #[arg(
        long,
        env = "USERDIR_DATABASE_CONNECT_TIMEOUT",
        default_value = "30s",
        value_parser = limits::flag_duration
    )]
    pub database_connect_timeout: Duration,
}

impl DatabaseArgs {
    pub fn timeouts(&self) -> anyhow::Result<DatabaseTimeouts> {
        anyhow::ensure!(
            !self.database_acquire_timeout.is_zero(),
            "--database-acquire-timeout must be positive"
        );
        Ok(DatabaseTimeouts {
            acquire: self.database_acquire_timeout,
            connect: self.database_connect_timeout,
        })
    }
}
