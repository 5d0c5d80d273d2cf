//! Wiring: database, services and the listener, on one port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::error_handling::HandleErrorLayer;
use axum::middleware::{from_fn, from_fn_with_state};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::api::connect::Connect;
use crate::api::content_coding;
use crate::api::cors::Cors;
use crate::api::grpc::health::{self, Health};
use crate::api::grpc::{
    AccessTokens, Organizations, Roles, ServiceState, UserDirectory, UserSchemas, compressed,
};
use crate::api::http::Transcoder;
use crate::auth::layer::{Gate, RouteResolver, enforce};
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
use crate::limits::shedding::Shedder;
use crate::limits::shutdown::ShutdownLimits;
use crate::proto;
use crate::proto::user::v1::organization_service_server::OrganizationServiceServer;
use crate::proto::user::v1::role_service_server::RoleServiceServer;
use crate::proto::user::v1::token_service_server::TokenServiceServer;
use crate::proto::user::v1::user_schema_service_server::UserSchemaServiceServer;
use crate::proto::user::v1::user_service_server::UserServiceServer;
use crate::store::probe::Probe;
use crate::store::reads::tokens as reads;
use crate::store::{self, ScopedDb};
use crate::telemetry::metrics::{Metrics, MetricsListener, Sources as MetricsSources, record};
use crate::telemetry::requests::REQUEST_ID;

/// A bound, ready server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    db: DatabaseConnection,
    limits: RequestLimits,
    connections: ConnectionLimits,
    shutdown: ShutdownLimits,
    /// The switch of `grpc.health.v1.Health`, and what it follows.
    health: Health,
    probe: Probe,
    /// `--metrics-listen`, bound.
    metrics: Option<MetricsListener>,
}

impl Application {
    /// Connects to the database (waiting for it up to `settings.database.connect`), migrates
    /// it and binds the listener.
    pub async fn build(
        database_url: &str,
        listen: SocketAddr,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let db = store::connect_with(database_url, settings.database).await?;
        store::migrate(&db).await?;
        Self::with_database(db, listen, settings).await
    }

    pub async fn with_database(
        db: DatabaseConnection,
        listen: SocketAddr,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        settings.limits.validate()?;
        regex_searches_fit_the_pool(&db, &settings.limits)?;
        settings.hashing.validate()?;
        settings.connections.validate()?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let (router, health, metrics) = router(db.clone(), &settings).await?;
        let metrics = match (settings.metrics_listen, metrics) {
            (Some(address), Some(metrics)) => Some(MetricsListener::bind(address, metrics).await?),
            _ => None,
        };
        Ok(Self {
            metrics,
            listener,
            router,
            probe: Probe::beside(&db, health::PROBE_TIMEOUT),
            db,
            limits: settings.limits,
            connections: settings.connections,
            shutdown: settings.shutdown,
            health,
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

    /// The address of the metrics listener, when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|metrics| metrics.local_addr().ok())
    }

    /// Serves HTTP/2 (gRPC, h2c) and HTTP/1.1 until `shutdown` completes, then drains (see
    /// `limits::shutdown`): health NOT_SERVING at once, requests still served for the grace
    /// period, then no new connections and in-flight requests finish (bounded by the shutdown
    /// timeout). Until then health follows the database (`Health::follow`). Requests carry
    /// `ConnectInfo<SocketAddr>`.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // SQLite's write-ahead log is kept small for as long as this server serves.
        let _checkpoints = store::sqlite::checkpoint::start(&self.db);
        let Self {
            listener,
            router,
            limits,
            connections,
            shutdown: drain,
            health,
            probe,
            metrics,
            ..
        } = self;
        // Scrapes are answered for as long as the server serves, the drain included.
        let _metrics = metrics.map(|metrics| AbortOnDrop(tokio::spawn(metrics.serve())));
        // The accept loop polls this future: the probe runs inside it, so it ends with the
        // server and cannot outlive it, and it stops before the drain sets NOT_SERVING.
        let draining = async move {
            tokio::select! {
                () = health.follow(&probe) => {}
                () = shutdown => {}
            }
            health.set(false).await;
            probe.close().await;
            tracing::info!(
                grace = ?drain.grace,
                "draining: health is NOT_SERVING; requests are still served for the grace period"
            );
            tokio::time::sleep(drain.grace).await;
            tracing::info!(
                timeout = ?drain.timeout,
                "refusing new connections; waiting for the requests in flight"
            );
        };
        crate::limits::serve::serve(
            listener,
            router,
            limits,
            connections,
            draining,
            drain.timeout,
        )
        .await
    }
}

/// Regex searches leave two connections of the pool free (`limits::regex_searches`); SQLite's
/// pool is smaller than the bound `RequestLimits::validate` knows.
fn regex_searches_fit_the_pool(
    db: &DatabaseConnection,
    limits: &crate::limits::RequestLimits,
) -> anyhow::Result<()> {
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        let most = store::sqlite::POOL_SIZE as usize - 2;
        anyhow::ensure!(
            limits.max_concurrent_regex_searches <= most,
            "--max-concurrent-regex-searches must be at most {most} on SQLite (two of its pool's \
             {} connections always stay free)",
            store::sqlite::POOL_SIZE
        );
    }
    Ok(())
}

/// Ends the task when the server it belongs to ends.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Everything served on the one port, read in order: the gRPC services (the directory, health,
/// reflection), the HTTP/JSON transcoder, Connect and gRPC-Web in front of them (`api::http`,
/// `api::connect`), the REST
/// dialects beside them (`api::rest`), and the layer stack over all of it ([`behind_edge_layers`]).
/// Also the switch of the health service.
async fn router(
    db: DatabaseConnection,
    settings: &Settings,
) -> anyhow::Result<(axum::Router, Health, Option<Arc<Metrics>>)> {
    let limits = settings.limits;
    // The gate and the reflection streams charge the same per-peer budgets.
    let rate_limits = Arc::new(RateLimits::new(settings.rate_limits));
    let state = ServiceState {
        db: db.clone(),
        pages: settings.pages,
        limits,
        // One cap on regex searches for every surface of this server.
        regex_searches: RegexSearches::new(limits.max_concurrent_regex_searches),
        page_tokens: crate::store::keys::page_token_key(&db).await?,
        writes: Default::default(),
    };

    let grpc = directory_services(Routes::default(), &state, settings)?;
    let (health, grpc) = Health::serve(grpc, limits.max_message_bytes).await;
    let grpc = reflection_services(grpc, &rate_limits, limits.max_message_bytes)?;
    let grpc = grpc.prepare().into_axum_router().layer(from_fn(
        // tonic's own refusals of a message (too large, undecodable) get the client's code.
        crate::limits::grpc_status::client_errors,
    ));

    // The route table is built once: the transcoder serves it and the gate judges by it.
    let transcoder = Transcoder::new(proto::DESCRIPTOR_SET)?;
    let routes = transcoder.resolver();
    let templates = transcoder.templates();
    // Connect serves every unary method of the services above, health's included.
    let connect = Connect::new(
        &[proto::DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET],
        grpc.clone(),
        limits.max_message_bytes,
    )?;
    let grpc_and_json = transcoder.router(
        grpc,
        crate::api::rest::openapi::fragment(),
        &|name| {
            crate::api::grpc::fields::schema(
                name,
                crate::api::grpc::fields::Bounds {
                    max_text: limits.max_text_chars,
                    max_page: settings.pages.max,
                },
            )
        },
        limits.max_message_bytes,
    )?;
    let served = crate::api::port::router(grpc_and_json, connect).merge(rest_routes(&state));
    let shedder = Shedder::default();
    // Counted only when someone reads the counts.
    let metrics = match settings.metrics_listen {
        Some(_) => Some(Metrics::new(
            &[
                proto::DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            ],
            MetricsSources {
                db: db.clone(),
                rate_limits: rate_limits.clone(),
                shedder: shedder.clone(),
                templates,
                writes: state.writes.clone(),
            },
        )?),
        None => None,
    };
    let gate = gate(db, settings, rate_limits, routes).await?;
    let edge = Edge {
        cors: Cors::new(&settings.cors_allowed_origins),
        gate,
        limits,
        shedder,
        metrics: metrics.clone(),
    };
    Ok((behind_edge_layers(served, edge), health, metrics))
}

/// What the layers in front of everything need.
struct Edge {
    /// None when no origin is allowed: CORS off.
    cors: Option<Cors>,
    gate: Gate,
    limits: RequestLimits,
    shedder: Shedder,
    metrics: Option<Arc<Metrics>>,
}

/// The directory's own gRPC services, sharing one state, each with the server's message limit
/// and gzip and zstd both ways ([`compressed!`]).
fn directory_services(
    routes: Routes,
    state: &ServiceState,
    settings: &Settings,
) -> anyhow::Result<Routes> {
    let max_message = state.limits.max_message_bytes;
    let webauthn = Arc::new(crate::command::webauthn::relying_party(
        &settings.webauthn_rp_id,
        &settings.webauthn_origin,
    )?);
    // Every service that hashes or verifies passwords shares this one bound.
    let hashing = Hashing::new(settings.hashing)?;
    let users = compressed!(
        UserServiceServer::new(UserDirectory::new(state.clone(), webauthn, hashing))
            .max_decoding_message_size(max_message)
    );
    let organizations = compressed!(
        OrganizationServiceServer::new(Organizations::new(state.clone()))
            .max_decoding_message_size(max_message)
    );
    let schemas = compressed!(
        UserSchemaServiceServer::new(UserSchemas::new(state.clone()))
            .max_decoding_message_size(max_message)
    );
    let roles = compressed!(
        RoleServiceServer::new(Roles::new(state.clone())).max_decoding_message_size(max_message)
    );
    let tokens = compressed!(
        TokenServiceServer::new(AccessTokens::new(state.clone()))
            .max_decoding_message_size(max_message)
    );
    Ok(routes
        .add_service(users)
        .add_service(organizations)
        .add_service(schemas)
        .add_service(roles)
        .add_service(tokens))
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
        compressed!(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1()?
                .max_decoding_message_size(max_message)
        ),
        rate_limits.clone(),
        MAX_REFLECTION_REQUESTS_PER_STREAM,
    );
    let v1alpha = MeteredStreams::new(
        compressed!(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .build_v1alpha()?
                .max_decoding_message_size(max_message)
        ),
        rate_limits.clone(),
        MAX_REFLECTION_REQUESTS_PER_STREAM,
    );
    Ok(routes.add_service(v1).add_service(v1alpha))
}

/// The REST dialects (HTTP/1.1 and h2c on the same port), on the services' state. Their
/// answers are compressed when asked, and a body in a coding not served is 415, as on the
/// HTTP/JSON routes ([`content_coding`]).
fn rest_routes(state: &ServiceState) -> axum::Router {
    crate::api::rest::routes(
        state.db.clone(),
        state.pages,
        state.limits.query(),
        state.regex_searches.clone(),
    )
    .layer(tower::layer::layer_fn(content_coding::serve))
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
fn behind_edge_layers(served: axum::Router, edge: Edge) -> axum::Router {
    let Edge {
        cors,
        gate,
        limits,
        shedder,
        metrics,
    } = edge;
    served.layer(
        ServiceBuilder::new()
            // A caller's request id is kept only when it is short and printable; without one a
            // uuid v4 is made. It goes back in the response (gRPC: header metadata), so a
            // client, a mesh and our logs name the request alike.
            .map_request(crate::telemetry::requests::drop_unusable_request_id)
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            // The request's span (request id, W3C trace id, method, gRPC names) over every
            // layer below, so each of their log lines carries it; one line when it finishes.
            .layer(crate::telemetry::requests::layer())
            // Metrics see every answer as the client does, refusals drawn by the rescue included.
            .option_layer(metrics.map(|metrics| from_fn_with_state(metrics, record)))
            // CORS for the allowed origins: outside the rescue layer, so that refusals carry
            // the CORS headers too (a browser's script could not read them otherwise), and
            // preflights are answered here, before the gate's credentials and rate limits.
            .option_layer(cors.map(|cors| from_fn_with_state(cors, crate::api::cors::enforce)))
            // Outermost, so that every refusal below is answered in the caller's protocol; it
            // reads only the content type and the path, which even a head too large must be
            // answered by.
            .layer(from_fn(crate::api::rescue::rescue))
            // Load shedding, before any work is spent on the request (the gate's credential
            // lookups included): past the limit a request is Unavailable at once.
            .layer(HandleErrorLayer::new(move |error| shedder.refuse(error)))
            .load_shed()
            .layer(crate::limits::shedding::concurrency_limit(
                limits.max_concurrent_requests,
            ))
            // Before anything else reads a header: an HTTP/2 header list over the limit costs no
            // further work.
            .layer(from_fn_with_state(
                limits.max_header_bytes,
                crate::limits::head::enforce,
            ))
            // Over everything that takes time, the gate's credential lookups included.
            .layer(from_fn_with_state(
                limits.request_timeout,
                crate::limits::deadline::enforce,
            ))
            // Innermost, right in front of the services: every protocol is judged by one policy
            // (JSON calls by the gRPC method they call, before their body is read).
            .layer(from_fn_with_state(gate, enforce)),
    )
}
