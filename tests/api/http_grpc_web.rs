//! gRPC and gRPC-Web on the port that also serves JSON, on SQLite and PostgreSQL.

use crate::common;

use common::TestApp;
use common::fixtures::{self, NewUser, user_id};
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;
use userdir::proto::user::v1 as pb;

backend_tests!(
    unregistered_grpc_methods_are_unimplemented,
    grpc_web_unary_call_works,
);

/// Calls `path` as gRPC with an empty GetUserRequest and the admin token; returns the code.
async fn call_raw(app: &TestApp, path: &'static str) -> Code {
    call_raw_as(app, Some(&app.token), path).await
}

async fn call_raw_as(app: &TestApp, token: Option<&str>, path: &'static str) -> Code {
    let channel = Channel::from_shared(format!("http://{}", app.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<pb::GetUserRequest, pb::GetUserResponse>::default();
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        grpc.unary(
            {
                let mut request = tonic::Request::new(pb::GetUserRequest::default());
                if let Some(token) = token {
                    let value = format!("Bearer {token}").parse().unwrap();
                    request.metadata_mut().insert("authorization", value);
                }
                request
            },
            http::uri::PathAndQuery::from_static(path),
            codec,
        ),
    )
    .await
    .expect("an answer, not a hang");
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

async fn unregistered_grpc_methods_are_unimplemented(app: TestApp) {
    assert_eq!(
        call_raw(&app, "/userdir.user.v1.UserService/NoSuchMethod").await,
        Code::Unimplemented
    );
    assert_eq!(
        call_raw(&app, "/no.such.Service/Method").await,
        Code::Unimplemented
    );
    // Paths that look like JSON routes are still gRPC when the content type says so.
    assert_eq!(
        call_raw(&app, "/v1/users/_search").await,
        Code::Unimplemented
    );
    assert_eq!(call_raw(&app, "/openapi.json").await, Code::Unimplemented);
    // Without a credential nobody learns which methods exist.
    for path in [
        "/userdir.user.v1.UserService/NoSuchMethod",
        "/no.such.Service/Method",
    ] {
        assert_eq!(call_raw_as(&app, None, path).await, Code::Unauthenticated);
    }
}

/// One gRPC-Web frame: flag byte, big-endian length, payload.
fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a gRPC-Web response body into its message and its trailers.
fn unframe(mut body: &[u8]) -> (Option<Vec<u8>>, String) {
    let mut message = None;
    let mut trailers = String::new();
    while body.len() >= 5 {
        let flag = body[0];
        let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        let payload = &body[5..5 + length];
        if flag & 0x80 != 0 {
            trailers.push_str(std::str::from_utf8(payload).unwrap());
        } else {
            message = Some(payload.to_vec());
        }
        body = &body[5 + length..];
    }
    assert!(body.is_empty(), "no partial frame");
    (message, trailers)
}

async fn grpc_web_call(app: &TestApp, id: &str) -> (u16, Option<pb::GetUserResponse>, String) {
    grpc_web_call_to(app, "GetUser", id).await
}

async fn grpc_web_call_to(
    app: &TestApp,
    method: &str,
    id: &str,
) -> (u16, Option<pb::GetUserResponse>, String) {
    grpc_web_call_as(app, Some(&app.token), method, id).await
}

async fn grpc_web_call_as(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    id: &str,
) -> (u16, Option<pb::GetUserResponse>, String) {
    let request = pb::GetUserRequest {
        user_id: id.to_owned(),
    };
    let mut builder = reqwest::Client::new()
        .post(format!(
            "http://{}/userdir.user.v1.UserService/{method}",
            app.address
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1");
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    let response = builder
        .body(frame(0, &request.encode_to_vec()))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/grpc-web")
    );
    // A trailers-only answer carries the status in the headers.
    let header_status = response
        .headers()
        .get("grpc-status")
        .map(|v| format!("grpc-status:{}\r\n", v.to_str().unwrap()))
        .unwrap_or_default();
    let body = response.bytes().await.unwrap();
    let (message, trailers) = unframe(&body);
    let trailers = header_status + &trailers;
    let message = message.map(|m| pb::GetUserResponse::decode(m.as_slice()).unwrap());
    (status, message, trailers.to_ascii_lowercase())
}

async fn grpc_web_unary_call_works(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, vec![NewUser::new(1).email("ada@example.com")]).await;

    let (status, message, trailers) = grpc_web_call(&app, &user_id(1)).await;
    assert_eq!(status, 200);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    let user = message.expect("a message frame").user.unwrap();
    assert_eq!(user.user_id, user_id(1));
    assert_eq!(
        user.contact.unwrap().email.unwrap().address,
        "ada@example.com"
    );

    let (status, message, trailers) = grpc_web_call(&app, &user_id(2)).await;
    assert_eq!(status, 200);
    assert!(message.is_none());
    assert!(trailers.contains("grpc-status:5"), "{trailers}");

    // An unregistered method is Unimplemented in gRPC-Web form too.
    let (status, message, trailers) = grpc_web_call_to(&app, "NoSuchMethod", &user_id(1)).await;
    assert_eq!(status, 200);
    assert!(message.is_none());
    assert!(trailers.contains("grpc-status:12"), "{trailers}");

    // Without a credential: Unauthenticated, in gRPC-Web form, and no data.
    let (status, message, trailers) = grpc_web_call_as(&app, None, "GetUser", &user_id(1)).await;
    assert_eq!(status, 200);
    assert!(message.is_none());
    assert!(trailers.contains("grpc-status:16"), "{trailers}");
}
