//! Wiring: database, services and the listener, on one port.

use std::future::Future;
use std::net::SocketAddr;

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use std::sync::Arc;

use crate::api::grpc::{Organizations, Roles, UserDirectory, UserSchemas};
use crate::proto;
use crate::proto::user::v1::organization_service_server::OrganizationServiceServer;
use crate::proto::user::v1::role_service_server::RoleServiceServer;
use crate::proto::user::v1::user_schema_service_server::UserSchemaServiceServer;
use crate::proto::user::v1::user_service_server::UserServiceServer;
use crate::query::PageLimits;
use crate::store;

/// What the services need besides the database.
#[derive(Clone, Debug)]
pub struct Settings {
    pub limits: PageLimits,
    /// WebAuthn relying party id (the domain credentials are bound to).
    pub webauthn_rp_id: String,
    /// The origin browsers register credentials from.
    pub webauthn_origin: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: PageLimits::default(),
            webauthn_rp_id: "localhost".into(),
            webauthn_origin: "http://localhost:8080".into(),
        }
    }
}

/// A bound, ready server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
}

impl Application {
    /// Connects to the database, migrates it and binds the listener.
    pub async fn build(
        database_url: &str,
        listen: SocketAddr,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let db = store::connect(database_url).await?;
        store::migrate(&db).await?;
        Self::with_database(db, listen, settings).await
    }

    pub async fn with_database(
        db: DatabaseConnection,
        listen: SocketAddr,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let router = router(db, &settings).await?;
        let listener = TcpListener::bind(listen).await?;
        Ok(Self { listener, router })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves HTTP/2 (gRPC, h2c) and HTTP/1.1 until `shutdown` completes.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// The gRPC services: the directory, health and reflection (v1 and v1alpha, so that old and
/// new grpcurl both work without proto files); on the same port, gRPC-Web, the HTTP/JSON routes
/// and /openapi.json (see `api::http`).
async fn router(db: DatabaseConnection, settings: &Settings) -> anyhow::Result<axum::Router> {
    let limits = settings.limits;
    let webauthn = Arc::new(crate::command::webauthn::relying_party(
        &settings.webauthn_rp_id,
        &settings.webauthn_origin,
    )?);
    let users = UserServiceServer::new(UserDirectory::new(db.clone(), limits, webauthn));
    let organizations = OrganizationServiceServer::new(Organizations::new(db.clone(), limits));
    let schemas = UserSchemaServiceServer::new(UserSchemas::new(db.clone(), limits));
    let roles = RoleServiceServer::new(Roles::new(db.clone(), limits));
    // The Logto and GreenLake REST dialects (HTTP/1.1 and h2c on the same port).
    let rest = crate::api::rest::routes(db, limits);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<UserServiceServer<UserDirectory>>()
        .await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    health_reporter
        .set_serving::<OrganizationServiceServer<Organizations>>()
        .await;
    health_reporter
        .set_serving::<UserSchemaServiceServer<UserSchemas>>()
        .await;
    health_reporter
        .set_serving::<RoleServiceServer<Roles>>()
        .await;

    let grpc = tonic::service::Routes::new(users)
        .add_service(organizations)
        .add_service(schemas)
        .add_service(roles)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .prepare()
        .into_axum_router();
    // Layers (auth, limits) go on `grpc` here: JSON and gRPC-Web calls are dispatched through it.
    // The REST dialects call the store directly, so such layers must cover them as well.
    let documented = crate::api::rest::openapi::fragment();
    Ok(crate::api::http::router(grpc, proto::DESCRIPTOR_SET, documented)?.merge(rest))
}
