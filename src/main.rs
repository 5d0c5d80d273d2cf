//! The `userdir` command.

use clap::{Parser, Subcommand};
use userdir::config::{DatabaseArgs, ServeArgs};
use userdir::seed::{self, SeedOptions};
use userdir::startup::Application;
use userdir::{store, telemetry};

#[derive(Parser)]
#[command(
    name = "userdir",
    version,
    about = "A user directory with ZITADEL's user API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database and serve gRPC on one port.
    Serve(ServeArgs),
    /// Bring the database schema up to date, then exit.
    Migrate(DatabaseArgs),
    /// Fill the directory with a realistic, deterministic population.
    Seed {
        /// How many users to add.
        #[arg(long)]
        users: u64,
        /// The same seed on an empty directory gives the same users, ids included.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Users written per transaction.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    match Cli::parse().command {
        Command::Serve(args) => {
            let settings = args.settings()?;
            let app =
                Application::build(&args.database.database_url, args.listen, settings).await?;
            tracing::info!(address = %app.local_addr()?, "serving gRPC");
            app.run_until(shutdown_signal()).await?;
        }
        Command::Migrate(args) => {
            let db = store::connect(&args.database_url).await?;
            store::migrate(&db).await?;
            tracing::info!("database is up to date");
        }
        Command::Seed {
            users,
            seed,
            batch_size,
            database,
        } => {
            let db = store::connect(&database.database_url).await?;
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
    }
    Ok(())
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
