//! Peak memory of hostile JSON, on SQLite and PostgreSQL. The server runs in this test's own
//! process, so its peak memory is this process's, counted by the allocator below; this file
//! holds one test so that nothing else runs beside it.
//!
//! - A 2 MB body whose `data` holds a million-element list is refused as too large before the
//!   transcoder builds it (it used to cost ~740 MB on the way to the 413).
//! - A JSON GET of a user whose `data` (written before there was a cap) holds a 600k-element
//!   list answers without building a second full tree of it (it used to cost ~440 MB).
//! - Compression bombs, a JSON body and a gRPC message of a few hundred KiB that inflate to
//!   [`BOMB_BYTES`] (past the growth allowed), are refused at the message limit without being
//!   inflated whole.

// The shared harness of the `api` test binary; this binary uses only part of it.
#[allow(dead_code, unused_macros)]
#[path = "api/common/mod.rs"]
mod common;

use common::fixtures::{self, NewUser};
use common::http::{self as h, assert_error};
use common::{Backend, TestApp};
use serde_json::json;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How much peak memory one hostile request may add.
const MAX_GROWTH_BYTES: usize = 200 * 1024 * 1024;
/// What the compression bombs inflate to: more than the growth allowed.
const BOMB_BYTES: usize = 256 * 1024 * 1024;

#[tokio::test]
async fn hostile_json_does_not_raise_peak_memory() {
    common::run(Backend::Sqlite, scenario).await;
    common::run(Backend::Postgres, scenario).await;
}

async fn scenario(app: TestApp) {
    let list = vec!["0"; 1_000_000].join(",");
    let body = format!(r#"{{"organizationId":"o","schemaId":"s","data":{{"list":[{list}]}}}}"#);
    let reply = measured("the million-element body", || {
        h::post(&app, "/v1/users", &body)
    })
    .await;
    assert_error(&reply, 413, 8, "data.list[");

    fixtures::base(&app.db).await;
    let user = NewUser::new(1).data(json!({"list": vec![0; 600_000]}));
    let id = user.id();
    fixtures::insert(&app.db, vec![user]).await;
    let path = format!("/v1/users/{id}");
    let reply = measured("the GET of a large user", || h::get(&app, &path)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.json["user"]["data"]["list"].as_array().unwrap().len(),
        600_000
    );

    let bomb = gzip_bomb(br#"{"name": ""#, br#""}"#);
    let reply = measured("the JSON gzip bomb", || async {
        let response = reqwest::Client::new()
            .post(format!("http://{}/v1/organizations", app.address))
            .bearer_auth(&app.token)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(bomb.clone())
            .send()
            .await
            .unwrap();
        reply_of(response).await
    })
    .await;
    assert_error(&reply, 413, 8, "larger than the limit of 4194304 bytes");

    // A CreateOrganizationRequest whose name is the bomb, in one compressed gRPC frame.
    let mut head = vec![0x0a];
    prost::encoding::encode_varint(BOMB_BYTES as u64, &mut head);
    let bomb = gzip_bomb(&head, b"");
    let mut frame = vec![1];
    frame.extend_from_slice(&(bomb.len() as u32).to_be_bytes());
    frame.extend_from_slice(&bomb);
    let reply = measured("the gRPC gzip bomb", || async {
        let response = reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap()
            .post(format!(
                "http://{}/userdir.user.v1.OrganizationService/CreateOrganization",
                app.address
            ))
            .bearer_auth(&app.token)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-encoding", "gzip")
            .body(frame)
            .send()
            .await
            .unwrap();
        reply_of(response).await
    })
    .await;
    // A trailers-only answer: the status is in the headers, which `reply_of` keeps as text.
    assert!(reply.text.contains("grpc-status: 8"), "{}", reply.text);
}

/// `head`, [`BOMB_BYTES`] of `x`, `tail`, gzipped without ever holding the inflated bytes.
fn gzip_bomb(head: &[u8], tail: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(head).unwrap();
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..BOMB_BYTES / chunk.len() {
        encoder.write_all(&chunk).unwrap();
    }
    encoder.write_all(tail).unwrap();
    encoder.finish().unwrap()
}

/// The reply of a request sent by hand; for a gRPC answer, `text` is its `grpc-status` header.
async fn reply_of(response: reqwest::Response) -> h::Reply {
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let content_type = header("content-type").unwrap_or_default();
    let headers = response.headers().clone();
    let grpc_status = header("grpc-status");
    let text = match grpc_status {
        Some(code) => format!("grpc-status: {code}"),
        None => response.text().await.unwrap(),
    };
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    h::Reply {
        status,
        content_type,
        json,
        text,
        headers,
    }
}

/// Runs `request` and asserts that the process's peak heap grew by less than
/// [`MAX_GROWTH_BYTES`] meanwhile.
async fn measured<F, Fut>(what: &str, request: F) -> h::Reply
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = h::Reply>,
{
    let before = HEAP.reset_peak();
    let reply = request().await;
    let growth = HEAP.peak().saturating_sub(before);
    eprintln!("{what}: peak heap grew by {} MiB", growth / (1024 * 1024));
    assert!(
        growth < MAX_GROWTH_BYTES,
        "{what} grew the peak heap by {} MiB",
        growth / (1024 * 1024)
    );
    reply
}

/// The system allocator, counting the bytes in use and their peak. Peak RSS (`VmHWM`) would
/// not do: memory freed by one request stays resident, so the next one can reuse it without
/// raising the peak, and the result would depend on what ran before.
struct Counting {
    current: AtomicUsize,
    peak: AtomicUsize,
}

#[global_allocator]
static HEAP: Counting = Counting {
    current: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

impl Counting {
    /// Starts a new peak at the bytes in use now, and returns them.
    fn reset_peak(&self) -> usize {
        let now = self.current.load(Ordering::SeqCst);
        self.peak.store(now, Ordering::SeqCst);
        now
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let now = self.current.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            self.peak.fetch_max(now, Ordering::SeqCst);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        self.current.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}
