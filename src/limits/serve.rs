//! The accept loop: HTTP/1.1 and HTTP/2 (h2c, so gRPC) on one listener, like `axum::serve`, but
//! with request heads, silence and idleness bounded (`axum::serve` has no knob for any of them),
//! connections counted (see `admission`), HTTP/2 keep-alive pings and graceful shutdown with a
//! bound (see `shutdown`).
//!
//! Every request carries axum's `ConnectInfo<SocketAddr>` extension with the peer's address,
//! exactly as `axum::serve` with `into_make_service_with_connect_info` would give it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::{Service, ServiceExt};

use super::activity::{self, Expiry};
use super::admission::Admission;
use super::connections::ConnectionLimits;
use super::{MIN_HEADER_BYTES, RequestLimits};

/// What the server tells its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish the requests in flight, take no more (HTTP/2 GOAWAY), then close.
    Draining,
    /// The drain took too long: close now.
    Closing,
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting (new
/// connections are refused) and waits up to `shutdown_timeout` for the open connections to
/// finish their requests; those still open then are dropped.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: RequestLimits,
    connections: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    shutdown_timeout: Duration,
) -> std::io::Result<()> {
    let builder = connection_builder(&limits, &connections);
    let mut make_service: IntoMakeServiceWithConnectInfo<Router, SocketAddr> =
        router.into_make_service_with_connect_info::<SocketAddr>();
    let mut admission = Admission::new(
        connections.max_connections,
        connections.max_connections_per_peer,
    );
    // Every connection holds a receiver: `stop.closed()` completes when the last has ended.
    let (stop, stopping) = watch::channel(Phase::Serving);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Over a cap the connection is dropped, which closes it, before it costs anything more.
        let Ok(permit) = admission.admit(peer.ip()) else {
            continue;
        };
        configure(&stream);
        // Adds `ConnectInfo(peer)` to every request of this connection.
        let service = match ServiceExt::<SocketAddr>::ready(&mut make_service).await {
            Ok(ready) => ready.call(peer).await,
            Err(never) => match never {},
        };
        let service = match service {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let (service, activity) = activity::track(service);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut connection = pin!(connection);
            let mut expiry = pin!(activity.expiry(connections));
            // A connection closed for silence or idleness gets a last grace period (to take its
            // GOAWAY, or what the server already sent) before it is dropped: a peer that never
            // opens its HTTP/2 window would otherwise hold it forever.
            let mut grace = pin!(tokio::time::sleep(connections.idle_timeout));
            let max_age = connections.connection_age();
            let mut aged = pin!(tokio::time::sleep(max_age.unwrap_or(Duration::MAX)));
            let mut closing = false;
            let mut expired = false;
            loop {
                tokio::select! {
                    ended = connection.as_mut() => {
                        if let Err(error) = ended {
                            tracing::trace!(%peer, error, "connection ended with an error");
                        }
                        break;
                    }
                    changed = stopping.changed() => {
                        if changed.is_err() || *stopping.borrow() == Phase::Closing {
                            break;
                        }
                        if !closing {
                            closing = true;
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                    why = &mut expiry, if !closing => {
                        let period = match why {
                            Expiry::NoRequest => {
                                tracing::debug!(%peer, "closing a connection that sent no request head within --header-timeout");
                                connections.header_timeout
                            }
                            Expiry::Idle => connections.idle_timeout,
                        };
                        (closing, expired) = (true, true);
                        grace.as_mut().reset(tokio::time::Instant::now() + period);
                        // HTTP/2 says GOAWAY; HTTP/1 and a connection whose protocol is still
                        // unknown close.
                        connection.as_mut().graceful_shutdown();
                    }
                    // Past its maximum age: GOAWAY now, and its requests in flight get the
                    // age grace period to finish.
                    () = aged.as_mut(), if max_age.is_some() && !closing => {
                        tracing::debug!(%peer, "closing a connection past --max-connection-age");
                        (closing, expired) = (true, true);
                        grace.as_mut().reset(
                            tokio::time::Instant::now() + connections.max_connection_age_grace,
                        );
                        connection.as_mut().graceful_shutdown();
                    }
                    () = grace.as_mut(), if expired => break,
                }
            }
        });
    }
    drop(listener);
    drop(stopping);
    stop.send_replace(Phase::Draining);
    if tokio::time::timeout(shutdown_timeout, stop.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = stop.receiver_count(),
            timeout = ?shutdown_timeout,
            "connections still open after the shutdown timeout are dropped"
        );
        stop.send_replace(Phase::Closing);
        stop.closed().await;
    }
    Ok(())
}

/// Small gRPC messages and answers go out at once instead of waiting for Nagle's algorithm
/// (tonic's own server does the same).
fn configure(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::trace!(%error, "could not set TCP_NODELAY");
    }
}

/// HTTP/1: the read buffer (which must hold the whole request head) is the header limit, and
/// each head must arrive within the header timeout (the first head of any connection is timed
/// by `activity`, because hyper's timer starts only once the auto builder has told HTTP/1 from
/// HTTP/2). HTTP/2: h2's header list limit is the hard ceiling (it answers a larger list with a
/// bare 431); `head::enforce` answers lists between our limit and that ceiling in the request's
/// protocol; keep-alive pings find peers that vanished; streams per connection are bounded.
fn connection_builder(
    limits: &RequestLimits,
    connections: &ConnectionLimits,
) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .timer(TokioTimer::new())
        .header_read_timeout(connections.header_timeout);
    builder
        .http2()
        .max_header_list_size(super::head::h2_ceiling(limits.max_header_bytes))
        .max_concurrent_streams(connections.http2_max_concurrent_streams)
        .timer(TokioTimer::new())
        .keep_alive_interval(connections.http2_keepalive_interval)
        .keep_alive_timeout(connections.http2_keepalive_timeout);
    builder
}

/// As `axum::serve`: a failed handshake is the peer's business; anything else (e.g. out of file
/// descriptors) is logged and retried after a second.
async fn accept_error(error: std::io::Error) {
    use std::io::ErrorKind as K;
    if matches!(
        error.kind(),
        K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept error");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ConnectInfo;
    use axum::routing::get;

    /// Every request, over HTTP/1.1 and HTTP/2, carries the peer's address; shutdown stops the
    /// loop.
    #[tokio::test]
    async fn requests_carry_connect_info_and_shutdown_ends_the_loop() {
        let router = Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            router,
            RequestLimits::default(),
            ConnectionLimits::default(),
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        for client in [
            reqwest::Client::new(),
            reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .unwrap(),
        ] {
            let response = client
                .get(format!("http://{address}/peer"))
                .send()
                .await
                .unwrap();
            let peer: SocketAddr = response.text().await.unwrap().parse().unwrap();
            assert_eq!(peer.ip(), address.ip());
            assert_ne!(peer.port(), address.port());
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(
            tokio::net::TcpStream::connect(address).await.is_err(),
            "the listener is closed"
        );
    }

    /// Over `max_connections` a new connection is closed at once, whoever sends it; a closed
    /// connection frees its place.
    #[tokio::test]
    async fn connections_over_the_total_cap_are_closed_at_once() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        async fn answered(stream: &mut TcpStream) -> bool {
            let request = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";
            if stream.write_all(request).await.is_err() {
                return false;
            }
            let mut head = [0u8; 12];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head))
                .await
                .expect("an answer or a closed connection");
            read.is_ok() && &head == b"HTTP/1.1 200"
        }

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections = ConnectionLimits {
            max_connections: 2,
            ..Default::default()
        };
        tokio::spawn(serve(
            listener,
            Router::new().route("/", get(|| async { "hello" })),
            RequestLimits::default(),
            connections,
            std::future::pending(),
            Duration::from_secs(5),
        ));
        let mut first = TcpStream::connect(address).await.unwrap();
        assert!(answered(&mut first).await);
        let mut second = TcpStream::connect(address).await.unwrap();
        assert!(answered(&mut second).await);
        let mut third = TcpStream::connect(address).await.unwrap();
        assert!(
            !answered(&mut third).await,
            "the third connection is closed"
        );

        drop(first);
        let mut admitted = false;
        for _ in 0..100 {
            let mut stream = TcpStream::connect(address).await.unwrap();
            if answered(&mut stream).await {
                admitted = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(admitted, "a closed connection frees its place");
    }

    /// A server whose `/slow` answers after `delay` and `/never` never does, stopped when the
    /// returned sender fires, with `timeout` for the drain.
    async fn draining_server(
        delay: Duration,
        timeout: Duration,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let router = Router::new()
            .route(
                "/slow",
                get(move || async move {
                    tokio::time::sleep(delay).await;
                    "finished"
                }),
            )
            .route("/never", get(std::future::pending::<&'static str>));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            router,
            RequestLimits::default(),
            ConnectionLimits::default(),
            async move {
                let _ = stopped.await;
            },
            timeout,
        ));
        (address, stop, server)
    }

    /// A request in flight when the drain begins is answered; the listener is closed at once,
    /// and the loop ends when the last connection has.
    #[tokio::test]
    async fn the_drain_lets_requests_in_flight_finish() {
        let (address, stop, server) =
            draining_server(Duration::from_millis(500), Duration::from_secs(30)).await;
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap();
        let http1 = tokio::spawn(reqwest::get(format!("http://{address}/slow")));
        let http2 = tokio::spawn(client.get(format!("http://{address}/slow")).send());
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            TcpStream::connect(address).await.is_err(),
            "no new connection during the drain"
        );
        for answer in [http1, http2] {
            let answer = answer.await.unwrap().expect("answered during the drain");
            assert_eq!(answer.text().await.unwrap(), "finished");
        }
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the loop ends with its last connection")
            .unwrap()
            .unwrap();
    }

    /// A request that outlasts the shutdown timeout is dropped with its connection, and the
    /// loop ends after the timeout, not with the request.
    #[tokio::test]
    async fn the_drain_ends_at_the_shutdown_timeout() {
        let (address, stop, server) =
            draining_server(Duration::ZERO, Duration::from_millis(300)).await;
        let never = tokio::spawn(reqwest::get(format!("http://{address}/never")));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the loop ends at the shutdown timeout")
            .unwrap()
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        let dropped = tokio::time::timeout(Duration::from_secs(5), never)
            .await
            .expect("the client sees its connection closed")
            .unwrap();
        assert!(dropped.is_err(), "never answered: {dropped:?}");
    }

    /// Accepted sockets send small answers at once (TCP_NODELAY).
    #[tokio::test]
    async fn accepted_sockets_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(!accepted.nodelay().unwrap());
        configure(&accepted);
        assert!(accepted.nodelay().unwrap());
    }
}
