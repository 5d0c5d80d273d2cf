//! Connection limits through real sockets: a connection that sends nothing, or only the HTTP/2
//! preface, is closed after the header timeout; an idle HTTP/2 connection gets a GOAWAY after
//! the idle timeout; a peer that answers no keep-alive ping is disconnected; one peer address
//! cannot hold more than its share of connections, and other peers are still served; a
//! connection past its maximum age gets a GOAWAY; the stream bound is announced. The
//! connection layer touches no storage, so these run on SQLite only.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Backend, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use userdir::config::Settings;
use userdir::limits::connections::ConnectionLimits;

/// Far longer than any timeout the tests set: a connection still open then was kept.
const PATIENCE: Duration = Duration::from_secs(5);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

async fn with_connections(app: &TestApp, connections: ConnectionLimits) -> TestApp {
    app.with_settings(Settings {
        connections,
        ..Settings::default()
    })
    .await
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    common::run(Backend::Sqlite, |app| async move {
        let server = with_connections(
            &app,
            ConnectionLimits {
                header_timeout: ms(300),
                ..Default::default()
            },
        )
        .await;
        // Nothing at all, and half an HTTP/2 preface: either way the server is still telling
        // HTTP/1 from HTTP/2, where hyper's own header timer has not started.
        for sent in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
            let mut stream = TcpStream::connect(server.address).await.unwrap();
            stream.write_all(sent).await.unwrap();
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
                .await
                .expect("the server closes a connection that sends no request");
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn an_h2c_connection_without_a_request_is_closed_after_the_header_timeout() {
    common::run(Backend::Sqlite, |app| async move {
        let server = with_connections(
            &app,
            ConnectionLimits {
                header_timeout: ms(300),
                ..Default::default()
            },
        )
        .await;
        let mut h2 = H2::open(server.address).await;
        let frames = tokio::time::timeout(PATIENCE, h2.until_closed(true))
            .await
            .expect("the server closes an HTTP/2 connection that opens no stream");
        assert!(frames.contains(&GOAWAY), "closed with a GOAWAY: {frames:?}");
    })
    .await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    common::run(Backend::Sqlite, |app| async move {
        let server = with_connections(
            &app,
            ConnectionLimits {
                idle_timeout: ms(300),
                ..Default::default()
            },
        )
        .await;
        let mut h2 = H2::open(server.address).await;
        h2.request(1, b"/").await;
        let frames = tokio::time::timeout(PATIENCE, h2.until_closed(true))
            .await
            .expect("the server closes an idle HTTP/2 connection");
        assert!(
            frames.contains(&HEADERS),
            "the request was answered: {frames:?}"
        );
        assert!(frames.contains(&GOAWAY), "closed with a GOAWAY: {frames:?}");
    })
    .await;
}

/// The answer (the OpenAPI document) is larger than the initial flow-control window, which this
/// client never opens: after the GOAWAY, the rest of the answer waits one more idle timeout.
#[tokio::test]
async fn a_peer_that_never_reads_its_answer_is_dropped_after_the_idle_timeout() {
    common::run(Backend::Sqlite, |app| async move {
        let server = with_connections(
            &app,
            ConnectionLimits {
                idle_timeout: ms(300),
                ..Default::default()
            },
        )
        .await;
        let mut h2 = H2::open(server.address).await;
        h2.request(1, b"/openapi.json").await;
        let frames = tokio::time::timeout(PATIENCE, h2.until_closed(true))
            .await
            .expect("the server drops a connection whose answer is never read");
        assert!(frames.contains(&GOAWAY), "{frames:?}");
    })
    .await;
}

#[tokio::test]
async fn a_peer_that_answers_no_ping_is_disconnected() {
    common::run(Backend::Sqlite, |app| async move {
        let server = with_connections(
            &app,
            ConnectionLimits {
                http2_keepalive_interval: Some(ms(200)),
                http2_keepalive_timeout: ms(200),
                ..Default::default()
            },
        )
        .await;
        let mut h2 = H2::open(server.address).await;
        h2.request(1, b"/").await;
        let frames = tokio::time::timeout(PATIENCE, h2.until_closed(false))
            .await
            .expect("the server drops a peer that answers no ping");
        assert!(frames.contains(&PING), "{frames:?}");
    })
    .await;
}

#[tokio::test]
async fn one_peer_cannot_take_every_connection() {
    common::run(Backend::Sqlite, |app| async move {
        let server = with_connections(
            &app,
            ConnectionLimits {
                max_connections_per_peer: 2,
                ..Default::default()
            },
        )
        .await;
        let greedy = "127.0.0.2".parse().unwrap();
        let mut first = connect_from(greedy, server.address).await;
        assert!(answered(&mut first).await);
        let mut second = connect_from(greedy, server.address).await;
        assert!(answered(&mut second).await);

        let mut third = connect_from(greedy, server.address).await;
        assert_closed(&mut third).await;

        let mut other = connect_from("127.0.0.3".parse().unwrap(), server.address).await;
        assert!(answered(&mut other).await, "another peer is served");

        // A closed connection frees its place.
        drop(first);
        let mut again = None;
        for _ in 0..100 {
            let mut stream = connect_from(greedy, server.address).await;
            if answered(&mut stream).await {
                again = Some(stream);
                break;
            }
            tokio::time::sleep(ms(20)).await;
        }
        assert!(again.is_some(), "the peer may connect again");
    })
    .await;
}

/// A TCP connection from `local` (any 127/8 address is loopback on Linux).
/// Past its maximum age a connection is told to go away even though it is busy and far from
/// idle, and the request it had sent was answered.
#[tokio::test]
async fn a_connection_past_its_maximum_age_gets_a_goaway() {
    common::run(Backend::Sqlite, |app| async move {
        let server = with_connections(
            &app,
            ConnectionLimits {
                max_connection_age: Some(ms(300)),
                max_connection_age_grace: ms(300),
                ..Default::default()
            },
        )
        .await;
        let mut h2 = H2::open(server.address).await;
        h2.request(1, b"/").await;
        let frames = tokio::time::timeout(PATIENCE, h2.until_closed(true))
            .await
            .expect("the server closes a connection past its maximum age");
        assert!(frames.contains(&HEADERS), "answered: {frames:?}");
        assert!(frames.contains(&GOAWAY), "closed with a GOAWAY: {frames:?}");

        // Without a maximum age, the same connection stays open (the idle timeout is minutes).
        let mut h2 = H2::open(app.address).await;
        h2.request(1, b"/").await;
        let kept = tokio::time::timeout(ms(1500), h2.until_closed(true)).await;
        assert!(kept.is_err(), "closed without a maximum age: {kept:?}");
    })
    .await;
}

/// The server announces its bound on concurrent streams in its first SETTINGS frame.
#[tokio::test]
async fn the_stream_bound_is_announced_in_settings() {
    common::run(Backend::Sqlite, |app| async move {
        let server = with_connections(
            &app,
            ConnectionLimits {
                http2_max_concurrent_streams: 7,
                ..Default::default()
            },
        )
        .await;
        let mut h2 = H2::open(server.address).await;
        let settings = tokio::time::timeout(PATIENCE, h2.first_settings())
            .await
            .expect("the server sends its SETTINGS");
        assert_eq!(settings.get(&SETTINGS_MAX_CONCURRENT_STREAMS), Some(&7));
        let mut h2 = H2::open(app.address).await;
        let defaults = h2.first_settings().await;
        assert_eq!(
            defaults.get(&SETTINGS_MAX_CONCURRENT_STREAMS),
            Some(&userdir::limits::connections::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS)
        );
    })
    .await;
}

async fn connect_from(local: std::net::IpAddr, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(local, 0)).unwrap();
    socket.connect(server).await.unwrap()
}

/// Sends an HTTP/1.1 request on a keep-alive connection: true when an answer comes back.
async fn answered(stream: &mut TcpStream) -> bool {
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: test\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut head = [0u8; 9];
    let read = tokio::time::timeout(PATIENCE, stream.read_exact(&mut head))
        .await
        .expect("an answer or a closed connection");
    read.is_ok() && &head == b"HTTP/1.1 "
}

async fn assert_closed(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
        .await
        .expect("the connection over the cap is closed at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const ACK: u8 = 1;
const END_STREAM_AND_HEADERS: u8 = 0x5;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// Just enough of an HTTP/2 client to misbehave: frames written and read by hand.
struct H2 {
    stream: TcpStream,
}

impl H2 {
    /// Connects and sends the preface and an empty SETTINGS frame.
    async fn open(server: SocketAddr) -> Self {
        let stream = TcpStream::connect(server).await.unwrap();
        let mut h2 = Self { stream };
        h2.stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        h2.send(SETTINGS, 0, 0, &[]).await;
        h2
    }

    /// `GET path` on `stream_id`: HPACK `:method GET` and `:scheme http` from the static
    /// table, `:path` a literal with an indexed name. This client never opens its flow-control
    /// window: an answer larger than 64 KiB stays partly unsent.
    async fn request(&mut self, stream_id: u32, path: &[u8]) {
        let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
        block.extend_from_slice(path);
        self.send(HEADERS, END_STREAM_AND_HEADERS, stream_id, &block)
            .await;
    }

    async fn send(&mut self, kind: u8, flags: u8, stream_id: u32, payload: &[u8]) {
        let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        frame.extend_from_slice(&[kind, flags]);
        frame.extend_from_slice(&stream_id.to_be_bytes());
        frame.extend_from_slice(payload);
        // The server may have closed already; reading finds out.
        let _ = self.stream.write_all(&frame).await;
    }

    /// The parameters of the server's first (non-ACK) SETTINGS frame.
    async fn first_settings(&mut self) -> std::collections::HashMap<u16, u32> {
        loop {
            let mut header = [0u8; 9];
            self.stream.read_exact(&mut header).await.unwrap();
            let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let mut payload = vec![0u8; length];
            self.stream.read_exact(&mut payload).await.unwrap();
            if header[3] == SETTINGS && header[4] & ACK == 0 {
                return payload
                    .chunks_exact(6)
                    .map(|p| {
                        (
                            u16::from_be_bytes([p[0], p[1]]),
                            u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
                        )
                    })
                    .collect();
            }
        }
    }

    /// Reads frames until the server closes, acknowledging its SETTINGS (and its PINGs, if
    /// `answer_pings`): the types of the frames received.
    async fn until_closed(&mut self, answer_pings: bool) -> Vec<u8> {
        let mut kinds = Vec::new();
        loop {
            let mut header = [0u8; 9];
            if self.stream.read_exact(&mut header).await.is_err() {
                return kinds;
            }
            let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let (kind, flags) = (header[3], header[4]);
            let mut payload = vec![0u8; length];
            if self.stream.read_exact(&mut payload).await.is_err() {
                return kinds;
            }
            kinds.push(kind);
            match kind {
                SETTINGS if flags & ACK == 0 => self.send(SETTINGS, ACK, 0, &[]).await,
                PING if flags & ACK == 0 && answer_pings => self.send(PING, ACK, 0, &payload).await,
                _ => {}
            }
        }
    }
}
