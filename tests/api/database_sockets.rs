//! The store's PostgreSQL connections send each message at once (TCP_NODELAY).
//!
//! Why a test: with Nagle's algorithm on, a write that follows a write not yet acknowledged
//! waits for the server's delayed ACK, about 40 ms, and a COPY always writes twice (its data,
//! then CopyDone) before it reads. sqlx 0.9.0 left the option off: an import of 200,000 users
//! took 36.6 s over TCP and 14.1 s over a Unix socket; 0.9.1 sets it, 15.9 s
//! (docs/benchmarks.md). A driver update that drops it again fails here.

use std::str::FromStr;

use crate::common;

use common::{Backend, TestApp};
use sea_orm::ConnectionTrait;

backend_tests!(postgres_connections_send_without_delay);

async fn postgres_connections_send_without_delay(app: TestApp) {
    if app.backend != Backend::Postgres {
        return;
    }
    let options = sqlx::postgres::PgConnectOptions::from_str(&app.database_url).unwrap();
    if options.get_socket().is_some() || options.get_host().starts_with('/') {
        return; // a Unix socket has no Nagle's algorithm
    }
    let port = options.get_port();
    // Two statements at once, so that the pool holds at least two connections.
    let (a, b) = tokio::join!(
        app.db.execute_unprepared("SELECT pg_sleep(0.05)"),
        app.db.execute_unprepared("SELECT pg_sleep(0.05)"),
    );
    a.unwrap();
    b.unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(fd) = entry.unwrap().file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if peer_port(fd) != Some(port) {
            continue;
        }
        assert!(
            nodelay(fd),
            "a connection to the database (fd {fd}) has Nagle's algorithm on"
        );
        checked += 1;
    }
    assert!(checked >= 2, "found {checked} connections to port {port}");
}

/// The peer's TCP port of the socket `fd`, if it is a connected TCP socket.
fn peer_port(fd: i32) -> Option<u16> {
    let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut length = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getpeername writes at most `length` bytes into `address`; a descriptor that is
    // not a socket (or not connected) makes it fail, which is None.
    let ok = unsafe {
        libc::getpeername(
            fd,
            (&mut address as *mut libc::sockaddr_storage).cast(),
            &mut length,
        )
    } == 0;
    if !ok {
        return None;
    }
    match i32::from(address.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let v4: &libc::sockaddr_in = unsafe { &*(&address as *const _ as *const _) };
            Some(u16::from_be(v4.sin_port))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let v6: &libc::sockaddr_in6 = unsafe { &*(&address as *const _ as *const _) };
            Some(u16::from_be(v6.sin6_port))
        }
        _ => None,
    }
}

/// Whether TCP_NODELAY is set on the TCP socket `fd`.
fn nodelay(fd: i32) -> bool {
    let mut value: libc::c_int = 0;
    let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one c_int into `value`.
    let ok = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&mut value as *mut libc::c_int).cast(),
            &mut length,
        )
    } == 0;
    ok && value != 0
}
