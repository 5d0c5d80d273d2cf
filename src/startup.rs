//! Wiring: database, services and the listener, on one port.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tower::ServiceBuilder;

use axum::middleware::{from_fn, from_fn_with_state};

use std::sync::Arc;

use crate::api::grpc::{AccessTokens, Organizations, Roles, UserDirectory, UserSchemas};
use crate::api::http::Transcoder;
use crate::auth::layer::{Gate, RouteResolver, enforce};
use crate::auth::oidc::{OidcSettings, OidcVerifier};
use crate::auth::rate_limit::{RateLimitSettings, RateLimits};
use crate::auth::stream_meter::{MAX_REFLECTION_REQUESTS_PER_STREAM, MeteredStreams};
use crate::command::tokens;
use crate::domain::Timestamp;
use crate::limits::RequestLimits;
use crate::limits::connections::ConnectionLimits;
use crate::limits::hashing::{Hashing, HashingLimits};
use crate::limits::regex_searches::RegexSearches;
use crate::proto;
use crate::proto::user::v1::organization_service_server::OrganizationServiceServer;
use crate::proto::user::v1::role_service_server::RoleServiceServer;
use crate::proto::user::v1::token_service_server::TokenServiceServer;
use crate::proto::user::v1::user_schema_service_server::UserSchemaServiceServer;
use crate::proto::user::v1::user_service_server::UserServiceServer;
use crate::query::PageLimits;
use crate::store::reads::tokens as reads;
use crate::store::{self, ScopedDb};

/// What the services need besides the database.
#[derive(Clone, Debug)]
pub struct Settings {
    pub limits: PageLimits,
    /// WebAuthn relying party id (the domain credentials are bound to).
    pub webauthn_rp_id: String,
    /// The origin browsers register credentials from.
    pub webauthn_origin: String,
    pub rate_limits: RateLimitSettings,
    /// Accept JWTs of this OIDC issuer besides access tokens.
    pub oidc: Option<OidcSettings>,
    /// Sizes, depths and deadlines of requests.
    pub request: RequestLimits,
    /// How many password hashes run and wait at once, server-wide.
    pub hashing: HashingLimits,
    /// Timeouts and caps of connections.
    pub connections: ConnectionLimits,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: PageLimits::default(),
            webauthn_rp_id: "localhost".into(),
            webauthn_origin: "http://localhost:8080".into(),
            rate_limits: RateLimitSettings::default(),
            oidc: None,
            request: RequestLimits::default(),
            hashing: HashingLimits::default(),
            connections: ConnectionLimits::default(),
        }
    }
}

/// A bound, ready server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    db: DatabaseConnection,
    request: RequestLimits,
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
        settings.request.validate()?;
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
            request: settings.request,
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
            self.request,
            self.connections,
            shutdown,
        )
        .await
    }
}

/// Everything served on the one port, read in order: the gRPC services (the directory, health,
/// reflection), the HTTP/JSON transcoder and gRPC-Web in front of them (`api::http`), the REST
/// dialects beside them (`api::rest`), and the layer stack over all of it ([`behind_edge_layers`]).
async fn router(db: DatabaseConnection, settings: &Settings) -> anyhow::Result<axum::Router> {
    let request = settings.request;
    // The gate and the reflection streams charge the same per-peer budgets.
    let rate_limits = Arc::new(RateLimits::new(settings.rate_limits));
    // One cap on regex searches for every surface of this server.
    let regex_searches = RegexSearches::new(request.max_concurrent_regex_searches);

    let grpc = directory_services(Routes::default(), &db, settings, regex_searches.clone())?;
    let grpc = health_service(grpc, request.max_message_bytes).await;
    let grpc = reflection_services(grpc, &rate_limits, request.max_message_bytes)?;
    let grpc = grpc.prepare().into_axum_router().layer(from_fn(
        // tonic's own refusals of a message (too large, undecodable) get the client's code.
        crate::limits::grpc_status::client_errors,
    ));

    // The route table is built once: the transcoder serves it and the gate judges by it.
    let transcoder = Transcoder::new(proto::DESCRIPTOR_SET)?;
    let routes = transcoder.resolver();
    let served = transcoder
        .router(
            grpc,
            crate::api::rest::openapi::fragment(),
            request.max_message_bytes,
        )?
        .merge(rest_routes(&db, settings, regex_searches));
    let gate = gate(db, settings, rate_limits, routes).await?;
    Ok(behind_edge_layers(served, gate, request))
}

/// The directory's own gRPC services, each with the server's message limit.
fn directory_services(
    routes: Routes,
    db: &DatabaseConnection,
    settings: &Settings,
    regex_searches: RegexSearches,
) -> anyhow::Result<Routes> {
    let limits = settings.limits;
    let request = settings.request;
    let max_message = request.max_message_bytes;
    let webauthn = Arc::new(crate::command::webauthn::relying_party(
        &settings.webauthn_rp_id,
        &settings.webauthn_origin,
    )?);
    // Every service that hashes or verifies passwords shares this one bound.
    let hashing = Hashing::new(settings.hashing)?;
    let users = UserServiceServer::new(UserDirectory::new(
        db.clone(),
        limits,
        request,
        webauthn,
        regex_searches.clone(),
        hashing,
    ))
    .max_decoding_message_size(max_message);
    let organizations =
        OrganizationServiceServer::new(Organizations::new(db.clone(), limits, request))
            .max_decoding_message_size(max_message);
    let schemas = UserSchemaServiceServer::new(UserSchemas::new(db.clone(), limits, request))
        .max_decoding_message_size(max_message);
    let roles = RoleServiceServer::new(Roles::new(db.clone(), limits, request, regex_searches))
        .max_decoding_message_size(max_message);
    let tokens = TokenServiceServer::new(AccessTokens::new(db.clone(), limits))
        .max_decoding_message_size(max_message);
    Ok(routes
        .add_service(users)
        .add_service(organizations)
        .add_service(schemas)
        .add_service(roles)
        .add_service(tokens))
}

/// `grpc.health.v1.Health`, reporting every directory service as serving.
async fn health_service(routes: Routes, max_message: usize) -> Routes {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<UserServiceServer<UserDirectory>>()
        .await;
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
    routes.add_service(health.max_decoding_message_size(max_message))
}

/// Server reflection, v1 and v1alpha, so that old and new grpcurl both work without proto
/// files. Reflection is public and one stream can carry any number of requests: each is
/// metered against the caller's peer budget.
fn reflection_services(
    routes: Routes,
    rate_limits: &Arc<RateLimits>,
    max_message: usize,
) -> anyhow::Result<Routes> {
    let v1 = MeteredStreams::new(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?
            .max_decoding_message_size(max_message),
        rate_limits.clone(),
        MAX_REFLECTION_REQUESTS_PER_STREAM,
    );
    let v1alpha = MeteredStreams::new(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?
            .max_decoding_message_size(max_message),
        rate_limits.clone(),
        MAX_REFLECTION_REQUESTS_PER_STREAM,
    );
    Ok(routes.add_service(v1).add_service(v1alpha))
}

/// The REST dialects (HTTP/1.1 and h2c on the same port).
fn rest_routes(
    db: &DatabaseConnection,
    settings: &Settings,
    regex_searches: RegexSearches,
) -> axum::Router {
    crate::api::rest::routes(
        db.clone(),
        settings.limits,
        settings.request.query(),
        regex_searches,
    )
}

/// The gate: access tokens from the database, JWTs of the OIDC issuer when one is configured,
/// JSON routes judged by the gRPC method they call (`routes`), and the REST dialects' own
/// access rules.
async fn gate(
    db: DatabaseConnection,
    settings: &Settings,
    rate_limits: Arc<RateLimits>,
    routes: RouteResolver,
) -> anyhow::Result<Gate> {
    let oidc = match &settings.oidc {
        Some(oidc) => Some(OidcVerifier::new(oidc.clone()).await?),
        None => None,
    };
    Ok(Gate::new(
        db,
        oidc,
        rate_limits,
        routes,
        crate::api::rest::access_rules(),
    ))
}

/// `served` behind the layers in front of everything on the port (gRPC, gRPC-Web, HTTP/JSON,
/// the REST dialects), read outermost first.
fn behind_edge_layers(served: axum::Router, gate: Gate, request: RequestLimits) -> axum::Router {
    served.layer(
        ServiceBuilder::new()
            // Outermost, so that every refusal below is answered in the caller's protocol; it
            // reads only the content type and the path, which even a head too large must be
            // answered by.
            .layer(from_fn(crate::api::rescue::rescue))
            // Before anything else reads a header: an HTTP/2 header list over the limit costs no
            // further work.
            .layer(from_fn_with_state(
                request.max_header_bytes,
                crate::limits::head::enforce,
            ))
            // Over everything that takes time, the gate's credential lookups included.
            .layer(from_fn_with_state(
                request.request_timeout,
                crate::limits::deadline::enforce,
            ))
            // Innermost, right in front of the services: every protocol is judged by one policy
            // (JSON calls by the gRPC method they call, before their body is read).
            .layer(from_fn_with_state(gate, enforce)),
    )
}
