//! The transcoder against a test proto with rules of every supported shape (nested and
//! multi-segment variables, `**`, verbs, `body: "field"`, `response_body`,
//! `additional_bindings`), compiled with protox at test time.

use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};

use super::bind::bind;
use super::routes::{Lookup, RouteTable};

fn pool() -> DescriptorPool {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/http/testdata");
    let protos = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let mut compiler = protox::Compiler::new([root, protos]).unwrap();
    compiler.include_imports(true);
    compiler.open_file("transcode.proto").unwrap();
    DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).unwrap()
}

fn table() -> RouteTable {
    RouteTable::from_pool(&pool()).unwrap()
}

/// The RPC name, operation id and bound request (as JSON) for a request, or the error text.
fn transcode(
    table: &RouteTable,
    method: &str,
    path_and_query: &str,
    body: &str,
) -> Result<(String, String, Value), String> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let method = http::Method::from_bytes(method.as_bytes()).unwrap();
    match table.lookup(&method, path) {
        Lookup::Found(route, vars) => {
            let body =
                super::body::check(body.as_bytes(), usize::MAX).map_err(
                    |refused| match refused {
                        super::body::Refused::TooMany(why)
                        | super::body::Refused::Duplicate(why) => why,
                    },
                )?;
            let message = bind(route, vars, query, body).map_err(|e| e.0)?;
            Ok((
                route.rpc.name().to_owned(),
                route.operation_id.clone(),
                serde_json::to_value(&message).unwrap(),
            ))
        }
        Lookup::BadPath(why) => Err(why),
        Lookup::MethodNotAllowed(allowed) => Err(format!(
            "405 {}",
            allowed
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(",")
        )),
        Lookup::NotFound => Err("404".into()),
    }
}

#[test]
fn every_rule_and_binding_becomes_a_route() {
    let table = table();
    let mut ids: Vec<&str> = table
        .routes()
        .iter()
        .map(|r| r.operation_id.as_str())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "Library_ArchiveBook",
            "Library_DeleteBook",
            "Library_Files",
            "Library_GetBook",
            "Library_GetBook2",
            "Library_ListBooks",
            "Library_UpdateBook",
        ]
    );
}

#[test]
fn paths_select_routes_and_fill_variables() {
    let t = table();
    let ok = |method, path, body| transcode(&t, method, path, body).unwrap();
    assert_eq!(
        ok("GET", "/v1/shelves/s1/books/b%201", ""),
        (
            "GetBook".into(),
            "Library_GetBook".into(),
            json!({"name": "shelves/s1/books/b 1"})
        )
    );
    assert_eq!(
        ok("GET", "/v1/books/b1?reason=audit", ""),
        (
            "GetBook".into(),
            "Library_GetBook2".into(),
            json!({"bookId": "b1", "reason": "audit"})
        )
    );
    assert_eq!(ok("DELETE", "/v1/books/b1", "").0, "DeleteBook");
    assert_eq!(
        ok("POST", "/v1/books/b1:archive", r#"{"reason":"old"}"#).2,
        json!({"bookId": "b1", "reason": "old"})
    );
    assert_eq!(
        ok("GET", "/v1/files/a/b%20c/d", "").2,
        json!({"path": "a/b c/d"})
    );
    assert_eq!(
        transcode(&t, "POST", "/v1/books/b1", "{}").unwrap_err(),
        "405 GET,PATCH,DELETE"
    );
    assert_eq!(
        transcode(&t, "GET", "/v1/shelves/s1", "").unwrap_err(),
        "404"
    );
    assert_eq!(
        transcode(&t, "GET", "/v1/books/b1:archive", "").unwrap(),
        (
            "GetBook".into(),
            "Library_GetBook2".into(),
            json!({"bookId": "b1:archive"})
        ),
        "without the verb's method, the colon is part of the id"
    );
}

#[test]
fn body_field_and_nested_path_variables() {
    let t = table();
    let (_, _, request) = transcode(
        &t,
        "PATCH",
        "/v1/books/b1?allowMissing=true",
        r#"{"title":"T","pages":"12","genre":"GENRE_PROSE","bookId":"ignored","tags":["x"]}"#,
    )
    .unwrap();
    assert_eq!(
        request,
        json!({
            "book": {"bookId": "b1", "title": "T", "pages": "12", "genre": "GENRE_PROSE", "tags": ["x"]},
            "allowMissing": true
        })
    );
    for (query, body, needle) in [
        ("book.title=x", "{}", "bound by the body"),
        ("", r#"{"titel":"x"}"#, "\"book.titel\""),
        ("", r#"{"pages":"many"}"#, "\"book.pages\""),
        ("allow_missing=perhaps", "{}", "allow_missing"),
    ] {
        let error = transcode(&t, "PATCH", &format!("/v1/books/b1?{query}"), body).unwrap_err();
        assert!(error.contains(needle), "{query} {body}: {error}");
    }
}

#[test]
fn query_parameters_fill_repeated_nested_enum_and_timestamp_fields() {
    let t = table();
    let (_, _, request) = transcode(
        &t,
        "GET",
        "/v1/shelves/s1/books?tags=a&tags=b+c&filter.genres=GENRE_POETRY&filter.genres=2\
         &filter.min_pages=5&filter.after=2024-01-01T01:00:00%2B01:00&pageSize=10",
        "",
    )
    .unwrap();
    assert_eq!(
        request,
        json!({
            "shelf": "s1",
            "tags": ["a", "b c"],
            "filter": {
                "genres": ["GENRE_POETRY", "GENRE_PROSE"],
                "minPages": "5",
                "after": "2024-01-01T00:00:00Z"
            },
            "pageSize": 10
        })
    );
    for (query, needle) in [
        ("labels=x", "map fields"),
        ("shelf=x", "bound by the path"),
        ("filter.genres=GENRE_NOPE", "filter.genres"),
        ("filter.after=yesterday", "filter.after"),
        ("pageSize=-1", "pageSize"),
        ("pageSize=1&page_size=2", "given 2 times"),
        ("filter=x", "filter"),
        ("tags.x=1", "unknown query parameter"),
    ] {
        let error = transcode(&t, "GET", &format!("/v1/shelves/s1/books?{query}"), "").unwrap_err();
        assert!(error.contains(needle), "{query}: {error}");
    }
}

#[test]
fn response_body_selects_a_field_and_writes_its_default() {
    let t = table();
    let route = t
        .routes()
        .iter()
        .find(|r| r.rpc.name() == "ListBooks")
        .unwrap();
    let output = route.output();
    let full: DynamicMessage = DynamicMessage::deserialize(
        output.clone(),
        json!({"books": [{"bookId": "b1", "pages": "3"}], "nextPageToken": "t"}),
    )
    .unwrap();
    let bytes = super::response_json(route, &full).unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap(),
        json!([{"bookId": "b1", "pages": "3"}])
    );
    let empty = DynamicMessage::new(output);
    let bytes = super::response_json(route, &empty).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), json!([]));
}

#[test]
fn openapi_documents_every_shape() {
    let doc = super::openapi::document(&table(), Default::default(), &|_| None);
    let paths = doc["paths"].as_object().unwrap();
    let mut keys: Vec<&str> = paths.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "/grpc.health.v1.Health/Check",
            "/openapi.json",
            "/v1/books/{book.book_id}",
            "/v1/books/{book_id}",
            "/v1/books/{book_id}:archive",
            "/v1/files/{path}",
            "/v1/shelves/{shelf}/books",
            "/v1/{name}",
        ]
    );
    let list = &paths["/v1/shelves/{shelf}/books"]["get"];
    let names: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "shelf",
            "tags",
            "filter.genres",
            "filter.minPages",
            "filter.after",
            "pageSize"
        ]
    );
    assert_eq!(
        list["responses"]["200"]["content"]["application/json"]["schema"]["type"],
        "array"
    );
    assert_eq!(
        paths["/v1/books/{book.book_id}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/transcode.test.v1.Book"
    );
    assert_eq!(
        paths["/v1/{name}"]["get"]["parameters"][0]["description"],
        "Matches the path segments `shelves/*/books/*`."
    );
    // One bearer scheme, required everywhere but on the public operations.
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&scheme["type"], &scheme["scheme"], &scheme["bearerFormat"]),
        (&json!("http"), &json!("bearer"), &json!("udpat_…"))
    );
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    assert_eq!(paths["/openapi.json"]["get"]["security"], json!([]));
    assert_eq!(
        paths["/grpc.health.v1.Health/Check"]["post"]["security"],
        json!([])
    );
    assert!(list.get("security").is_none());

    // Valid under the standard validator too, when it is installed.
    if let Ok(validator) = std::env::var("USERDIR_OPENAPI_VALIDATOR")
        && !validator.is_empty()
    {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("openapi.json");
        std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
        let output = std::process::Command::new(&validator)
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A gRPC router serving `Library/GetBook` as an echo (the book id from the request, the title
/// from the `authorization` metadata, the tags from `x-tenant`), behind a tower layer that
/// refuses calls without credentials. Returns the one-port router built on it.
fn echo_server() -> axum::Router {
    use prost_reflect::ReflectMessage;
    use tonic::{Request, Response, Status};

    let pool = pool();
    let input = pool
        .get_message_by_name("transcode.test.v1.GetBookRequest")
        .unwrap();
    let book = pool.get_message_by_name("transcode.test.v1.Book").unwrap();
    let get_book = tower::service_fn(move |request: axum::extract::Request| {
        let input = input.clone();
        let book = book.clone();
        async move {
            let echo = tower::service_fn(move |request: Request<DynamicMessage>| {
                let book = book.clone();
                async move {
                    let text = |key: &str| {
                        request
                            .metadata()
                            .get(key)
                            .map(|v| v.to_str().unwrap().to_owned())
                    };
                    let id = request.get_ref().get_field_by_name("book_id").unwrap();
                    if id.as_str() == Some("missing") {
                        return Err(missing_book_status(&book));
                    }
                    let mut reply = DynamicMessage::new(book);
                    reply.set_field_by_name("book_id", id.into_owned());
                    if let Some(title) = text("authorization") {
                        reply.set_field_by_name("title", prost_reflect::Value::String(title));
                    }
                    if let Some(tenant) = text("x-tenant") {
                        let tags = vec![prost_reflect::Value::String(tenant)];
                        reply.set_field_by_name("tags", prost_reflect::Value::List(tags));
                    }
                    assert_eq!(reply.descriptor().name(), "Book");
                    let mut response = Response::new(reply);
                    response
                        .metadata_mut()
                        .insert("x-served-by", "echo".parse().unwrap());
                    Ok::<_, Status>(response)
                }
            });
            let mut grpc = tonic::server::Grpc::new(super::dispatch::DynamicCodec::new(input));
            Ok::<_, std::convert::Infallible>(grpc.unary(echo, request).await)
        }
    });
    let grpc = axum::Router::new()
        .route_service("/transcode.test.v1.Library/GetBook", get_book)
        .layer(axum::middleware::from_fn(
            |request: axum::extract::Request, next: axum::middleware::Next| async move {
                if request.headers().contains_key("authorization") {
                    next.run(request).await
                } else {
                    Status::unauthenticated("credentials required").into_http()
                }
            },
        ));
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/http/testdata");
    let protos = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let mut compiler = protox::Compiler::new([root, protos]).unwrap();
    compiler.include_imports(true);
    compiler.open_file("transcode.proto").unwrap();
    let descriptors = compiler.encode_file_descriptor_set();
    let connect = crate::api::connect::Connect::new(
        &[&descriptors],
        grpc.clone(),
        crate::limits::DEFAULT_MAX_MESSAGE_BYTES,
    )
    .unwrap();
    let grpc_and_json = super::Transcoder::new(&descriptors)
        .unwrap()
        .router(
            grpc,
            Default::default(),
            &|_| None,
            crate::limits::DEFAULT_MAX_MESSAGE_BYTES,
        )
        .unwrap();
    crate::api::port::router(grpc_and_json, connect)
        // As in front of everything on the port: refusals of the layers inside the router (a
        // content coding not served) are drawn in the caller's protocol.
        .layer(axum::middleware::from_fn(crate::api::rescue::rescue))
}

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, http::HeaderMap, Value) {
    use tower::ServiceExt;
    let mut request = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn json_calls_go_through_the_grpc_router_and_its_layers() {
    let router = echo_server();

    // The layer on the gRPC router refuses the JSON call exactly as it would a gRPC one.
    let (status, headers, body) = call(&router, "GET", "/v1/books/b1", &[]).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code": 16, "message": "credentials required", "details": []})
    );
    assert_eq!(headers["www-authenticate"], "credentials required");

    // Credentials, the request id and grpc-metadata-* headers travel as metadata; response
    // metadata comes back as grpc-metadata-* headers.
    let (status, headers, body) = call(
        &router,
        "GET",
        "/v1/books/b1",
        &[
            ("authorization", "Bearer t0k3n"),
            ("grpc-metadata-x-tenant", "acme"),
            ("cookie", "not forwarded"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"bookId": "b1", "title": "Bearer t0k3n", "tags": ["acme"]})
    );
    assert_eq!(headers["grpc-metadata-x-served-by"], "echo");
    assert_eq!(headers["content-type"], "application/json");

    // A route whose RPC the gRPC router does not serve answers Unimplemented as JSON.
    let (status, _, body) =
        call(&router, "DELETE", "/v1/books/b1", &[("authorization", "x")]).await;
    assert_eq!(status, 501, "{body}");
    assert_eq!(body["code"], 12);
}

/// NotFound with two details: a Book (a type our descriptors know) and an unknown type.
fn missing_book_status(book: &prost_reflect::MessageDescriptor) -> tonic::Status {
    use prost::Message;
    let mut detail = DynamicMessage::new(book.clone());
    detail.set_field_by_name("book_id", prost_reflect::Value::String("missing".into()));
    let any = |type_url: &str, value: Vec<u8>| prost_types::Any {
        type_url: type_url.into(),
        value,
    };
    // google.rpc.Status: code 1, message 2, details 3.
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
        #[prost(message, repeated, tag = "3")]
        details: Vec<prost_types::Any>,
    }
    let details = RpcStatus {
        code: 5,
        message: "no such book".into(),
        details: vec![
            any(
                "type.googleapis.com/transcode.test.v1.Book",
                detail.encode_to_vec(),
            ),
            any("type.googleapis.com/other.Unknown", vec![1, 2, 3]),
        ],
    };
    tonic::Status::with_details(
        tonic::Code::NotFound,
        "no such book",
        details.encode_to_vec().into(),
    )
}

#[tokio::test]
async fn error_details_are_written_as_any() {
    let router = echo_server();
    let (status, _, body) = call(
        &router,
        "GET",
        "/v1/books/missing",
        &[("authorization", "x")],
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({
            "code": 5,
            "message": "no such book",
            "details": [
                {"@type": "type.googleapis.com/transcode.test.v1.Book", "bookId": "missing"},
                {"@type": "type.googleapis.com/other.Unknown", "value": "AQID"},
            ]
        })
    );
}

/// A POST to the echo router with `body` and `headers`: status, headers and body bytes.
async fn post_raw(
    router: &axum::Router,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, http::HeaderMap, bytes::Bytes) {
    use tower::ServiceExt;
    let mut request = http::Request::builder().method("POST").uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(axum::body::Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, body)
}

const GET_BOOK: &str = "/transcode.test.v1.Library/GetBook";

#[tokio::test]
async fn connect_json_calls_go_through_the_grpc_router_with_connect_errors() {
    let router = echo_server();
    let json_call = |headers: &'static [(&'static str, &'static str)], body: &'static str| {
        let router = router.clone();
        async move {
            let mut all = vec![("content-type", "application/json")];
            all.extend_from_slice(headers);
            let (status, headers, body) =
                post_raw(&router, GET_BOOK, &all, body.as_bytes().to_vec()).await;
            let json: Value = serde_json::from_slice(&body).unwrap();
            (status, headers, json)
        }
    };

    // Any method of the descriptor set, whether or not it has an HTTP rule; headers metadata
    // comes back as plain headers.
    let (status, headers, body) = json_call(
        &[
            ("authorization", "Bearer t0k3n"),
            ("connect-protocol-version", "1"),
            ("grpc-metadata-x-tenant", "acme"),
        ],
        r#"{"bookId": "b1"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-served-by"], "echo");
    assert_eq!(
        body,
        json!({"bookId": "b1", "title": "Bearer t0k3n", "tags": ["acme"]})
    );

    // The gRPC router's own refusal, in Connect's format.
    let (status, _, body) = json_call(&[], r#"{"bookId": "b1"}"#).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"code": "unauthenticated", "message": "credentials required"})
    );

    // A service's details: type names and unpadded base64.
    let (status, _, body) = json_call(&[("authorization", "x")], r#"{"book_id": "missing"}"#).await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["details"][0]["type"], "transcode.test.v1.Book");
    assert_eq!(
        body["details"][1],
        json!({"type": "other.Unknown", "value": "AQID"})
    );

    // Bad input names the field, as on the JSON routes.
    let (status, _, body) = json_call(&[("authorization", "x")], r#"{"bookid": "b1"}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_argument");
    assert!(
        body["message"].as_str().unwrap().contains("bookid"),
        "{body}"
    );
    let (status, _, body) = json_call(&[("connect-protocol-version", "2")], "{}").await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("connect-protocol-version")
    );
    let (status, headers, body) =
        json_call(&[("authorization", "x"), ("content-encoding", "br")], "{}").await;
    assert_eq!(status, 415);
    assert_eq!(body["code"], "unimplemented");
    assert!(
        body["message"].as_str().unwrap().contains("\"br\""),
        "{body}"
    );
    assert_eq!(headers["accept-encoding"], "gzip, zstd");

    // Unknown methods are Unimplemented; so is a method other than POST.
    let (status, _, body) = post_raw(
        &router,
        "/transcode.test.v1.Library/Nope",
        &[("content-type", "application/json")],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 501);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["code"],
        "unimplemented"
    );
    let (status, headers, body) = call(
        &router,
        "GET",
        GET_BOOK,
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "POST");
    assert_eq!(body["code"], "unimplemented");
}

#[tokio::test]
async fn connect_proto_calls_pass_the_bytes_through() {
    use prost::Message;
    let router = echo_server();
    let pool = pool();
    let mut request = DynamicMessage::new(
        pool.get_message_by_name("transcode.test.v1.GetBookRequest")
            .unwrap(),
    );
    request.set_field_by_name("book_id", prost_reflect::Value::String("b2".into()));
    let (status, headers, body) = post_raw(
        &router,
        GET_BOOK,
        &[
            ("content-type", "application/proto"),
            ("authorization", "proto"),
        ],
        request.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/proto");
    let book = DynamicMessage::decode(
        pool.get_message_by_name("transcode.test.v1.Book").unwrap(),
        body,
    )
    .unwrap();
    assert_eq!(
        book.get_field_by_name("book_id").unwrap().as_str(),
        Some("b2")
    );
    assert_eq!(
        book.get_field_by_name("title").unwrap().as_str(),
        Some("proto")
    );

    // Errors are JSON whatever the call's encoding.
    let (status, headers, body) = post_raw(
        &router,
        GET_BOOK,
        &[("content-type", "application/proto")],
        request.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["code"],
        "unauthenticated"
    );
}

#[tokio::test]
async fn other_content_types_on_a_method_path_are_415_and_streams_unimplemented() {
    let router = echo_server();
    for content_type in [Some("text/plain"), Some("application/xml"), None] {
        let mut headers = vec![("authorization", "x")];
        headers.extend(content_type.map(|c| ("content-type", c)));
        let (status, headers, body) = post_raw(&router, GET_BOOK, &headers, b"{}".to_vec()).await;
        assert_eq!(status, 415, "{content_type:?}");
        assert!(
            headers["accept-post"]
                .to_str()
                .unwrap()
                .contains("application/proto")
        );
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains(GET_BOOK) && text.contains("application/grpc"),
            "{text}"
        );
        assert!(headers.get("grpc-status").is_none());
    }
    let (status, headers, body) = post_raw(
        &router,
        GET_BOOK,
        &[("content-type", "application/connect+json")],
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/connect+json");
    assert_eq!(body[0], 0b10, "an end-of-stream message");
    let end: Value = serde_json::from_slice(&body[5..]).unwrap();
    assert_eq!(end["error"]["code"], "unimplemented");
}
