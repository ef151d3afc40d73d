//! Decoding OTLP trace requests and turning their spans into store rows.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, status};
use serde_json::{Map, Value, json};

use crate::store::SpanRow;

/// The service of spans whose resource has no `service.name`.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The encodings of an OTLP/HTTP body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Encoding {
    /// The encoding named by a `Content-Type` value (parameters and case
    /// ignored), if it is one of OTLP's.
    pub(crate) fn from_content_type(value: &str) -> Option<Self> {
        let media = value.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Encoding::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(Encoding::Json)
        } else {
            None
        }
    }
}

/// Decodes an OTLP export request (`what` names its message, for the
/// error, which says why the body is not one).
pub(crate) fn decode<M>(encoding: Encoding, body: &[u8], what: &str) -> Result<M, String>
where
    M: prost::Message + Default + serde::de::DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => {
            M::decode(body).map_err(|e| format!("not an OTLP/protobuf {what}: {e}"))
        }
        Encoding::Json => {
            serde_json::from_slice(body).map_err(|e| format!("not an OTLP/JSON {what}: {e}"))
        }
    }
}

/// A span as received: its store row (what the processors read), and
/// the OTLP span itself with its resource and scope, so that exporters
/// forward exactly what was received (the row's JSON text loses bytes
/// values, repeated keys, dropped counts, schema URLs, scope attributes).
#[derive(Debug)]
pub(crate) struct Received {
    /// What the store writes and the processors read.
    pub(crate) row: SpanRow,
    /// The span as received.
    pub(crate) span: Span,
    /// Its resource and scope, shared by the spans of one `ScopeSpans`.
    pub(crate) scope: Arc<ScopeOrigin>,
}

/// A received `ResourceSpans` without its spans.
#[derive(Debug)]
pub(crate) struct ResourceOrigin {
    resource: Option<Resource>,
    schema_url: String,
}

/// A received `ScopeSpans` without its spans, and its resource.
#[derive(Debug)]
pub(crate) struct ScopeOrigin {
    resource: Arc<ResourceOrigin>,
    scope: Option<InstrumentationScope>,
    schema_url: String,
}

/// Groups spans back into `ResourceSpans`/`ScopeSpans` as they were
/// received: spans of the same received `ScopeSpans` (of one request)
/// share one, in the order given.
pub(crate) fn request(spans: Vec<(Span, Arc<ScopeOrigin>)>) -> ExportTraceServiceRequest {
    let mut resource_spans: Vec<ResourceSpans> = Vec::new();
    // Keyed by the shared origins' addresses: they are alive (held by
    // `spans`) while grouping, so two keys never alias.
    let mut resources: HashMap<*const ResourceOrigin, usize> = HashMap::new();
    let mut scopes: HashMap<*const ScopeOrigin, (usize, usize)> = HashMap::new();
    for (span, origin) in spans {
        let (r, s) = *scopes.entry(Arc::as_ptr(&origin)).or_insert_with(|| {
            let r = *resources
                .entry(Arc::as_ptr(&origin.resource))
                .or_insert_with(|| {
                    resource_spans.push(ResourceSpans {
                        resource: origin.resource.resource.clone(),
                        scope_spans: Vec::new(),
                        schema_url: origin.resource.schema_url.clone(),
                    });
                    resource_spans.len() - 1
                });
            let scope_spans = &mut resource_spans[r].scope_spans;
            scope_spans.push(ScopeSpans {
                scope: origin.scope.clone(),
                spans: Vec::new(),
                schema_url: origin.schema_url.clone(),
            });
            (r, scope_spans.len() - 1)
        });
        resource_spans[r].scope_spans[s].spans.push(span);
    }
    ExportTraceServiceRequest { resource_spans }
}

/// The spans of a request (with their rows), and how many spans were
/// rejected (a trace id that is not 16 bytes, a span id that is not 8, a
/// parent id that is neither empty nor 8 bytes) with the first reason.
pub(crate) fn rows(request: ExportTraceServiceRequest) -> (Vec<Received>, u64, Option<String>) {
    let mut out = Vec::new();
    let mut rejected = 0u64;
    let mut reason = None;
    for mut rs in request.resource_spans {
        let origin = Arc::new(ResourceOrigin {
            resource: rs.resource.take(),
            schema_url: std::mem::take(&mut rs.schema_url),
        });
        let (service, resource) = resource_fields(origin.resource.as_ref());
        for mut ss in rs.scope_spans {
            let scope_origin = Arc::new(ScopeOrigin {
                resource: origin.clone(),
                scope: ss.scope.take(),
                schema_url: std::mem::take(&mut ss.schema_url),
            });
            let scope = scope_json(scope_origin.scope.as_ref()).to_string();
            for span in ss.spans {
                let parent_ok = span.parent_span_id.is_empty() || span.parent_span_id.len() == 8;
                if span.trace_id.len() != 16 || span.span_id.len() != 8 || !parent_ok {
                    rejected += 1;
                    reason.get_or_insert_with(|| {
                        "a span's trace id is not 16 bytes, or its span or parent id not 8"
                            .to_owned()
                    });
                    continue;
                }
                let (status_code, status_message) = span
                    .status
                    .as_ref()
                    .map(|s| (s.code, s.message.clone()))
                    .unwrap_or((status::StatusCode::Unset as i32, String::new()));
                let events: Vec<Value> = span
                    .events
                    .iter()
                    .map(|e| {
                        json!({
                            "name": e.name,
                            "time_unix_nano": e.time_unix_nano,
                            "attributes": attributes_json(&e.attributes),
                        })
                    })
                    .collect();
                let links: Vec<Value> = span
                    .links
                    .iter()
                    .map(|l| {
                        json!({
                            "trace_id": hex::encode(&l.trace_id),
                            "span_id": hex::encode(&l.span_id),
                            "trace_state": l.trace_state,
                            "attributes": attributes_json(&l.attributes),
                        })
                    })
                    .collect();
                let row = SpanRow {
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: (!span.parent_span_id.is_empty())
                        .then(|| hex::encode(&span.parent_span_id)),
                    service: service.clone(),
                    name: span.name.clone(),
                    kind: span.kind,
                    start_ns: clamp_ns(span.start_time_unix_nano),
                    end_ns: clamp_ns(span.end_time_unix_nano),
                    status_code,
                    status_message,
                    trace_state: span.trace_state.clone(),
                    flags: span.flags,
                    attributes: attributes_json(&span.attributes).to_string(),
                    events: Value::Array(events).to_string(),
                    links: Value::Array(links).to_string(),
                    resource: resource.clone(),
                    scope: scope.clone(),
                };
                out.push(Received {
                    row,
                    span,
                    scope: scope_origin.clone(),
                });
            }
        }
    }
    (out, rejected, reason)
}

/// What every row of a resource stores: its `service.name` (or
/// [`UNKNOWN_SERVICE`] without one) and its attributes as JSON text.
pub(crate) fn resource_fields(resource: Option<&Resource>) -> (String, String) {
    let attributes = resource
        .map(|r| r.attributes.as_slice())
        .unwrap_or_default();
    let service = attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| UNKNOWN_SERVICE.to_owned());
    (service, attributes_json(attributes).to_string())
}

/// An instrumentation scope as JSON: `{"name", "version"}`, or `{}`
/// without one.
pub(crate) fn scope_json(scope: Option<&InstrumentationScope>) -> Value {
    match scope {
        Some(s) => json!({ "name": s.name, "version": s.version }),
        None => json!({}),
    }
}

/// Unix nanoseconds as SQLite's integer (past `i64::MAX`: the maximum).
pub(crate) fn clamp_ns(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// Attributes as a JSON object, key to value (a repeated key: the last
/// wins).
pub(crate) fn attributes_json(attributes: &[KeyValue]) -> Value {
    let mut map = Map::new();
    for kv in attributes {
        map.insert(kv.key.clone(), value_json(kv.value.as_ref()));
    }
    Value::Object(map)
}

/// An OTLP value as JSON: strings, booleans, integers and doubles as
/// themselves, arrays as arrays, key-value lists as objects, bytes as hex,
/// an empty value as `null` (a double that is not finite as `null` too).
pub(crate) fn value_json(value: Option<&AnyValue>) -> Value {
    let Some(value) = value.and_then(|v| v.value.as_ref()) else {
        return Value::Null;
    };
    match value {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::from(*i),
        any_value::Value::DoubleValue(d) => Value::from(*d),
        any_value::Value::ArrayValue(a) => {
            Value::Array(a.values.iter().map(|v| value_json(Some(v))).collect())
        }
        any_value::Value::KvlistValue(kv) => attributes_json(&kv.values),
        any_value::Value::BytesValue(b) => Value::String(hex::encode(b)),
        // A string-table reference (profiles only): not resolvable here.
        any_value::Value::StringValueStrindex(_) => Value::Null,
    }
}
