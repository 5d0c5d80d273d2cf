//! Prometheus metrics, served on a listener of their own (`--metrics-listen`) so that the API
//! port never answers a scraper and the metrics are never public by accident.
//!
//! gRPC calls carry go-grpc-prometheus's names and labels, which existing dashboards expect:
//! `grpc_server_started_total`, `grpc_server_handled_total` (with `grpc_code`) and the
//! `grpc_server_handling_seconds` histogram, labelled `grpc_service`, `grpc_method` and
//! `grpc_type`. Everything else on the port (HTTP/JSON, the REST dialects, gRPC-Web) counts as
//! HTTP, by route template, never by raw path, so the label values stay a bounded set. Gauges of
//! the database pool and the event log, and the refusal counts of the rate limits and the load
//! shedder, are read at scrape time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use http_body::Frame;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use prost_reflect::DescriptorPool;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::auth::layer::RouteResolver;
use crate::auth::rate_limit::RateLimits;
use crate::limits::shedding::Shedder;
use crate::store::writes::Writes;

/// The label values of one gRPC method.
#[derive(Clone, Debug)]
struct GrpcLabels {
    service: String,
    method: String,
    kind: &'static str,
}

/// What a request is counted as.
enum Call {
    Grpc(GrpcLabels),
    Http { method: &'static str, route: String },
}

/// Where the scrape-time values come from.
pub struct Sources {
    pub db: DatabaseConnection,
    pub rate_limits: Arc<RateLimits>,
    pub shedder: Shedder,
    /// The route template of an HTTP/JSON request (`Transcoder::templates`).
    pub templates: RouteResolver,
    /// The server's group commit: how many writes each COMMIT carries.
    pub writes: Writes,
}

/// The server's metrics and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    /// Every gRPC method the port serves, by path: unknown paths share one label value.
    methods: HashMap<String, GrpcLabels>,
    sources: Sources,
    grpc_started: IntCounterVec,
    grpc_handled: IntCounterVec,
    grpc_seconds: HistogramVec,
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
    pool_connections: IntGaugeVec,
    newest_event: IntGauge,
    rate_limited: IntCounterVec,
    shed: IntCounter,
    group_commits: IntCounter,
    group_units: IntCounter,
    create_batches: IntCounter,
    batched_creates: IntCounter,
}

const GRPC_LABELS: [&str; 3] = ["grpc_service", "grpc_method", "grpc_type"];

impl Metrics {
    /// Metrics of the services in `descriptor_sets` (encoded `FileDescriptorSet`s).
    pub fn new(descriptor_sets: &[&[u8]], sources: Sources) -> anyhow::Result<Arc<Self>> {
        let registry = Registry::new();
        let grpc_started = IntCounterVec::new(
            Opts::new(
                "grpc_server_started_total",
                "Total number of RPCs started on the server.",
            ),
            &GRPC_LABELS,
        )?;
        let grpc_handled = IntCounterVec::new(
            Opts::new(
                "grpc_server_handled_total",
                "Total number of RPCs completed on the server, regardless of success or failure.",
            ),
            &["grpc_service", "grpc_method", "grpc_type", "grpc_code"],
        )?;
        let grpc_seconds = HistogramVec::new(
            HistogramOpts::new(
                "grpc_server_handling_seconds",
                "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
            ),
            &GRPC_LABELS,
        )?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_server_requests_total",
                "HTTP requests answered (HTTP/JSON, REST, gRPC-Web), by route template and status.",
            ),
            &["method", "route", "status"],
        )?;
        let http_seconds = HistogramVec::new(
            HistogramOpts::new(
                "http_server_request_duration_seconds",
                "Time until the response head of HTTP requests, by route template.",
            ),
            &["method", "route"],
        )?;
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "userdir_db_pool_connections",
                "Connections of the database pool, in use or idle.",
            ),
            &["state"],
        )?;
        let newest_event = IntGauge::new(
            "userdir_event_log_newest_sequence",
            "Sequence of the newest event in the event log (0 without events).",
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "userdir_rate_limit_refusals_total",
                "Requests refused by a rate limit, by the limit (peer or token).",
            ),
            &["limit"],
        )?;
        let shed = IntCounter::new(
            "userdir_load_shed_refusals_total",
            "Requests refused at once because the server was at --max-concurrent-requests.",
        )?;
        // Writes acknowledged per COMMIT is the ratio of the two: near 1, every write pays a
        // COMMIT (and a flush to disk) of its own.
        let group_commits = IntCounter::new(
            "userdir_write_group_commits_total",
            "COMMITs of group transactions that succeeded.",
        )?;
        let group_units = IntCounter::new(
            "userdir_write_group_units_total",
            "Writes acknowledged by those COMMITs.",
        )?;
        // Users per batch is the ratio of the two: how many CreateUsers share their statements.
        let create_batches = IntCounter::new(
            "userdir_create_batches_total",
            "Batches of CreateUsers written together and committed.",
        )?;
        let batched_creates = IntCounter::new(
            "userdir_create_batched_users_total",
            "Users written by those batches.",
        )?;
        registry.register(Box::new(grpc_started.clone()))?;
        registry.register(Box::new(grpc_handled.clone()))?;
        registry.register(Box::new(grpc_seconds.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_seconds.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(newest_event.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(shed.clone()))?;
        registry.register(Box::new(group_commits.clone()))?;
        registry.register(Box::new(group_units.clone()))?;
        registry.register(Box::new(create_batches.clone()))?;
        registry.register(Box::new(batched_creates.clone()))?;
        Ok(Arc::new(Self {
            registry,
            methods: grpc_methods(descriptor_sets)?,
            sources,
            grpc_started,
            grpc_handled,
            grpc_seconds,
            http_requests,
            http_seconds,
            pool_connections,
            newest_event,
            rate_limited,
            shed,
            group_commits,
            group_units,
            create_batches,
            batched_creates,
        }))
    }

    fn call(&self, request: &Request) -> Call {
        let path = request.uri().path();
        if is_grpc(request.headers()) {
            return Call::Grpc(self.methods.get(path).cloned().unwrap_or(GrpcLabels {
                service: "unknown".into(),
                method: "unknown".into(),
                kind: "unary",
            }));
        }
        let route = match request.extensions().get::<MatchedPath>() {
            Some(matched) => matched.as_str().to_owned(),
            None => (self.sources.templates)(request.method(), path)
                .or_else(|| {
                    // gRPC-Web and the like on a method's path; /openapi.json.
                    (self.methods.contains_key(path) || path == "/openapi.json")
                        .then(|| path.to_owned())
                })
                .unwrap_or_else(|| "unmatched".into()),
        };
        Call::Http {
            method: method_label(request.method()),
            route,
        }
    }

    fn finish_grpc(&self, labels: &GrpcLabels, code: &str, started: Instant) {
        let names = [labels.service.as_str(), &labels.method, labels.kind];
        self.grpc_handled
            .with_label_values(&[names[0], names[1], names[2], code])
            .inc();
        self.grpc_seconds
            .with_label_values(&names)
            .observe(started.elapsed().as_secs_f64());
    }

    /// The text exposition of every metric, the scrape-time ones read now.
    pub async fn render(&self) -> String {
        let (in_use, idle) = crate::store::pool::usage(&self.sources.db);
        self.pool_connections
            .with_label_values(&["in_use"])
            .set(in_use as i64);
        self.pool_connections
            .with_label_values(&["idle"])
            .set(idle as i64);
        match crate::store::writes::events::latest(&self.sources.db).await {
            Ok(newest) => self
                .newest_event
                .set(newest.map_or(0, |(sequence, _)| sequence)),
            // The gauge keeps its last value; the pool gauges and the health say why.
            Err(error) => tracing::warn!(%error, "metrics: reading the newest event failed"),
        }
        let refused = self.sources.rate_limits.refusals();
        catch_up(
            &self.rate_limited.with_label_values(&["peer"]),
            refused.peer,
        );
        catch_up(
            &self.rate_limited.with_label_values(&["token"]),
            refused.token,
        );
        catch_up(&self.shed, self.sources.shedder.refused());
        let (commits, units) = self.sources.writes.group.stats();
        catch_up(&self.group_commits, commits);
        catch_up(&self.group_units, units);
        let (batches, users) = self.sources.writes.creates.stats();
        catch_up(&self.create_batches, batches);
        catch_up(&self.batched_creates, users);
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|error| {
                tracing::error!(%error, "metrics: encoding failed");
                String::new()
            })
    }
}

/// Moves a counter up to a count kept elsewhere (both only grow).
fn catch_up(counter: &IntCounter, count: u64) {
    let seen = counter.get();
    if count > seen {
        counter.inc_by(count - seen);
    }
}

/// Native gRPC (`application/grpc`, `application/grpc+proto`); gRPC-Web counts as HTTP, its
/// status travels inside the body.
fn is_grpc(headers: &HeaderMap) -> bool {
    crate::refusal::grpc_content_type(headers)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| !value.starts_with("application/grpc-web"))
}

/// The standard methods by name; any other (an extension method is any token) as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Every method of every service in the descriptor sets, by its gRPC path.
fn grpc_methods(descriptor_sets: &[&[u8]]) -> anyhow::Result<HashMap<String, GrpcLabels>> {
    let mut methods = HashMap::new();
    for set in descriptor_sets {
        let pool = DescriptorPool::decode(*set)?;
        for service in pool.services() {
            for method in service.methods() {
                let kind = match (method.is_client_streaming(), method.is_server_streaming()) {
                    (false, false) => "unary",
                    (true, false) => "client_stream",
                    (false, true) => "server_stream",
                    (true, true) => "bidi_stream",
                };
                methods.insert(
                    format!("/{}/{}", service.full_name(), method.name()),
                    GrpcLabels {
                        service: service.full_name().to_owned(),
                        method: method.name().to_owned(),
                        kind,
                    },
                );
            }
        }
    }
    Ok(methods)
}

/// gRPC's code names as go-grpc-prometheus writes them (Go's `codes.Code` strings).
fn code_name(code: &[u8]) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    std::str::from_utf8(code)
        .ok()
        .and_then(|code| code.trim().parse::<usize>().ok())
        .and_then(|code| NAMES.get(code).copied())
        .unwrap_or("Unknown")
}

fn grpc_code(headers: &HeaderMap) -> Option<&'static str> {
    headers
        .get("grpc-status")
        .map(|value| code_name(value.as_bytes()))
}

/// The layer: counts every request on the port, gRPC by method and code, the rest by route.
pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    match metrics.call(&request) {
        Call::Http { method, route } => {
            let response = next.run(request).await;
            let status = response.status().as_u16().to_string();
            metrics
                .http_requests
                .with_label_values(&[method, &route, &status])
                .inc();
            metrics
                .http_seconds
                .with_label_values(&[method, &route])
                .observe(started.elapsed().as_secs_f64());
            response
        }
        Call::Grpc(labels) => {
            metrics
                .grpc_started
                .with_label_values(&[labels.service.as_str(), &labels.method, labels.kind])
                .inc();
            let response = next.run(request).await;
            // Trailers-only (most errors): the status is in the head. Otherwise (every
            // success) it comes in the trailers, at the end of the body.
            if let Some(code) = grpc_code(response.headers()) {
                metrics.finish_grpc(&labels, code, started);
                return response;
            }
            let status = response.status();
            let end = GrpcEnd {
                metrics,
                labels,
                started,
            };
            if status != StatusCode::OK {
                // Not a gRPC answer at all (a proxy-level failure): gRPC reads it as Unknown.
                end.finish("Unknown");
                return response;
            }
            response.map(|body| {
                Body::new(Observed {
                    inner: body,
                    end: Some(end),
                })
            })
        }
    }
}

/// What is recorded when a gRPC response's body ends.
struct GrpcEnd {
    metrics: Arc<Metrics>,
    labels: GrpcLabels,
    started: Instant,
}

impl GrpcEnd {
    fn finish(self, code: &str) {
        self.metrics.finish_grpc(&self.labels, code, self.started);
    }
}

/// A gRPC response body that records the call's code from its trailers.
struct Observed {
    inner: Body,
    end: Option<GrpcEnd>,
}

impl http_body::Body for Observed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|trailers| grpc_code(trailers).unwrap_or("Unknown")),
            // A stream that breaks off is Internal to the client, as is one without a status.
            Poll::Ready(Some(Err(_))) => Some("Internal"),
            Poll::Ready(None) => Some("Unknown"),
            Poll::Pending => None,
        };
        if let Some(code) = code
            && let Some(end) = self.end.take()
        {
            end.finish(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    /// Dropped before its end: the client went away (or the deadline or the drain ended it).
    fn drop(&mut self) {
        if let Some(end) = self.end.take() {
            end.finish("Canceled");
        }
    }
}

/// The metrics listener, bound (so that a taken address fails the start) and not yet serving.
pub struct MetricsListener {
    listener: TcpListener,
    metrics: Arc<Metrics>,
}

impl MetricsListener {
    pub async fn bind(address: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("--metrics-listen {address}"))?;
        Ok(Self { listener, metrics })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `GET /metrics` until the task is dropped or aborted.
    pub async fn serve(self) -> std::io::Result<()> {
        let router = axum::Router::new()
            .route("/metrics", axum::routing::get(scrape))
            .with_state(self.metrics);
        axum::serve(self.listener, router).await
    }
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render().await,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_go_names_them() {
        assert_eq!(code_name(b"0"), "OK");
        assert_eq!(code_name(b"1"), "Canceled");
        assert_eq!(code_name(b"5"), "NotFound");
        assert_eq!(code_name(b"16"), "Unauthenticated");
        assert_eq!(code_name(b"17"), "Unknown");
        assert_eq!(code_name(b"x"), "Unknown");
    }

    #[test]
    fn every_served_method_has_its_type() {
        let methods = grpc_methods(&[
            crate::proto::DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ])
        .unwrap();
        let get = &methods["/userdir.user.v1.UserService/GetUser"];
        assert_eq!(
            (get.service.as_str(), get.method.as_str(), get.kind),
            ("userdir.user.v1.UserService", "GetUser", "unary")
        );
        assert_eq!(
            methods["/grpc.health.v1.Health/Watch"].kind,
            "server_stream"
        );
    }

    #[test]
    fn extension_methods_share_one_label() {
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::GET), "GET");
    }
}
