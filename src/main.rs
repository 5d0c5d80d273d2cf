//! The `userdir` command.

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

use anyhow::Context;
use userdir::command::{self, tokens::Minter};
use userdir::config::{DatabaseArgs, ServeArgs, TokenCreateArgs};
use userdir::domain::Timestamp;
use userdir::import::{self, ImportOptions};
use userdir::seed::{self, SeedOptions};
use userdir::startup::Application;
use userdir::store::ScopedDb;
use userdir::store::reads::directory::Paging;
use userdir::telemetry::{LogFormat, Verbosity};
use userdir::{store, telemetry};

#[derive(Parser)]
#[command(
    name = "userdir",
    version,
    about = "A user directory with ZITADEL's user API"
)]
struct Cli {
    /// How log lines (on stderr) are written: `text` for people, `json` (one object a line,
    /// with the request's span fields) for log collectors.
    #[arg(
        long,
        global = true,
        env = "USERDIR_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database and serve gRPC, gRPC-Web, HTTP/JSON and REST on one port.
    Serve(Box<ServeArgs>),
    /// Bring the database schema up to date, then exit.
    Migrate(DatabaseArgs),
    /// Mint, list and revoke personal access tokens (needs only database access).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Recount the users behind the counters that answer list totals and report any drift
    /// (exit status 1 when a counter drifted and was not repaired).
    Check {
        /// Rewrite drifted counters and authenticator documents from the rows (safe while
        /// the server runs: it waits its turn like every write).
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Copy the SQLite database, consistently, into a new file, also while servers write to it
    /// (PostgreSQL: use pg_dump).
    Backup {
        /// The file to write; it must not exist.
        path: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Fill the directory with a realistic, deterministic population.
    Seed {
        /// How many users to add.
        #[arg(long)]
        users: u64,
        /// The same seed on an empty directory gives the same users, ids included.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Users written per transaction (what `import` writes: the same path).
        #[arg(long, default_value_t = import::DEFAULT_BATCH_SIZE)]
        batch_size: usize,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Import users from a JSON Lines file: one ImportUserRecord per line, in proto3 JSON (as
    /// the HTTP/JSON API takes it). Records that are not imported are reported by line on
    /// stdout, then a summary; the exit status is 1 when any record failed.
    Import {
        /// The JSON Lines file.
        file: std::path::PathBuf,
        /// Records written per transaction (1 to 50000).
        #[arg(long, default_value_t = import::DEFAULT_BATCH_SIZE)]
        batch_size: usize,
        /// Largest record (a line), in bytes: the server's message limit, whose flag it shares.
        #[arg(long, env = "USERDIR_MAX_MESSAGE_BYTES", default_value_t = userdir::limits::DEFAULT_MAX_MESSAGE_BYTES)]
        max_message_bytes: usize,
        /// Longest name, username or email address, in characters (1 to 255): the server's
        /// text limit, whose flag it shares.
        #[arg(long, env = "USERDIR_MAX_TEXT_LENGTH", default_value_t = userdir::query::MAX_TEXT_CHARS)]
        max_text_length: usize,
        /// For a first load or a maintenance window: the whole file in one transaction that
        /// drops the non-unique indexes (PostgreSQL: and foreign keys; SQLite: and the trigram
        /// triggers) of the users' tables, and builds them again at the end. Writers wait until
        /// it ends; on PostgreSQL readers wait too, on SQLite they read the directory as it was.
        /// All or nothing: an error or an interruption leaves the directory as it was.
        #[arg(long)]
        exclusive: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a token and print it, alone, on stdout (it is shown only this once).
    Create(TokenCreateArgs),
    /// List tokens (never their secrets), newest first.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke a token by id; it fails from its next call on.
    Revoke {
        token_id: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

fn main() -> anyhow::Result<()> {
    // Before the runtime's threads exist: they are what would take the arenas.
    userdir::memory::limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    // Flags first: they say how to log. clap reports its own errors without logging.
    let cli = Cli::parse();
    let verbosity = match cli.command {
        Command::Token(_) => Verbosity::Command,
        _ => Verbosity::Server,
    };
    telemetry::init_with(cli.log_format, verbosity);
    match cli.command {
        Command::Serve(args) => {
            let settings = args.settings()?;
            let app =
                Application::build(&args.database.database_url, args.listen, settings).await?;
            // Only now that the port is ours: a start that cannot serve mints nothing.
            app.bootstrap(|token| {
                hand_over_bootstrap_token(token, args.bootstrap_token_file.as_deref())
            })
            .await?;
            tracing::info!(
                address = %app.local_addr()?,
                "serving gRPC, gRPC-Web, HTTP/JSON and REST"
            );
            app.run_until(shutdown_signal()).await?;
        }
        Command::Token(command) => token_command(command).await?,
        Command::Migrate(args) => {
            let db = store::connect_with(&args.database_url, args.timeouts()?).await?;
            store::migrate(&db).await?;
            tracing::info!("database is up to date");
        }
        Command::Check { repair, database } => {
            let db = store::connect_with(&database.database_url, database.timeouts()?).await?;
            store::migrate(&db).await?;
            if !check(&db, repair).await? {
                std::process::exit(1);
            }
        }
        Command::Backup { path, database } => {
            let copied = store::sqlite::backup::copy(&database.database_url, &path).await?;
            println!(
                "backed up {} to {} ({} bytes)",
                copied.source.display(),
                path.display(),
                copied.bytes
            );
        }
        Command::Seed {
            users,
            seed,
            batch_size,
            database,
        } => {
            let db = store::connect_with(&database.database_url, database.timeouts()?).await?;
            store::migrate(&db).await?;
            let report = seed::run(
                &db,
                SeedOptions {
                    users,
                    seed,
                    batch_size: batch_size.max(1),
                    progress: true,
                },
            )
            .await?;
            tracing::info!(
                users = report.users,
                first_index = report.first_index,
                seconds = report.elapsed.as_secs_f64(),
                "seeded"
            );
        }
        Command::Import {
            file,
            batch_size,
            max_message_bytes,
            max_text_length,
            exclusive,
            database,
        } => {
            anyhow::ensure!(
                (1..=userdir::limits::MAX_TEXT_CHARS_BOUND).contains(&max_text_length),
                "--max-text-length must be 1 to {}",
                userdir::limits::MAX_TEXT_CHARS_BOUND
            );
            let db = store::connect(&database.database_url).await?;
            store::migrate(&db).await?;
            let options = ImportOptions {
                file,
                batch_size: batch_size.clamp(1, import::MAX_BATCH_SIZE),
                progress: true,
                max_message_bytes,
                max_text: max_text_length,
                exclusive,
            };
            let mut stdout = std::io::stdout();
            let report = import::run(ScopedDb::instance(db), options, &mut stdout).await?;
            use std::io::Write;
            writeln!(
                stdout,
                "imported {}, skipped {} (already present), failed {}: {} records in {:.1} s",
                report.imported,
                report.skipped,
                report.failed,
                report.records,
                report.elapsed.as_secs_f64()
            )?;
            if report.failed > 0 {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

/// `userdir check`: prints each drifted counter and each user whose authenticator document
/// differs from its authenticator rows, and a summary of each on stdout; true when both hold
/// (or were repaired).
async fn check(db: &sea_orm::DatabaseConnection, repair: bool) -> anyhow::Result<bool> {
    let counters = check_counters(db, repair).await?;
    let documents = check_documents(db, repair).await?;
    Ok(counters && documents)
}

async fn check_counters(db: &sea_orm::DatabaseConnection, repair: bool) -> anyhow::Result<bool> {
    let recount = store::reads::recount::recount(db).await?;
    for drift in &recount.drift {
        println!(
            "drift: {}: the counter says {}, the rows say {}",
            drift.counter, drift.kept, drift.counted
        );
    }
    if recount.drift.is_empty() {
        println!(
            "counters hold: {} counters agree with the rows",
            recount.counted.len()
        );
        return Ok(true);
    }
    if !repair {
        println!(
            "{} counters drifted; `userdir check --repair` rewrites them from the rows",
            recount.drift.len()
        );
        return Ok(false);
    }
    let written = store::writes::recount::repair(db).await?;
    let after = store::reads::recount::recount(db).await?;
    println!(
        "repaired: rewrote {written} counters from the rows; {} drifted after",
        after.drift.len()
    );
    Ok(after.drift.is_empty())
}

async fn check_documents(db: &sea_orm::DatabaseConnection, repair: bool) -> anyhow::Result<bool> {
    use store::authenticators::stale_documents;
    let audit = stale_documents(db).await?;
    for id in &audit.stale {
        println!("drift: the authenticator document of user {id} differs from its rows");
    }
    if audit.stale.is_empty() {
        println!(
            "authenticator documents hold: {} users' documents agree with their rows",
            audit.users
        );
        return Ok(true);
    }
    if !repair {
        println!(
            "{} authenticator documents drifted; `userdir check --repair` rewrites them from \
             the rows",
            audit.stale.len()
        );
        return Ok(false);
    }
    let written = store::writes::recount::repair_documents(db, &audit.stale).await?;
    let after = stale_documents(db).await?;
    println!(
        "repaired: rewrote {written} authenticator documents from the rows; {} drifted after",
        after.stale.len()
    );
    Ok(after.stale.is_empty())
}

/// Shows the bootstrap token once: written to `file` (mode 0600), or printed alone on stdout.
/// Logs say where it went, never what it is. An error means the operator does not have it.
fn hand_over_bootstrap_token(token: &str, file: Option<&Path>) -> anyhow::Result<()> {
    match file {
        Some(path) => {
            write_private(path, &format!("{token}\n"))
                .with_context(|| format!("--bootstrap-token-file {}", path.display()))?;
            tracing::warn!(
                file = %path.display(),
                "first start (no access token yet): minted the bootstrap admin token into this file"
            );
        }
        None => {
            tracing::warn!(
                "first start (no access token yet): minted the bootstrap admin token, printed once on stdout; \
                 store it now, it is never shown again"
            );
            // Not println!, which panics when stdout is closed: that is a failed hand-over.
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{token}")
                .and_then(|()| stdout.flush())
                .context("printing the bootstrap admin token on stdout")?;
        }
    }
    Ok(())
}

/// Creates or replaces `path` readable by its owner only, before any secret is written to it.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // An existing file keeps its old mode through open(); narrow it first.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents.as_bytes())?;
        return Ok(());
    }
    #[allow(unreachable_code)]
    {
        let mut file = options.open(path)?;
        file.write_all(contents.as_bytes())?;
        Ok(())
    }
}

async fn token_command(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => {
            let db =
                store::connect_with(&args.database.database_url, args.database.timeouts()?).await?;
            store::migrate(&db).await?;
            let new = args.new_token()?;
            let minted =
                command::tokens::create(&ScopedDb::instance(db), Minter::Operator, new).await?;
            tracing::info!(token_id = %minted.id, "minted an access token");
            println!("{}", minted.secret);
        }
        TokenCommand::List { database } => {
            let db = store::connect_with(&database.database_url, database.timeouts()?).await?;
            store::migrate(&db).await?;
            print!("{}", token_table(&ScopedDb::instance(db)).await?);
        }
        TokenCommand::Revoke { token_id, database } => {
            let db = store::connect_with(&database.database_url, database.timeouts()?).await?;
            store::migrate(&db).await?;
            // The operator may revoke any token, the last admin one too: with database access
            // `token create --admin` gets access back, so this only warns.
            let revoked =
                command::tokens::revoke(&ScopedDb::instance(db), Minter::Operator, &token_id)
                    .await?;
            tracing::info!(%token_id, cascade = ?revoked.cascade, "revoked");
            if revoked.no_admin_left {
                tracing::warn!(
                    "no usable admin token is left: the API has no administrator until you \
                     mint one with `{}`",
                    command::tokens::RECOVERY
                );
            }
        }
    }
    Ok(())
}

/// `userdir token list`: one line per token, newest first, never a secret, in columns as wide
/// as their widest value. Text columns are printed with control characters escaped: a row
/// written by SQL or an older version must not move the cursor, recolour or clear the
/// operator's terminal, or forge another line.
async fn token_table(db: &ScopedDb) -> anyhow::Result<String> {
    use userdir::domain::printable;
    let mut rows = vec![
        [
            "ID",
            "STATE",
            "ORGANIZATION",
            "CREATED",
            "EXPIRES",
            "PERMISSIONS",
            "DESCRIPTION",
        ]
        .map(String::from),
    ];
    let mut offset = 0;
    loop {
        let page = userdir::store::reads::tokens::list(
            db,
            Paging {
                offset,
                limit: 1000,
                ascending: false,
            },
        )
        .await?;
        let now = Timestamp::now().micros();
        for token in &page.items {
            let state = match (token.revoked_at, token.expires_at) {
                (Some(_), _) => "revoked",
                (None, Some(expires)) if expires <= now => "expired",
                _ => "active",
            };
            let time = |micros: i64| Timestamp::from_micros(micros).to_string();
            rows.push([
                printable(&token.id).into_owned(),
                state.to_owned(),
                printable(token.organization_id.as_deref().unwrap_or("(instance)")).into_owned(),
                time(token.created_at),
                token.expires_at.map(time).unwrap_or_else(|| "never".into()),
                printable(&token.permissions).into_owned(),
                printable(&token.description).into_owned(),
            ]);
        }
        offset += page.items.len() as u64;
        if page.items.is_empty() || offset >= page.total {
            return Ok(columns(&rows));
        }
    }
}

/// `rows` as a table: every column but the last padded to its widest value (in characters),
/// two spaces apart.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(
                    ' ',
                    widths[i] - cell.chars().count() + 2,
                ));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
