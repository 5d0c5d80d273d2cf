//! W3C Trace Context (`traceparent`): the trace a request belongs to, read from the caller (a
//! mesh sidecar or an instrumented client) so that our log lines join its trace. A header that
//! does not follow the format is ignored, as the specification says, and the request starts a
//! trace of its own. `tracestate` is only meaningful beside a valid `traceparent`, and we keep no
//! vendor state, so it is not read further.

use http::HeaderMap;

/// The trace and the caller's span a request continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits, never all zeros.
    pub trace_id: String,
    /// The caller's span (16 lowercase hex digits); None when the trace starts here.
    pub parent_id: Option<String>,
}

impl TraceContext {
    /// The caller's trace from `traceparent`, or a new one when it sent none or a malformed one.
    pub fn of(headers: &HeaderMap) -> Self {
        headers
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
            .and_then(parse)
            .unwrap_or_else(Self::fresh)
    }

    /// A new trace (random id, as the specification asks: 16 random bytes).
    pub fn fresh() -> Self {
        Self {
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            parent_id: None,
        }
    }
}

/// `version-traceid-parentid-flags`, each lowercase hex of its length. Version `ff` is invalid;
/// version `00` has exactly these four fields, a later version may append more after a `-`.
fn parse(value: &str) -> Option<TraceContext> {
    let value = value.trim_matches([' ', '\t']);
    let mut fields = value.splitn(5, '-');
    let (version, trace_id, parent_id, flags) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let rest = fields.next();
    let hex = |field: &str, len: usize| {
        field.len() == len
            && field
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let nonzero = |field: &str| field.bytes().any(|b| b != b'0');
    let usable = hex(version, 2)
        && version != "ff"
        && (version != "00" || rest.is_none())
        && hex(trace_id, 32)
        && nonzero(trace_id)
        && hex(parent_id, 16)
        && nonzero(parent_id)
        && hex(flags, 2);
    usable.then(|| TraceContext {
        trace_id: trace_id.to_owned(),
        parent_id: Some(parent_id.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(value: &str) -> TraceContext {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", value.parse().unwrap());
        TraceContext::of(&headers)
    }

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_continued() {
        assert_eq!(
            of(VALID),
            TraceContext {
                trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
                parent_id: Some("00f067aa0ba902b7".into()),
            }
        );
        // A later version may carry more fields; the four known ones still count.
        let later = of("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra");
        assert_eq!(later.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        for value in [
            "",
            "garbage",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let context = of(value);
            assert_eq!(context.parent_id, None, "{value:?}");
            assert_eq!(context.trace_id.len(), 32, "{value:?}");
            assert_ne!(
                context.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736",
                "{value:?}"
            );
        }
    }

    #[test]
    fn fresh_traces_differ() {
        assert_ne!(TraceContext::fresh(), TraceContext::fresh());
        assert!(
            TraceContext::fresh()
                .trace_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        );
    }
}
