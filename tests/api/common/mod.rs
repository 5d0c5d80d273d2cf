//! Test harness: every storage test runs against SQLite and PostgreSQL, each in a fresh
//! database, through a real server on 127.0.0.1 with an ephemeral port.
//!
//! PostgreSQL: `USERDIR_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! names an account that may create databases. When it cannot be reached the PostgreSQL variant
//! of each test is skipped with a message, unless `USERDIR_TEST_REQUIRE_POSTGRES=1`, which CI
//! sets, makes that a failure.

pub mod api;
pub mod fixtures;
pub mod hostile;
pub mod http;
pub mod own_postgres;
pub mod queries;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use userdir::config::Settings;
use userdir::proto::user::v1::organization_service_client::OrganizationServiceClient;
use userdir::proto::user::v1::role_service_client::RoleServiceClient;
use userdir::proto::user::v1::token_service_client::TokenServiceClient;
use userdir::proto::user::v1::user_schema_service_client::UserSchemaServiceClient;
use userdir::proto::user::v1::user_service_client::UserServiceClient;
use userdir::query::PageLimits;
use userdir::startup::Application;
use userdir::store;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Puts `authorization: Bearer <token>` on every call (nothing when the token is None).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(token: Option<&str>) -> Self {
        Self(token.map(|t| format!("Bearer {t}").parse().expect("an ASCII token")))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry a bearer token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// One client per service, all with the same credential.
#[derive(Clone)]
pub struct Clients {
    pub users: UserServiceClient<Authed>,
    pub organizations: OrganizationServiceClient<Authed>,
    pub schemas: UserSchemaServiceClient<Authed>,
    pub roles: RoleServiceClient<Authed>,
    pub tokens: TokenServiceClient<Authed>,
}

impl Clients {
    pub fn new(channel: Channel, token: Option<&str>) -> Self {
        let bearer = Bearer::new(token);
        Self {
            users: UserServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            organizations: OrganizationServiceClient::with_interceptor(
                channel.clone(),
                bearer.clone(),
            ),
            schemas: UserSchemaServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            roles: RoleServiceClient::with_interceptor(channel.clone(), bearer.clone()),
            tokens: TokenServiceClient::with_interceptor(channel, bearer),
        }
    }
}

/// A running server over a fresh database. The clients carry the bootstrap admin token.
pub struct TestApp {
    pub backend: Backend,
    pub address: SocketAddr,
    /// The metrics listener, when the settings asked for one.
    pub metrics: Option<SocketAddr>,
    pub db: DatabaseConnection,
    /// The database's URL, for the binary's commands (`userdir import`).
    pub database_url: String,
    /// The bootstrap admin token of the directory.
    pub token: String,
    pub channel: Channel,
    pub users: UserServiceClient<Authed>,
    pub organizations: OrganizationServiceClient<Authed>,
    pub schemas: UserSchemaServiceClient<Authed>,
    pub roles: RoleServiceClient<Authed>,
    pub tokens: TokenServiceClient<Authed>,
    /// Dropped with the app, which stops its server: its health probe (which would knock on a
    /// dropped test database every 500 ms) stops at once, the server after its drain.
    _running: tokio::sync::oneshot::Sender<()>,
}

impl TestApp {
    /// Another server over the same database, with other page limits.
    pub async fn with_limits(&self, limits: PageLimits) -> TestApp {
        self.with_settings(Settings {
            pages: limits,
            ..Settings::default()
        })
        .await
    }

    /// Another server over the same database, with other settings.
    pub async fn with_settings(&self, settings: Settings) -> TestApp {
        serve(
            self.backend,
            self.db.clone(),
            &self.database_url,
            settings,
            Some(self.token.clone()),
        )
        .await
    }

    /// Clients that send `token` (None: no credential at all).
    pub fn clients(&self, token: Option<&str>) -> Clients {
        Clients::new(self.channel.clone(), token)
    }
}

/// Declares one test per backend for each named `async fn(TestApp)` (in scope for every test
/// module through `#[macro_use] mod common`).
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                $crate::common::run($crate::common::Backend::Sqlite, super::$name).await;
            }
            #[tokio::test]
            async fn postgres() {
                $crate::common::run($crate::common::Backend::Postgres, super::$name).await;
            }
        }
    )*};
}

/// Declares one test per backend for each named `async fn(Backend)`: tests that make their own
/// database of that backend (without a server), where `backend_tests!` serves one.
macro_rules! backend_fn_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await;
            }
        }
    )*};
}

/// Runs `test` against a fresh database of `backend`, then drops the database, also when the
/// test panics.
pub async fn run<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    userdir::telemetry::init();
    let Some(database) = FreshDatabase::create(backend).await else {
        return;
    };
    let db = store::connect(&database.url)
        .await
        .expect("connect to the test database");
    store::migrate(&db)
        .await
        .expect("migrate the test database");
    let app = serve(
        backend,
        db.clone(),
        &database.url,
        Settings::default(),
        None,
    )
    .await;
    let outcome = tokio::spawn(test(app)).await;
    db.close().await.ok();
    database.drop().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Serves `db`; `token` is the directory's admin token when it was bootstrapped before.
pub async fn serve(
    backend: Backend,
    db: DatabaseConnection,
    database_url: &str,
    settings: Settings,
    token: Option<String>,
) -> TestApp {
    let app = Application::with_database(db.clone(), "127.0.0.1:0".parse().unwrap(), settings)
        .await
        .expect("bind the test server");
    let mut minted = None;
    app.bootstrap(|secret| {
        minted = Some(secret.to_owned());
        Ok(())
    })
    .await
    .expect("bootstrap the test server");
    let token = minted
        .or(token)
        .expect("a fresh directory mints a bootstrap token");
    let address = app.local_addr().unwrap();
    let metrics = app.metrics_addr();
    let (running, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .expect("connect to the test server");
    let clients = Clients::new(channel.clone(), Some(&token));
    TestApp {
        backend,
        address,
        metrics,
        db,
        database_url: database_url.to_owned(),
        token,
        channel,
        users: clients.users,
        organizations: clients.organizations,
        schemas: clients.schemas,
        roles: clients.roles,
        tokens: clients.tokens,
        _running: running,
    }
}

/// A database that exists for one test.
pub struct FreshDatabase {
    pub url: String,
    /// Keeps the SQLite file's directory alive.
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the admin URL and the database name, for dropping it.
    postgres: Option<(String, String)>,
}

impl FreshDatabase {
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("userdir.db").display()
                );
                Some(Self {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let admin_url = std::env::var("USERDIR_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
                let admin = match connect_admin(&admin_url).await {
                    Ok(admin) => admin,
                    Err(error) => {
                        let required =
                            std::env::var("USERDIR_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
                        assert!(
                            !required,
                            "PostgreSQL is required but unreachable at {admin_url}: {error}"
                        );
                        eprintln!(
                            "skipping the PostgreSQL variant: {admin_url} unreachable ({error})"
                        );
                        return None;
                    }
                };
                let name = format!("userdir_test_{}", uuid::Uuid::new_v4().simple());
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create the test database");
                admin.close().await.ok();
                let (base, _) = admin_url
                    .rsplit_once('/')
                    .expect("a database URL has a path");
                Some(Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    postgres: Some((admin_url, name)),
                })
            }
        }
    }

    pub async fn drop(self) {
        if let Some((admin_url, name)) = self.postgres
            && let Ok(admin) = connect_admin(&admin_url).await
        {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
            admin.close().await.ok();
        }
    }
}

async fn connect_admin(url: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(3))
        .sqlx_logging(false);
    Database::connect(options).await
}

/// Undoes every migration from the newest down to and including the one called `name`, checks
/// that it is no longer applied (so a test of its backfill cannot pass by undoing a newer one
/// instead), then applies every pending one again. All of it in one transaction on one
/// connection, as `store::migrate` does: on SQLite, statements spread over the pool could meet
/// a connection whose schema predates an index another one just dropped, and it would refuse
/// to create that index again ("already exists").
pub async fn migrate_down_through_and_up(db: &DatabaseConnection, name: &str) {
    use migration::MigratorTrait;
    use sea_orm::TransactionTrait;
    let all = migration::Migrator::migrations();
    let position = all
        .iter()
        .position(|m| m.name() == name)
        .unwrap_or_else(|| panic!("no migration is called {name}"));
    let steps = u32::try_from(all.len() - position).expect("a few migrations");
    let txn = db.begin().await.expect("begin");
    migration::Migrator::down(&txn, Some(steps))
        .await
        .expect("roll back");
    let applied: Vec<String> = migration::Migrator::get_applied_migrations(&txn)
        .await
        .expect("list the applied migrations")
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let before: Vec<String> = all[..position]
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    assert_eq!(applied, before, "rolled back through {name}");
    migration::Migrator::up(&txn, None)
        .await
        .expect("apply again");
    txn.commit().await.expect("commit");
}

/// The plan of `sql`, one line per node (SQLite: `EXPLAIN QUERY PLAN`'s details).
pub async fn plan(db: &impl ConnectionTrait, sql: &str) -> String {
    let backend = db.get_database_backend();
    let (explain, column) = match backend {
        sea_orm::DbBackend::Sqlite => ("EXPLAIN QUERY PLAN", "detail"),
        _ => ("EXPLAIN (COSTS OFF)", "QUERY PLAN"),
    };
    db.query_all_raw(sea_orm::Statement::from_string(
        backend,
        format!("{explain} {sql}"),
    ))
    .await
    .expect("explain")
    .into_iter()
    .map(|row| row.try_get::<String>("", column).unwrap())
    .collect::<Vec<_>>()
    .join("\n")
}

/// Every user id in `acknowledged` (writes the server answered OK) is in the database.
pub async fn assert_stored(db: &DatabaseConnection, acknowledged: &[String]) {
    let stored: std::collections::HashSet<String> = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM users",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get::<String>("", "id").unwrap())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
}
