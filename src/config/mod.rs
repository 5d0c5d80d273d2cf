//! Configuration: the command-line flags (or their environment variables) of every command,
//! and the [`Settings`] they become. `startup` reads settings from here, never the reverse.

mod duration;
pub mod limits;
mod serve;
mod settings;
mod token;

use clap::Args;

pub use limits::LimitArgs;
pub use serve::{OidcArgs, ServeArgs};
pub use settings::Settings;
pub use token::{TokenCreateArgs, expiry};

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
