//! Finished spans as OTLP messages (`opentelemetry-proto` types, kept
//! private to the crate).

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};

use super::Resource;
use crate::{Array, SpanContext, SpanData, SpanKind, Value};

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
        Value::Array(a) => any_value::Value::ArrayValue(array_value(a)),
    };
    AnyValue { value: Some(value) }
}

fn array_value(array: &Array) -> ArrayValue {
    fn each<T>(items: &[T], f: impl Fn(&T) -> any_value::Value) -> Vec<AnyValue> {
        items
            .iter()
            .map(|v| AnyValue { value: Some(f(v)) })
            .collect()
    }
    let values = match array {
        Array::Bool(v) => each(v, |b| any_value::Value::BoolValue(*b)),
        Array::I64(v) => each(v, |i| any_value::Value::IntValue(*i)),
        Array::F64(v) => each(v, |f| any_value::Value::DoubleValue(*f)),
        Array::String(v) => each(v, |s| any_value::Value::StringValue(s.to_string())),
    };
    ArrayValue { values }
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

/// One export request for `batch`: a single resource, one `ScopeSpans` per
/// instrumentation scope in order of first appearance.
pub(crate) fn export_request(resource: &Resource, batch: &[SpanData]) -> ExportTraceServiceRequest {
    let mut buffer = RequestBuffer::default();
    buffer.fill(resource, batch);
    buffer.request
}

/// An export request kept from one batch to the next, so that its strings,
/// byte vectors and messages keep their capacity: filling it for a new
/// batch copies the spans' data into what the previous batch allocated
/// instead of allocating (and then freeing) every id, name, key and value
/// again. The result is the same request [`export_request`] builds.
#[derive(Debug, Default)]
pub(crate) struct RequestBuffer {
    request: ExportTraceServiceRequest,
    /// Spans filled so far in each `ScopeSpans` (while filling).
    counts: Vec<usize>,
}

impl RequestBuffer {
    /// The request for `resource` and `batch`, reusing this buffer.
    pub(crate) fn fill(
        &mut self,
        resource: &Resource,
        batch: &[SpanData],
    ) -> &ExportTraceServiceRequest {
        let resource_spans = &mut self.request.resource_spans;
        resource_spans.truncate(1);
        if resource_spans.is_empty() {
            resource_spans.push(ResourceSpans::default());
        }
        let rs = &mut resource_spans[0];
        let proto_resource = rs.resource.get_or_insert_with(ProtoResource::default);
        fill_attributes(&mut proto_resource.attributes, resource.attributes());
        proto_resource.dropped_attributes_count = 0;
        proto_resource.entity_refs.clear();
        rs.schema_url.clear();

        let scopes = &mut rs.scope_spans;
        let counts = &mut self.counts;
        counts.clear();
        for data in batch {
            let version = data.scope.version.as_deref().unwrap_or_default();
            let found = scopes[..counts.len()].iter().position(|s| {
                s.scope
                    .as_ref()
                    .is_some_and(|scope| scope.name == data.scope.name && scope.version == version)
            });
            let index = match found {
                Some(index) => index,
                None => {
                    let index = counts.len();
                    if index == scopes.len() {
                        scopes.push(ScopeSpans::default());
                    }
                    let slot = &mut scopes[index];
                    let scope = slot.scope.get_or_insert_with(InstrumentationScope::default);
                    set_str(&mut scope.name, &data.scope.name);
                    set_str(&mut scope.version, version);
                    scope.attributes.clear();
                    scope.dropped_attributes_count = 0;
                    slot.schema_url.clear();
                    counts.push(0);
                    index
                }
            };
            let spans = &mut scopes[index].spans;
            let n = counts[index];
            if n == spans.len() {
                spans.push(Span::default());
            }
            fill_span(&mut spans[n], data);
            counts[index] = n + 1;
        }
        scopes.truncate(counts.len());
        for (scope, &n) in scopes.iter_mut().zip(counts.iter()) {
            scope.spans.truncate(n);
        }
        &self.request
    }
}

fn set_str(out: &mut String, value: &str) {
    out.clear();
    out.push_str(value);
}

fn set_bytes(out: &mut Vec<u8>, value: &[u8]) {
    out.clear();
    out.extend_from_slice(value);
}

/// `out` set to `list`, reusing its key/value messages.
fn fill_attributes(out: &mut Vec<KeyValue>, list: &[crate::KeyValue]) {
    out.truncate(list.len());
    for (i, kv) in list.iter().enumerate() {
        if i == out.len() {
            out.push(KeyValue::default());
        }
        let slot = &mut out[i];
        set_str(&mut slot.key, &kv.key);
        slot.key_strindex = 0;
        // Scalars and strings are written into the previous batch's value
        // when it has the same type (no drop and rebuild of the message).
        match (&kv.value, &mut slot.value) {
            (
                Value::String(s),
                Some(AnyValue {
                    value: Some(any_value::Value::StringValue(existing)),
                }),
            ) => set_str(existing, s),
            (
                Value::I64(i),
                Some(AnyValue {
                    value: Some(any_value::Value::IntValue(existing)),
                }),
            ) => *existing = *i,
            (
                Value::Bool(b),
                Some(AnyValue {
                    value: Some(any_value::Value::BoolValue(existing)),
                }),
            ) => *existing = *b,
            (
                Value::F64(f),
                Some(AnyValue {
                    value: Some(any_value::Value::DoubleValue(existing)),
                }),
            ) => *existing = *f,
            (value, slot) => *slot = Some(any_value(value)),
        }
    }
}

/// `out` set to the message for `data`, reusing its allocations.
fn fill_span(out: &mut Span, data: &SpanData) {
    let cx = &data.span_context;
    set_bytes(&mut out.trace_id, &cx.trace_id().to_bytes());
    set_bytes(&mut out.span_id, &cx.span_id().to_bytes());
    if cx.trace_state().is_empty() {
        out.trace_state.clear();
    } else {
        out.trace_state = cx.trace_state().header();
    }
    if data.parent_span_id.is_valid() {
        set_bytes(&mut out.parent_span_id, &data.parent_span_id.to_bytes());
    } else {
        out.parent_span_id.clear();
    }
    out.flags = flags(cx, data.parent_is_remote);
    set_str(&mut out.name, &data.name);
    out.kind = kind(data.kind);
    out.start_time_unix_nano = nanos(data.start_time);
    out.end_time_unix_nano = nanos(data.end_time);
    fill_attributes(&mut out.attributes, &data.attributes);
    out.dropped_attributes_count = data.dropped_attributes_count;
    out.events.clear();
    out.events.extend(data.events.iter().map(|e| span::Event {
        time_unix_nano: nanos(e.timestamp),
        name: e.name.to_string(),
        attributes: attributes(&e.attributes),
        dropped_attributes_count: e.dropped_attributes_count,
    }));
    out.dropped_events_count = data.dropped_events_count;
    out.links.clear();
    out.links.extend(data.links.iter().map(|l| span::Link {
        trace_id: l.span_context.trace_id().to_bytes().to_vec(),
        span_id: l.span_context.span_id().to_bytes().to_vec(),
        trace_state: l.span_context.trace_state().header(),
        attributes: attributes(&l.attributes),
        dropped_attributes_count: l.dropped_attributes_count,
        flags: flags(&l.span_context, l.span_context.is_remote()),
    }));
    out.dropped_links_count = data.dropped_links_count;
    out.status = status(&data.status);
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
    fn arrays_keep_their_element_type() {
        let mut span = sample_span();
        span.attributes = vec![
            crate::KeyValue::new("http.request.header.accept", vec!["text/html", "*/*"]),
            crate::KeyValue::new("ports", vec![80_i64, 443]),
        ];
        let req = export_request(&Resource::new("x"), &[span]);
        let attrs = &req.resource_spans[0].scope_spans[0].spans[0].attributes;
        let array = |i: usize| match &attrs[i].value.as_ref().unwrap().value {
            Some(any_value::Value::ArrayValue(a)) => a
                .values
                .iter()
                .map(|v| v.value.clone().unwrap())
                .collect::<Vec<_>>(),
            other => panic!("not an array: {other:?}"),
        };
        assert_eq!(
            array(0),
            [
                any_value::Value::StringValue("text/html".into()),
                any_value::Value::StringValue("*/*".into())
            ]
        );
        assert_eq!(
            array(1),
            [
                any_value::Value::IntValue(80),
                any_value::Value::IntValue(443)
            ]
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
    fn a_reused_buffer_builds_the_same_requests_as_fresh_ones() {
        let full = sample_span();
        let mut root = sample_span();
        root.parent_span_id = SpanId::INVALID;
        root.status = crate::Status::Unset;
        root.span_context = root
            .span_context
            .clone()
            .with_trace_state(TraceState::new());
        root.events.clear();
        root.links.clear();
        let mut other_scope = sample_span();
        other_scope.scope = Scope {
            name: "app".into(),
            version: None,
        };
        // Values changing type, fewer and more attributes than before.
        let mut retyped = root.clone();
        retyped.attributes = vec![
            Kv::new("http.response.status_code", "200"),
            Kv::new("ok", 1),
        ];
        let mut more = root.clone();
        more.attributes
            .extend([Kv::new("a", "x"), Kv::new("b", false), Kv::new("c", "y")]);
        let batches: Vec<Vec<SpanData>> = vec![
            vec![full.clone(), other_scope.clone(), full.clone()],
            vec![retyped.clone()],
            vec![
                other_scope.clone(),
                more.clone(),
                root.clone(),
                full.clone(),
            ],
            vec![],
            vec![more, retyped, other_scope, root, full],
        ];
        let resources = [
            Resource::new("users"),
            Resource::new("users").with_attribute("k", "v"),
        ];
        let mut buffer = RequestBuffer::default();
        for (i, batch) in batches.iter().enumerate() {
            let resource = &resources[i % 2];
            assert_eq!(
                buffer.fill(resource, batch),
                &export_request(resource, batch),
                "batch {i}"
            );
        }
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
