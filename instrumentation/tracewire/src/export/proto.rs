//! Finished spans as OTLP messages (`opentelemetry-proto` types, kept
//! private to the crate).

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};

use super::Resource;
use crate::{SpanContext, SpanData, SpanKind, Value};

/// `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK` of the OTLP trace proto.
const HAS_IS_REMOTE: u32 = 0x100;
/// `SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`.
const IS_REMOTE: u32 = 0x200;

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn any_value(value: &Value) -> AnyValue {
    let value = match value {
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::I64(i) => any_value::Value::IntValue(*i),
        Value::F64(f) => any_value::Value::DoubleValue(*f),
        Value::String(s) => any_value::Value::StringValue(s.to_string()),
    };
    AnyValue { value: Some(value) }
}

fn attributes(list: &[crate::KeyValue]) -> Vec<KeyValue> {
    list.iter()
        .map(|kv| KeyValue {
            key: kv.key.to_string(),
            value: Some(any_value(&kv.value)),
            key_strindex: 0,
        })
        .collect()
}

fn kind(kind: SpanKind) -> i32 {
    let kind = match kind {
        SpanKind::Internal => span::SpanKind::Internal,
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
        SpanKind::Producer => span::SpanKind::Producer,
        SpanKind::Consumer => span::SpanKind::Consumer,
    };
    kind as i32
}

fn status(status: &crate::Status) -> Option<Status> {
    let (code, message) = match status {
        crate::Status::Unset => return None,
        crate::Status::Ok => (status::StatusCode::Ok, String::new()),
        crate::Status::Error { message } => (status::StatusCode::Error, message.to_string()),
    };
    Some(Status {
        code: code as i32,
        message,
    })
}

/// The OTLP `flags` field: W3C trace flags plus whether the parent (or the
/// linked context) is remote.
fn flags(cx: &SpanContext, remote: bool) -> u32 {
    u32::from(cx.flags().bits()) | HAS_IS_REMOTE | if remote { IS_REMOTE } else { 0 }
}

fn span(data: &SpanData) -> Span {
    let cx = &data.span_context;
    Span {
        trace_id: cx.trace_id().to_bytes().to_vec(),
        span_id: cx.span_id().to_bytes().to_vec(),
        trace_state: cx.trace_state().header(),
        parent_span_id: if data.parent_span_id.is_valid() {
            data.parent_span_id.to_bytes().to_vec()
        } else {
            Vec::new()
        },
        flags: flags(cx, data.parent_is_remote),
        name: data.name.to_string(),
        kind: kind(data.kind),
        start_time_unix_nano: nanos(data.start_time),
        end_time_unix_nano: nanos(data.end_time),
        attributes: attributes(&data.attributes),
        dropped_attributes_count: data.dropped_attributes_count,
        events: data
            .events
            .iter()
            .map(|e| span::Event {
                time_unix_nano: nanos(e.timestamp),
                name: e.name.to_string(),
                attributes: attributes(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: data.dropped_events_count,
        links: data
            .links
            .iter()
            .map(|l| span::Link {
                trace_id: l.span_context.trace_id().to_bytes().to_vec(),
                span_id: l.span_context.span_id().to_bytes().to_vec(),
                trace_state: l.span_context.trace_state().header(),
                attributes: attributes(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: flags(&l.span_context, l.span_context.is_remote()),
            })
            .collect(),
        dropped_links_count: data.dropped_links_count,
        status: status(&data.status),
    }
}

/// One export request for `batch`: a single resource, one `ScopeSpans` per
/// instrumentation scope in order of first appearance.
pub(crate) fn export_request(resource: &Resource, batch: &[SpanData]) -> ExportTraceServiceRequest {
    let mut scopes: Vec<ScopeSpans> = Vec::new();
    for data in batch {
        let scope = InstrumentationScope {
            name: data.scope.name.to_string(),
            version: data.scope.version.as_deref().unwrap_or_default().to_owned(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
        };
        let span = span(data);
        match scopes.iter_mut().find(|s| s.scope.as_ref() == Some(&scope)) {
            Some(existing) => existing.spans.push(span),
            None => scopes.push(ScopeSpans {
                scope: Some(scope),
                spans: vec![span],
                schema_url: String::new(),
            }),
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(ProtoResource {
                attributes: attributes(resource.attributes()),
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_spans: scopes,
            schema_url: String::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Event, InstrumentationScope as Scope, KeyValue as Kv, Link, SpanId, TraceFlags, TraceId,
        TraceState,
    };
    use std::time::Duration;

    pub(crate) fn sample_span() -> SpanData {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_u128(0x0102),
                SpanId::from_u64(0x0304),
                TraceFlags::SAMPLED | TraceFlags::RANDOM,
                false,
                TraceState::from_key_values([("k", "v")]).unwrap(),
            ),
            parent_span_id: SpanId::from_u64(0x05),
            parent_is_remote: true,
            name: "GET /users/{id}".into(),
            kind: SpanKind::Server,
            start_time: start,
            end_time: start + Duration::from_millis(5),
            attributes: vec![
                Kv::new("http.response.status_code", 200_i64),
                Kv::new("ok", true),
                Kv::new("ratio", 0.5),
                Kv::new("url.path", "/users/7"),
            ],
            dropped_attributes_count: 2,
            events: vec![Event {
                name: "exception".into(),
                timestamp: start + Duration::from_millis(1),
                attributes: vec![Kv::new("exception.message", "boom")],
                dropped_attributes_count: 0,
            }],
            dropped_events_count: 1,
            links: vec![Link {
                span_context: SpanContext::new(
                    TraceId::from_u128(9),
                    SpanId::from_u64(8),
                    TraceFlags::SAMPLED,
                    true,
                    TraceState::new(),
                ),
                attributes: Vec::new(),
                dropped_attributes_count: 0,
            }],
            dropped_links_count: 0,
            status: crate::Status::Error {
                message: "boom".into(),
            },
            scope: Scope {
                name: "tracewire-tower".into(),
                version: Some("0.1.0".into()),
            },
        }
    }

    #[test]
    fn every_field_is_mapped() {
        let req = export_request(&Resource::new("users"), &[sample_span()]);
        let rs = &req.resource_spans[0];
        let resource = rs.resource.as_ref().unwrap();
        assert_eq!(resource.attributes[0].key, "service.name");
        let scope = &rs.scope_spans[0];
        assert_eq!(scope.scope.as_ref().unwrap().name, "tracewire-tower");
        let s = &scope.spans[0];
        assert_eq!(s.trace_id.len(), 16);
        assert_eq!(s.span_id, 0x0304u64.to_be_bytes());
        assert_eq!(s.parent_span_id, 5u64.to_be_bytes());
        assert_eq!(s.flags, 0x03 | HAS_IS_REMOTE | IS_REMOTE);
        assert_eq!(s.trace_state, "k=v");
        assert_eq!(s.kind, span::SpanKind::Server as i32);
        assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 5_000_000);
        assert_eq!(
            s.attributes[0].value.as_ref().unwrap().value,
            Some(any_value::Value::IntValue(200))
        );
        assert_eq!(
            s.attributes[2].value.as_ref().unwrap().value,
            Some(any_value::Value::DoubleValue(0.5))
        );
        assert_eq!((s.dropped_attributes_count, s.dropped_events_count), (2, 1));
        assert_eq!(s.events[0].name, "exception");
        assert_eq!(s.links[0].flags, 0x01 | HAS_IS_REMOTE | IS_REMOTE);
        let status = s.status.as_ref().unwrap();
        assert_eq!(
            (status.code, status.message.as_str()),
            (status::StatusCode::Error as i32, "boom")
        );
    }

    #[test]
    fn root_spans_have_no_parent_and_scopes_group() {
        let mut a = sample_span();
        a.parent_span_id = SpanId::INVALID;
        a.status = crate::Status::Unset;
        let mut b = sample_span();
        b.scope.name = "other".into();
        let req = export_request(&Resource::new("x"), &[a.clone(), b, a]);
        let scopes = &req.resource_spans[0].scope_spans;
        assert_eq!(scopes.len(), 2);
        assert_eq!(scopes[0].spans.len(), 2);
        assert!(scopes[0].spans[0].parent_span_id.is_empty());
        assert!(scopes[0].spans[0].status.is_none());
    }

    #[test]
    fn json_uses_hex_ids_and_camel_case() {
        let req = export_request(&Resource::new("users"), &[sample_span()]);
        let json = serde_json::to_value(&req).unwrap();
        let s = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "00000000000000000000000000000102");
        assert_eq!(s["spanId"], "0000000000000304");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["attributes"][0]["value"]["intValue"], "200");
    }
}
