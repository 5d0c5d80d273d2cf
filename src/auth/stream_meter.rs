//! Public gRPC streams metered message by message. The gate charges a call once, when it opens;
//! a bidirectional stream (reflection's `ServerReflectionInfo`) then carries as many requests as
//! the client sends, each answered in full. This wrapper around such a service counts the
//! request messages as they arrive and charges every one after the first to the peer's rate
//! limit, and allows at most `max_messages` on one stream. The first message over either ends
//! the stream: the service sees its requests end there, and the stream's trailers carry
//! ResourceExhausted instead of the service's own status.
//!
//! It sits on the gRPC router, inside gRPC-Web's translation, so it sees plain gRPC framing and
//! trailers for every protocol.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

use super::rate_limit::{RateLimits, retry_after_seconds};

/// Requests one reflection stream may carry: what grpcurl needs to describe every service here
/// is a small fraction of it.
pub const MAX_REFLECTION_REQUESTS_PER_STREAM: usize = 100;

/// `inner` with its request streams metered (see the module documentation).
#[derive(Clone)]
pub struct MeteredStreams<S> {
    inner: S,
    limits: Arc<RateLimits>,
    max_messages: usize,
}

impl<S> MeteredStreams<S> {
    pub fn new(inner: S, limits: Arc<RateLimits>, max_messages: usize) -> Self {
        Self {
            inner,
            limits,
            max_messages,
        }
    }
}

impl<S: NamedService> NamedService for MeteredStreams<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for MeteredStreams<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let verdict = Arc::new(OnceLock::new());
        let admission = Admission {
            limits: self.limits.clone(),
            peer: super::layer::peer(request.extensions()),
            max_messages: self.max_messages,
        };
        let request = request.map(|body| {
            Body::new(Counted {
                inner: body,
                frames: Framer::default(),
                admission,
                verdict: verdict.clone(),
                ended: false,
            })
        });
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(Concluded {
                    inner: body,
                    verdict,
                    done: false,
                })
            }))
        })
    }
}

/// Whether the `n`th request message of a stream (from 1) may reach the service.
struct Admission {
    limits: Arc<RateLimits>,
    peer: Option<IpAddr>,
    max_messages: usize,
}

impl Admission {
    fn admit(&self, n: usize) -> Result<(), Status> {
        if n == 1 {
            // The gate charged the call itself.
            return Ok(());
        }
        if n > self.max_messages {
            return Err(Status::resource_exhausted(format!(
                "a stream carries at most {} requests; open a new one",
                self.max_messages
            )));
        }
        self.limits.check_peer(self.peer).map_err(|wait| {
            let mut status = Status::resource_exhausted("rate limit exceeded; retry later");
            status
                .metadata_mut()
                .insert("retry-after", retry_after_seconds(wait).into());
            status
        })
    }
}

/// Where the request stream is in gRPC's framing: each message is a 5-byte prefix (a
/// compression flag and a big-endian u32 length) and that many bytes, split across data frames
/// anyhow.
#[derive(Default)]
struct Framer {
    /// Bytes of the current prefix seen so far (0: the next byte starts a message).
    prefix: [u8; 5],
    prefix_seen: usize,
    /// Bytes of the current message still to come.
    payload_left: usize,
    messages: usize,
}

impl Framer {
    /// Walks `data`, asking `admit` as each message begins. On a refusal: the offset in `data`
    /// where the refused message begins, and why.
    fn scan(
        &mut self,
        data: &[u8],
        admit: impl Fn(usize) -> Result<(), Status>,
    ) -> Result<(), (usize, Status)> {
        let mut at = 0;
        while at < data.len() {
            if self.payload_left > 0 {
                let take = self.payload_left.min(data.len() - at);
                self.payload_left -= take;
                at += take;
                continue;
            }
            if self.prefix_seen == 0 {
                admit(self.messages + 1).map_err(|status| (at, status))?;
                self.messages += 1;
            }
            let take = (self.prefix.len() - self.prefix_seen).min(data.len() - at);
            self.prefix[self.prefix_seen..self.prefix_seen + take]
                .copy_from_slice(&data[at..at + take]);
            self.prefix_seen += take;
            at += take;
            if self.prefix_seen == self.prefix.len() {
                let [_, length @ ..] = self.prefix;
                self.payload_left = u32::from_be_bytes(length) as usize;
                self.prefix_seen = 0;
            }
        }
        Ok(())
    }
}

/// The request body as the service reads it: it ends just before the first refused message.
struct Counted {
    inner: Body,
    frames: Framer,
    admission: Admission,
    verdict: Arc<OnceLock<Status>>,
    ended: bool,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        let Some(data) = frame.data_ref() else {
            return Poll::Ready(Some(Ok(frame)));
        };
        let admission = &this.admission;
        match this.frames.scan(data, |n| admission.admit(n)) {
            Ok(()) => Poll::Ready(Some(Ok(frame))),
            Err((at, status)) => {
                tracing::debug!(peer = ?admission.peer, %status, "stream ended");
                this.ended = true;
                let _ = this.verdict.set(status);
                let admitted = data.slice(..at);
                Poll::Ready((!admitted.is_empty()).then(|| Ok(Frame::data(admitted))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }
}

/// The response body: the service's, with its trailers replaced by the refusal once the request
/// stream was cut.
struct Concluded {
    inner: Body,
    verdict: Arc<OnceLock<Status>>,
    /// Trailers went out (the service's or ours): nothing follows them.
    done: bool,
}

impl Concluded {
    fn trailers(&mut self, status: &Status) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.done = true;
        let mut trailers = HeaderMap::new();
        // Our own messages are ASCII, which always makes a valid header value.
        let _ = status.add_header(&mut trailers);
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl http_body::Body for Concluded {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let verdict = self.verdict.clone();
        match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) if frame.is_trailers() => match verdict.get() {
                Some(status) => self.trailers(status),
                None => {
                    self.done = true;
                    Poll::Ready(Some(Ok(frame)))
                }
            },
            None => match verdict.get() {
                Some(status) => self.trailers(status),
                None => Poll::Ready(None),
            },
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload_len: usize) -> Vec<u8> {
        let mut frame = vec![0];
        frame.extend((payload_len as u32).to_be_bytes());
        frame.extend(std::iter::repeat_n(7, payload_len));
        frame
    }

    /// Feeds `stream` in chunks of `chunk` bytes; returns the offset in the stream where the
    /// first refused message begins, if any, and how many messages were admitted.
    fn feed(stream: &[u8], chunk: usize, max: usize) -> (Option<usize>, usize) {
        let mut framer = Framer::default();
        let admit = |n: usize| {
            if n > max {
                Err(Status::resource_exhausted("over"))
            } else {
                Ok(())
            }
        };
        for (i, piece) in stream.chunks(chunk).enumerate() {
            if let Err((at, _)) = framer.scan(piece, admit) {
                return (Some(i * chunk + at), framer.messages);
            }
        }
        (None, framer.messages)
    }

    #[test]
    fn messages_are_counted_however_the_frames_split_them() {
        let stream: Vec<u8> = [message(3), message(0), message(300), message(1)].concat();
        for chunk in [1, 2, 4, 5, 6, 7, 64, 1000] {
            assert_eq!(feed(&stream, chunk, 10), (None, 4), "chunk {chunk}");
            // The third message is refused exactly where it begins.
            assert_eq!(feed(&stream, chunk, 2), (Some(8 + 5), 2), "chunk {chunk}");
        }
    }
}
