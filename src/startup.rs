//! Wiring: database, services and the listener, on one port.

use std::future::Future;
use std::net::SocketAddr;

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::api::grpc::UserDirectory;
use crate::proto;
use crate::proto::user::v1::user_service_server::UserServiceServer;
use crate::query::PageLimits;
use crate::store;

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
        limits: PageLimits,
    ) -> anyhow::Result<Self> {
        let db = store::connect(database_url).await?;
        store::migrate(&db).await?;
        Self::with_database(db, listen, limits).await
    }

    pub async fn with_database(
        db: DatabaseConnection,
        listen: SocketAddr,
        limits: PageLimits,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        Ok(Self {
            listener,
            router: router(db, limits).await?,
        })
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
async fn router(db: DatabaseConnection, limits: PageLimits) -> anyhow::Result<axum::Router> {
    let users = UserServiceServer::new(UserDirectory::new(db, limits));

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

    let grpc = tonic::service::Routes::new(users)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .prepare()
        .into_axum_router();
    // Layers (auth, limits) go on `grpc` here: JSON and gRPC-Web calls are dispatched through it.
    crate::api::http::router(grpc, proto::DESCRIPTOR_SET)
}
