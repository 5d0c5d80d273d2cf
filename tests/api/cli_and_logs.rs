//! The `userdir` binary as an operator runs it, on SQLite and PostgreSQL: the bootstrap token on
//! first start (file mode 0600, or stdout), `userdir token create|list|revoke`, and a full run
//! whose logs, at debug level, never contain a secret: passwords, codes, TOTP secrets, private
//! keys or tokens.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{Backend, Clients, FreshDatabase};
use sea_orm::{ConnectionTrait, Statement};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;
use userdir::proto::user::v1 as pb;

const BINARY: &str = env!("CARGO_BIN_EXE_userdir");

#[tokio::test]
async fn sqlite() {
    bootstrap_tokens_cli_and_logs(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres() {
    bootstrap_tokens_cli_and_logs(Backend::Postgres).await;
}

/// A server process and everything it has logged so far.
struct Server {
    child: Child,
    address: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    async fn start(database_url: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(BINARY)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                database_url,
            ])
            .args(extra)
            .env("RUST_LOG", "debug")
            // Nothing balances load here: stop at once (the drain has its own test).
            .env("USERDIR_SHUTDOWN_GRACE", "0s")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start userdir serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let address = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let line = lines.next_line().await.unwrap().expect("the server exited");
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
                if line.contains("serving gRPC")
                    && let Some(rest) = line.split("address=").nth(1)
                {
                    return rest.split_whitespace().next().unwrap().to_owned();
                }
            }
        })
        .await
        .expect("the server starts");
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        Server {
            child,
            address,
            log,
        }
    }

    /// Stops the server; returns its stdout and its whole log.
    async fn stop(mut self) -> (String, String) {
        let pid = self.child.id().unwrap();
        // SIGTERM: the server shuts down gracefully.
        std::process::Command::new("kill")
            .arg(pid.to_string())
            .status()
            .unwrap();
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server stops")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let log = self.log.lock().unwrap().clone();
        (stdout, log)
    }

    async fn clients(&self, token: &str) -> Clients {
        let channel = Channel::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Clients::new(channel, Some(token))
    }
}

async fn cli(args: &[&str], database_url: &str) -> (bool, String, String) {
    let output = Command::new(BINARY)
        .args(args)
        .args(["--database-url", database_url])
        .env("RUST_LOG", "debug")
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Exercises every API that hands out a secret; returns the secrets.
async fn secrets_of_a_full_run(clients: &mut Clients) -> Vec<String> {
    let org = clients
        .organizations
        .create_organization(pb::CreateOrganizationRequest {
            name: "Acme".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .organization_id;
    let schema = clients
        .schemas
        .create_user_schema(pb::CreateUserSchemaRequest {
            r#type: "person".into(),
            schema: Some(common::api::object(serde_json::json!({"type": "object"}))),
        })
        .await
        .unwrap()
        .into_inner()
        .schema_id;
    let password = "Sup3r-Secret-Passw0rd".to_owned();
    let created = clients
        .users
        .create_user(pb::CreateUserRequest {
            organization_id: org.clone(),
            schema_id: schema,
            contact: Some(pb::SetContact {
                email: Some(pb::SetEmail {
                    address: "gigi@example.com".into(),
                    verification: Some(pb::set_email::Verification::ReturnCode(
                        pb::ReturnVerificationCode {},
                    )),
                }),
                phone: None,
            }),
            password: Some(pb::SetPassword {
                r#type: Some(pb::set_password::Type::Password(password.clone())),
                change_required: false,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let user_id = created.user_id;
    let mut secrets = vec![password.clone(), created.email_code.unwrap()];
    clients
        .users
        .verify_password(pb::VerifyPasswordRequest {
            user_id: user_id.clone(),
            password: password.clone(),
        })
        .await
        .unwrap();
    let wrong = "Wr0ng-Guess-Passw0rd".to_owned();
    clients
        .users
        .verify_password(pb::VerifyPasswordRequest {
            user_id: user_id.clone(),
            password: wrong.clone(),
        })
        .await
        .unwrap_err();
    secrets.push(wrong);
    let totp = clients
        .users
        .start_totp_registration(pb::StartTotpRegistrationRequest {
            user_id: user_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    secrets.push(totp.secret);
    let sms = clients
        .users
        .add_otpsms_authenticator(pb::AddOtpsmsAuthenticatorRequest {
            user_id: user_id.clone(),
            phone: "+41791234567".into(),
            return_code: true,
        })
        .await
        .unwrap()
        .into_inner();
    secrets.push(sms.verification_code.unwrap());
    let key = clients
        .users
        .add_authentication_key(pb::AddAuthenticationKeyRequest {
            user_id: user_id.clone(),
            expiration_date: None,
        })
        .await
        .unwrap()
        .into_inner();
    let key_file: serde_json::Value = serde_json::from_slice(&key.key_content).unwrap();
    let private_key = key_file["key"].as_str().unwrap();
    // The PEM's base64 body, line by line: no line of it may show up in a log.
    secrets.extend(
        private_key
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .map(str::to_owned),
    );
    let token = clients
        .tokens
        .create_access_token(pb::CreateAccessTokenRequest {
            description: "ci".into(),
            permissions: vec!["user.read".into()],
            organization_id: Some(org),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    secrets.push(token[6..].to_owned());
    secrets
}

async fn bootstrap_tokens_cli_and_logs(backend: Backend) {
    let Some(database) = FreshDatabase::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("bootstrap-token");
    // A file that exists with a wide mode is narrowed before the secret goes in.
    std::fs::write(&token_file, "old").unwrap();

    // First start: the bootstrap token goes to the file, mode 0600, and to nowhere else.
    let server = Server::start(
        &database.url,
        &["--bootstrap-token-file", token_file.to_str().unwrap()],
    )
    .await;
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    assert!(token.starts_with("udpat_"), "{token}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut clients = server.clients(&token).await;
    let mut secrets = secrets_of_a_full_run(&mut clients).await;
    secrets.push(token[6..].to_owned());
    let (stdout, log) = server.stop().await;
    assert!(stdout.is_empty(), "{stdout}");
    assert!(log.contains("bootstrap admin token"), "{log}");
    assert!(log.contains("authorized"), "debug logging was on: {log}");
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log shows a secret: {secret}"
        );
    }

    // Later starts mint nothing.
    let server = Server::start(&database.url, &[]).await;
    let (stdout, _) = server.stop().await;
    assert!(stdout.is_empty(), "{stdout}");

    // The CLI mints a token, alone on stdout; lists without secrets; revokes.
    let (ok, stdout, stderr) = cli(
        &[
            "token",
            "create",
            "--permissions",
            "user.read,role.read",
            "--expires",
            "30d",
        ],
        &database.url,
    )
    .await;
    assert!(ok, "{stderr}");
    let minted = stdout.trim_end_matches('\n');
    assert!(
        minted.starts_with("udpat_") && !minted.contains('\n'),
        "{stdout:?}"
    );
    assert!(!stderr.contains(&minted[6..]), "{stderr}");
    let (ok, list, stderr) = cli(&["token", "list"], &database.url).await;
    assert!(ok, "{stderr}");
    assert!(!list.contains(&minted[6..]) && !list.contains(&token[6..]));
    let line = list
        .lines()
        .find(|line| line.contains("user.read,role.read"))
        .unwrap_or_else(|| panic!("{list}"));
    let id = line.split_whitespace().next().unwrap().to_owned();
    assert!(line.contains("active"), "{line}");
    // The columns align: each header starts where its values do, whatever their width.
    let header = list.lines().next().unwrap();
    let start = |name: &str| header.find(name).unwrap_or_else(|| panic!("{header}"));
    for row in list.lines().skip(1) {
        let cells: Vec<(usize, &str)> = row
            .match_indices(|c: char| c != ' ')
            .filter(|(i, _)| {
                *i == 0 || (row.as_bytes()[i - 1] == b' ' && row.as_bytes()[i - 2] == b' ')
            })
            .collect();
        let starts: Vec<usize> = cells.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            starts[..6],
            [
                "ID",
                "STATE",
                "ORGANIZATION",
                "CREATED",
                "EXPIRES",
                "PERMISSIONS"
            ]
            .map(start),
            "{list}"
        );
    }
    let (ok, _, stderr) = cli(&["token", "revoke", &id], &database.url).await;
    assert!(ok, "{stderr}");
    let (_, list, _) = cli(&["token", "list"], &database.url).await;
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.contains("revoked")),
        "{list}"
    );
    let (ok, _, stderr) = cli(&["token", "revoke", &id], &database.url).await;
    assert!(!ok && stderr.contains("already revoked"), "{stderr}");
    // The operator's writes record the CLI as their actor, the first start "bootstrap", the
    // token minted through the API its caller.
    let db = userdir::store::connect(&database.url).await.unwrap();
    let actors: Vec<(String, String)> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT event_type, actor FROM events WHERE aggregate_type = 'access_token' \
             ORDER BY sequence",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.try_get("", "event_type").unwrap(),
                row.try_get::<String>("", "actor").unwrap(),
            )
        })
        .map(|(kind, actor)| match actor.strip_prefix("token:") {
            Some(_) => (kind, "token:…".to_owned()),
            None => (kind, actor),
        })
        .collect();
    let event = |kind: &str, actor: &str| (kind.to_owned(), actor.to_owned());
    assert_eq!(
        actors,
        [
            event("access_token.added", "bootstrap"),
            event("access_token.added", "token:…"),
            event("access_token.added", "cli"),
            event("access_token.revoked", "cli"),
        ]
    );
    db.close().await.unwrap();
    let (ok, _, stderr) = cli(
        &["token", "create", "--permissions", "user.admin"],
        &database.url,
    )
    .await;
    assert!(!ok && stderr.contains("unknown permission"), "{stderr}");
    let (ok, _, stderr) = cli(&["token", "create"], &database.url).await;
    assert!(!ok && stderr.contains("--admin"), "{stderr}");

    database.drop().await;
}

/// Without a file the bootstrap token is printed on stdout, alone, and never logged.
#[tokio::test]
async fn bootstrap_token_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("u.db").display());
    let server = Server::start(&url, &[]).await;
    let (stdout, log) = server.stop().await;
    let token = stdout.trim_end_matches('\n');
    assert!(
        token.starts_with("udpat_") && !token.contains('\n'),
        "{stdout:?}"
    );
    assert!(!log.contains(&token[6..]), "{log}");
}

#[tokio::test]
async fn failed_starts_mint_nothing_sqlite() {
    failed_starts_mint_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn failed_starts_mint_nothing_postgres() {
    failed_starts_mint_nothing(Backend::Postgres).await;
}

/// `userdir serve` that must exit on its own; returns whether it succeeded, and its log.
async fn serve_until_exit(database_url: &str, args: &[&str]) -> (bool, String) {
    let child = Command::new(BINARY)
        .arg("serve")
        .args(args)
        .args(["--database-url", database_url])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start userdir serve");
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the server exits by itself")
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// A start that cannot bind its port or hand the bootstrap token over mints nothing, says
/// why, and the next start mints the token then; while no admin token is usable, every start
/// names the way back.
async fn failed_starts_mint_nothing(backend: Backend) {
    let Some(database) = FreshDatabase::create(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin.token");
    let token_path = token_file.to_str().unwrap();

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let (ok, log) = serve_until_exit(
        &database.url,
        &["--listen", &address, "--bootstrap-token-file", token_path],
    )
    .await;
    assert!(!ok && log.contains(&address), "{log}");
    assert!(!token_file.exists());

    let missing = dir.path().join("no-such-folder").join("admin.token");
    let missing = missing.to_str().unwrap();
    let (ok, log) = serve_until_exit(
        &database.url,
        &["--listen", "127.0.0.1:0", "--bootstrap-token-file", missing],
    )
    .await;
    assert!(!ok && log.contains(missing), "{log}");

    // Neither start consumed the bootstrap token.
    let server = Server::start(&database.url, &["--bootstrap-token-file", token_path]).await;
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    server
        .clients(&token)
        .await
        .users
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect("the bootstrap token works");
    let (_, log) = server.stop().await;
    assert!(!log.contains("no usable admin token"), "{log}");

    // The operator may revoke the last admin token, and is told how to get one back; so is
    // every start until then.
    let (_, list, _) = cli(&["token", "list"], &database.url).await;
    let id = list
        .lines()
        .find(|line| line.contains("bootstrap admin token"))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("{list}"))
        .to_owned();
    let (ok, _, stderr) = cli(&["token", "revoke", &id], &database.url).await;
    assert!(
        ok && stderr.contains("userdir token create --admin"),
        "{stderr}"
    );
    for _ in 0..2 {
        let server = Server::start(&database.url, &[]).await;
        let (stdout, log) = server.stop().await;
        assert!(stdout.is_empty(), "nothing minted: {stdout}");
        assert!(
            log.contains("no usable admin token") && log.contains("userdir token create --admin"),
            "{log}"
        );
    }
    database.drop().await;
}
