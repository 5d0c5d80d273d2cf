//! Plain HTTP helpers for the JSON, OpenAPI and gRPC-Web tests.

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::TestApp;

/// An HTTP/1.1 response: status, content type and the body as JSON (Null when it is not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub json: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// A response header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }
}

pub async fn send(app: &TestApp, method: Method, path: &str, body: Option<&[u8]>) -> Reply {
    send_with(&reqwest::Client::new(), app, method, path, body).await
}

pub async fn send_with(
    client: &reqwest::Client,
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
) -> Reply {
    send_as(client, app, Some(&app.token), method, path, body).await
}

/// Sends with `token` as the bearer credential (None: anonymous).
pub async fn send_as(
    client: &reqwest::Client,
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
) -> Reply {
    let mut request = client.request(method, format!("http://{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_vec());
    }
    let response = request.send().await.expect("HTTP request");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let headers = response.headers().clone();
    let text = response.text().await.expect("HTTP body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        content_type,
        json,
        text,
        headers,
    }
}

pub async fn post(app: &TestApp, path: &str, body: &str) -> Reply {
    send(app, Method::POST, path, Some(body.as_bytes())).await
}

pub async fn get(app: &TestApp, path: &str) -> Reply {
    send(app, Method::GET, path, None).await
}

/// A generated message in canonical proto3 JSON, through prost-reflect, with numbers spelled as
/// protojson spells them (what the gateway must answer for the same message).
pub fn canonical_json<M: prost::Message>(message: &M, full_name: &str) -> Value {
    let pool = DescriptorPool::decode(userdir::proto::DESCRIPTOR_SET).unwrap();
    let descriptor = pool.get_message_by_name(full_name).unwrap();
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice()).unwrap();
    integral_doubles_as_integers(
        dynamic
            .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
            .unwrap(),
    )
}

/// protojson writes a double whose value is integral without a fraction (`19998`, not
/// `19998.0`), so a client parsing the answer reads an integer.
fn integral_doubles_as_integers(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap();
            if f.fract() == 0.0 && f.abs() < 9.2e18 {
                Value::from(f as i64)
            } else {
                Value::Number(n)
            }
        }
        Value::Array(items) => items
            .into_iter()
            .map(integral_doubles_as_integers)
            .collect(),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, integral_doubles_as_integers(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Asserts a grpc-gateway error body with `code` and a message containing `needle`.
pub fn assert_error(reply: &Reply, status: u16, code: i32, needle: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.text);
    assert_eq!(reply.content_type, "application/json", "{}", reply.text);
    assert_eq!(reply.json["code"], code, "{}", reply.text);
    assert_eq!(
        reply.json["details"],
        serde_json::json!([]),
        "{}",
        reply.text
    );
    let message = reply.json["message"].as_str().expect("a message");
    assert!(
        message.contains(needle),
        "message {message:?} should contain {needle:?}"
    );
}

/// Asserts an InvalidArgument (400, code 3) whose message starts by naming `field`.
pub fn assert_invalid_field(reply: &Reply, field: &str) {
    assert_error(reply, 400, 3, "");
    let message = reply.json["message"].as_str().expect("a message");
    assert!(
        message.starts_with(&format!("{field}: ")),
        "message {message:?} should start with {field:?}"
    );
}

/// A GET sent byte for byte over HTTP/1.1, for paths a URL library would normalise.
pub async fn raw_get(app: &TestApp, path: &str) -> (u16, String) {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        app.token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    read_answer(&mut stream).await
}

/// Reads an HTTP/1.1 answer to its end (the server closes): its status and body.
pub async fn read_answer(stream: &mut tokio::net::TcpStream) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
