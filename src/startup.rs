//! Wiring: database, services and the listener, on one port.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use std::sync::Arc;

use crate::api::grpc::{
    AccessTokens, Organizations, Roles, ServiceState, UserDirectory, UserSchemas,
};
use crate::auth::layer::{Gate, enforce};
use crate::auth::oidc::OidcVerifier;
use crate::auth::rate_limit::RateLimits;
use crate::auth::stream_meter::{MAX_REFLECTION_REQUESTS_PER_STREAM, MeteredStreams};
use crate::command::tokens;
use crate::config::Settings;
use crate::domain::Timestamp;
use crate::limits::RequestLimits;
use crate::limits::connections::ConnectionLimits;
use crate::limits::hashing::Hashing;
use crate::limits::regex_searches::RegexSearches;
use crate::proto;
use crate::proto::user::v1::organization_service_server::OrganizationServiceServer;
use crate::proto::user::v1::role_service_server::RoleServiceServer;
use crate::proto::user::v1::token_service_server::TokenServiceServer;
use crate::proto::user::v1::user_schema_service_server::UserSchemaServiceServer;
use crate::proto::user::v1::user_service_server::UserServiceServer;
use crate::store::reads::tokens as reads;
use crate::store::{self, ScopedDb};

/// A bound, ready server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    db: DatabaseConnection,
    limits: RequestLimits,
    connections: ConnectionLimits,
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
        settings.limits.validate()?;
        settings.hashing.validate()?;
        settings.connections.validate()?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let router = router(db.clone(), &settings).await?;
        Ok(Self {
            listener,
            router,
            db,
            limits: settings.limits,
            connections: settings.connections,
        })
    }

    /// Makes sure the operator can administer the directory. If it never had an access token,
    /// mints the bootstrap admin token and commits it only once `hand_over` (which shows it to
    /// the operator once; only its hash is stored) succeeded: a failed hand-over mints nothing,
    /// and the next start tries again. If no usable admin token is left, says how to get one.
    /// Returns whether it minted.
    pub async fn bootstrap(
        &self,
        hand_over: impl FnOnce(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let db = ScopedDb::instance(self.db.clone()).acting_as("bootstrap");
        if let Some(pending) = tokens::bootstrap(&db).await? {
            hand_over(pending.secret()).context(
                "the bootstrap admin token could not be handed over, so none was minted; \
                     fix this and start again",
            )?;
            pending.commit().await?;
            return Ok(true);
        }
        if reads::usable_admin_ids(&self.db, Timestamp::now())
            .await?
            .is_empty()
        {
            tracing::warn!(
                "no usable admin token: every instance-wide admin token is revoked or expired; \
                 mint one with `{}`",
                tokens::RECOVERY
            );
        }
        Ok(false)
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves HTTP/2 (gRPC, h2c) and HTTP/1.1 until `shutdown` completes. Requests carry
    /// `ConnectInfo<SocketAddr>`.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::limits::serve::serve(
            self.listener,
            self.router,
            self.limits,
            self.connections,
            shutdown,
        )
        .await
    }
}

/// The gRPC services: the directory, health and reflection (v1 and v1alpha, so that old and
/// new grpcurl both work without proto files); on the same port, gRPC-Web, the HTTP/JSON routes
/// and /openapi.json (see `api::http`).
async fn router(db: DatabaseConnection, settings: &Settings) -> anyhow::Result<axum::Router> {
    let pages = settings.pages;
    let limits = settings.limits;
    let webauthn = Arc::new(crate::command::webauthn::relying_party(
        &settings.webauthn_rp_id,
        &settings.webauthn_origin,
    )?);
    let max_message = limits.max_message_bytes;
    let state = ServiceState {
        db: db.clone(),
        pages,
        limits,
        // One cap on regex searches for every surface of this server.
        regex_searches: RegexSearches::new(limits.max_concurrent_regex_searches),
    };
    // Every service that hashes or verifies passwords shares this one bound.
    let hashing = Hashing::new(settings.hashing)?;
    let users = UserServiceServer::new(UserDirectory::new(state.clone(), webauthn, hashing))
        .max_decoding_message_size(max_message);
    let organizations = OrganizationServiceServer::new(Organizations::new(state.clone()))
        .max_decoding_message_size(max_message);
    let schemas = UserSchemaServiceServer::new(UserSchemas::new(state.clone()))
        .max_decoding_message_size(max_message);
    let roles =
        RoleServiceServer::new(Roles::new(state.clone())).max_decoding_message_size(max_message);
    let tokens = TokenServiceServer::new(AccessTokens::new(state.clone()))
        .max_decoding_message_size(max_message);
    // The Logto and GreenLake REST dialects (HTTP/1.1 and h2c on the same port).
    let rest = crate::api::rest::routes(db.clone(), pages, limits.query(), state.regex_searches);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<UserServiceServer<UserDirectory>>()
        .await;

    let health = health.max_decoding_message_size(max_message);
    // The gate and the reflection streams charge the same per-peer budgets.
    let rate_limits = Arc::new(RateLimits::new(settings.rate_limits));
    // Reflection is public and one stream can carry any number of requests: each is metered.
    let reflection_v1 = MeteredStreams::new(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?
            .max_decoding_message_size(max_message),
        rate_limits.clone(),
        MAX_REFLECTION_REQUESTS_PER_STREAM,
    );
    let reflection_v1alpha = MeteredStreams::new(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?
            .max_decoding_message_size(max_message),
        rate_limits.clone(),
        MAX_REFLECTION_REQUESTS_PER_STREAM,
    );

    health_reporter
        .set_serving::<OrganizationServiceServer<Organizations>>()
        .await;
    health_reporter
        .set_serving::<UserSchemaServiceServer<UserSchemas>>()
        .await;
    health_reporter
        .set_serving::<RoleServiceServer<Roles>>()
        .await;
    health_reporter
        .set_serving::<TokenServiceServer<AccessTokens>>()
        .await;

    let grpc = tonic::service::Routes::new(users)
        .add_service(organizations)
        .add_service(schemas)
        .add_service(roles)
        .add_service(tokens)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .prepare()
        .into_axum_router()
        .layer(axum::middleware::from_fn(
            crate::limits::grpc_status::client_errors,
        ));
    let documented = crate::api::rest::openapi::fragment();
    let router =
        crate::api::http::router(grpc, proto::DESCRIPTOR_SET, documented, max_message)?.merge(rest);
    // One gate in front of everything on the port: gRPC, gRPC-Web, HTTP/JSON (judged by the
    // gRPC method each route calls) and the REST dialects.
    let oidc = match &settings.oidc {
        Some(oidc) => Some(OidcVerifier::new(oidc.clone()).await?),
        None => None,
    };
    let gate = Gate::new(
        db,
        oidc,
        rate_limits,
        crate::api::http::route_resolver(proto::DESCRIPTOR_SET)?,
    );
    // The deadline covers every protocol, the gate included; the header list limit comes first
    // of all, before anything reads a header.
    Ok(router
        .layer(axum::middleware::from_fn_with_state(gate, enforce))
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout,
            crate::limits::deadline::enforce,
        ))
        .layer(axum::middleware::from_fn_with_state(
            limits.max_header_bytes,
            crate::limits::head::enforce,
        )))
}
