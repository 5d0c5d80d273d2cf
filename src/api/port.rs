//! The one-port router: every protocol the port speaks, each request sent to the server of its
//! protocol. gRPC goes to the gRPC services, gRPC-Web is translated in front of them, Connect
//! calls go to `api::connect` (any other content type on a method path is 415, as the gRPC
//! spec says), and everything else to the JSON routes (`api::http`), whose fallback the gRPC
//! services are. The protocol is the rescue layer's decision ([`Protocol::of`]), so a request
//! is answered in the protocol it is refused in.

use axum::extract::Request;
use tower::ServiceExt;

use super::connect::{self, Connect};
use super::content_coding;
use super::grpc::answer_as_asked;
use super::rescue::Protocol;

/// `grpc_and_json`: the gRPC services with the JSON routes as their fallback
/// (`api::http::Transcoder::router`). JSON, REST and Connect bodies may be compressed, and
/// their answers are when asked ([`content_coding`]); the transcoder's limits hold for the
/// inflated body.
pub fn router(grpc_and_json: axum::Router, connect: Connect) -> axum::Router {
    // tonic-web refuses HTTP/1.1 requests that are not gRPC-Web, so only those go through it.
    let grpc_web = grpc_and_json.clone().layer(tonic_web::GrpcWebLayer::new());
    // JSON, REST and Connect bodies may come compressed (Content-Encoding) and answers go back
    // compressed when Accept-Encoding asks; gRPC and gRPC-Web compress each message
    // themselves, so they never pass through these layers.
    let json = content_coding::serve(grpc_and_json.clone());
    let connect_unary = content_coding::serve(tower::service_fn(move |request: Request| {
        let connect = connect.clone();
        async move { Ok(connect.unary(request).await) }
    }));
    let by_protocol = tower::service_fn(move |mut request: Request| {
        let protocol = Protocol::of(request.headers(), request.uri().path());
        let (grpc_web, grpc, json, connect_unary) = (
            grpc_web.clone(),
            grpc_and_json.clone(),
            json.clone(),
            connect_unary.clone(),
        );
        async move {
            match protocol {
                // Answered compressed only when the call came compressed.
                Protocol::GrpcWeb(_) => {
                    answer_as_asked(&mut request);
                    grpc_web.oneshot(request).await
                }
                Protocol::Connect(_) => connect_unary.oneshot(request).await,
                Protocol::ConnectStream(content_type) => {
                    Ok(connect::stream(content_type, &request))
                }
                Protocol::Unsupported => Ok(connect::unsupported_media_type(&request)),
                Protocol::Grpc(_) => {
                    answer_as_asked(&mut request);
                    grpc.oneshot(request).await
                }
                Protocol::Rest(_) | Protocol::Gateway => json.oneshot(request).await,
            }
        }
    });
    axum::Router::new().fallback_service(by_protocol)
}
