//! What the server tells its operator: log lines on stderr (stdout stays free for command
//! output), filtered by `RUST_LOG` (default `info`), as text or as JSON lines; the span of
//! every request with its request id and W3C trace id ([`requests`], [`trace_context`]); and
//! Prometheus metrics on a listener of their own ([`metrics`]).

pub mod metrics;
pub mod requests;
pub mod trace_context;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event, the fields of its spans inline.
    #[default]
    Text,
    /// One JSON object per line: the event's fields, its span's fields (request id, trace id,
    /// method) and the list of its spans, for log collectors.
    Json,
}

/// Text logs at the default level: what tests and callers without flags get.
pub fn init() {
    init_with(LogFormat::Text, Verbosity::Server);
}

/// Whose log lines these are, which sets the default filter (`RUST_LOG` overrides it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    /// The server and the long commands: migrations are worth a line.
    Server,
    /// A short command whose output is the point (`token ...`): the migrations it runs on the
    /// way are noise, kept for `RUST_LOG=debug`.
    Command,
}

pub fn init_with(format: LogFormat, verbosity: Verbosity) {
    let default = match verbosity {
        Verbosity::Server => "info,sqlx=warn",
        Verbosity::Command => "info,sqlx=warn,sea_orm_migration=warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (as in tests) keeps the first subscriber.
    let _ = match format {
        // Colours only for people; log files and collectors get plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        // The event's fields at the top level; `span` (the innermost span's fields) and `spans`
        // (every enclosing span's, the request span with `request_id` and `trace_id` first).
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .flatten_event(true)
            .try_init(),
    };
}
