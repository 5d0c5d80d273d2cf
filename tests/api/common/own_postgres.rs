//! A PostgreSQL server of a test's own, for tests that stop and start the database: `initdb`
//! and `pg_ctl` of the installed PostgreSQL (`/usr/lib/postgresql/*/bin`, the newest), a data
//! directory in a temporary folder, a free port on 127.0.0.1 and the socket in the same folder,
//! so it never meets the shared server. Run as root, the commands run as the `postgres` OS user
//! (PostgreSQL refuses to run as root) and the folder belongs to it.
//!
//! Without an installed `initdb` the test is skipped with a message, unless
//! `USERDIR_TEST_REQUIRE_POSTGRES=1` makes that a failure. The server is stopped when the value
//! is dropped, also when the test panics.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

pub struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl OwnPostgres {
    /// A new cluster, started; None (with a message) when PostgreSQL is not installed.
    pub async fn start() -> Option<Self> {
        let Some(bin) = installed_bin() else {
            let required = std::env::var("USERDIR_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "PostgreSQL is required, but no initdb is installed in /usr/lib/postgresql/*/bin"
            );
            eprintln!(
                "skipping: no initdb in /usr/lib/postgresql/*/bin for a PostgreSQL of the test's own"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary folder");
        let as_postgres = rustix::process::geteuid().is_root();
        if as_postgres {
            let owned = std::process::Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(owned.success(), "chown the folder to postgres");
        }
        let port = free_port();
        let mut server = Self {
            bin,
            dir,
            port,
            as_postgres,
            running: false,
        };
        let data = server.data();
        server
            .run(
                "initdb",
                &[
                    "-D",
                    path(&data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-locale",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--no-instructions",
                ],
            )
            .await;
        server.resume().await;
        Some(server)
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`: no checkpoint,
    /// every session cut; the next start recovers from the WAL).
    pub async fn crash(&mut self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", path(&data), "-m", "immediate", "-w", "stop"],
        )
        .await;
        self.running = false;
    }

    /// Starts the server again and waits until it accepts connections.
    pub async fn resume(&mut self) {
        let data = self.data();
        let log = self.dir.path().join("postgres.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            path(self.dir.path())
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .await;
        self.running = true;
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of PostgreSQL's programs (as `postgres` when we are root); panics with its
    /// output (and the server log) when it fails.
    async fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|error| panic!("running {}: {error}", program.display()));
        if !output.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default();
            panic!(
                "{} {args:?} failed: {}\n{}\n{log}",
                program.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

impl Drop for OwnPostgres {
    /// Stops a server still running (blocking: a drop cannot wait otherwise).
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data();
        let mut command = if self.as_postgres {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            command
        } else {
            std::process::Command::new(&pg_ctl)
        };
        let _ = command
            .args(["-D", path(&data), "-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The `bin` folder of the newest installed PostgreSQL that has `initdb`.
fn installed_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
