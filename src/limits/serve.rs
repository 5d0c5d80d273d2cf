//! The accept loop: HTTP/1.1 and HTTP/2 (h2c, so gRPC) on one listener, like `axum::serve`, but
//! with the request head bounded (`axum::serve` has no knob for it) and graceful shutdown.
//!
//! Every request carries axum's `ConnectInfo<SocketAddr>` extension with the peer's address,
//! exactly as `axum::serve` with `into_make_service_with_connect_info` would give it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use super::{MIN_HEADER_BYTES, RequestLimits};

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and waits for
/// the open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: RequestLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let builder = connection_builder(&limits);
    let mut make_service: IntoMakeServiceWithConnectInfo<Router, SocketAddr> =
        router.into_make_service_with_connect_info::<SocketAddr>();
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
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
        // Adds `ConnectInfo(peer)` to every request of this connection.
        let service = match ServiceExt::<SocketAddr>::ready(&mut make_service).await {
            Ok(ready) => ready.call(peer).await,
            Err(never) => match never {},
        };
        let service = match service {
            Ok(service) => TowerToHyperService::new(service),
            Err(never) => match never {},
        };
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%peer, error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// HTTP/1: the read buffer (which must hold the whole request head) is the header limit, and a
/// head must arrive within the request timeout. HTTP/2: h2's header list limit is the hard
/// ceiling (it answers a larger list with a bare 431); `head::enforce` answers lists between
/// our limit and that ceiling in the request's protocol.
fn connection_builder(limits: &RequestLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout);
    builder
        .http2()
        .max_header_list_size(super::head::h2_ceiling(limits.max_header_bytes))
        .timer(TokioTimer::new());
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
            async move {
                let _ = stopped.await;
            },
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
}
