//! Decoding OTLP trace requests and turning their spans into store rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span, status};
use serde::{Serialize, Serializer};

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
            let scope = scope_json(scope_origin.scope.as_ref());
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
                    attributes: attributes_json(&span.attributes),
                    events: events_json(&span.events),
                    links: links_json(&span.links),
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
    (service, attributes_json(attributes))
}

/// An instrumentation scope as JSON text: `{"name", "version"}`, or `{}`
/// without one.
pub(crate) fn scope_json(scope: Option<&InstrumentationScope>) -> String {
    match scope {
        Some(s) => json_text(&ScopeJson {
            name: &s.name,
            version: &s.version,
        }),
        None => "{}".to_owned(),
    }
}

#[derive(Serialize)]
struct ScopeJson<'a> {
    name: &'a str,
    version: &'a str,
}

/// Unix nanoseconds as SQLite's integer (past `i64::MAX`: the maximum).
pub(crate) fn clamp_ns(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// Attributes as JSON text: an object, key to value (a repeated key: the
/// last wins; see [`AttributesJson`]).
pub(crate) fn attributes_json(attributes: &[KeyValue]) -> String {
    json_text(&AttributesJson(attributes))
}

/// An OTLP value as JSON text (see [`ValueJson`]).
pub(crate) fn value_json(value: Option<&AnyValue>) -> String {
    json_text(&ValueJson(value))
}

/// `value` serialized as JSON text.
fn json_text(value: &impl Serialize) -> String {
    // Serializing borrowed OTLP data cannot fail: every map key is a
    // string and every number is written (a non-finite double as `null`).
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Attributes serialized as a JSON object, key to value; a repeated key:
/// the last wins. Written straight from the OTLP data, without building
/// a `serde_json::Value`.
struct AttributesJson<'a>(&'a [KeyValue]);

impl Serialize for AttributesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let by_key: BTreeMap<&str, ValueJson<'_>> = self
            .0
            .iter()
            .map(|kv| (kv.key.as_str(), ValueJson(kv.value.as_ref())))
            .collect();
        serializer.collect_map(by_key)
    }
}

/// An OTLP value serialized as JSON: strings, booleans, integers and
/// doubles as themselves, arrays as arrays, key-value lists as objects,
/// bytes as hex, an empty value as `null` (a double that is not finite as
/// `null` too).
struct ValueJson<'a>(Option<&'a AnyValue>);

impl Serialize for ValueJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(value) = self.0.and_then(|v| v.value.as_ref()) else {
            return serializer.serialize_none();
        };
        match value {
            any_value::Value::StringValue(s) => serializer.serialize_str(s),
            any_value::Value::BoolValue(b) => serializer.serialize_bool(*b),
            any_value::Value::IntValue(i) => serializer.serialize_i64(*i),
            any_value::Value::DoubleValue(d) if d.is_finite() => serializer.serialize_f64(*d),
            any_value::Value::DoubleValue(_) => serializer.serialize_none(),
            any_value::Value::ArrayValue(a) => {
                serializer.collect_seq(a.values.iter().map(|v| ValueJson(Some(v))))
            }
            any_value::Value::KvlistValue(kv) => AttributesJson(&kv.values).serialize(serializer),
            any_value::Value::BytesValue(b) => serializer.serialize_str(&hex::encode(b)),
            // A string-table reference (profiles only): not resolvable here.
            any_value::Value::StringValueStrindex(_) => serializer.serialize_none(),
        }
    }
}

/// A span event as stored: name, time and attributes.
#[derive(Serialize)]
struct EventJson<'a> {
    name: &'a str,
    time_unix_nano: u64,
    attributes: AttributesJson<'a>,
}

/// A span link as stored: the linked context and the link's attributes.
#[derive(Serialize)]
struct LinkJson<'a> {
    trace_id: String,
    span_id: String,
    trace_state: &'a str,
    attributes: AttributesJson<'a>,
}

/// A span's events as JSON text: an array of [`EventJson`].
fn events_json(events: &[span::Event]) -> String {
    json_text(
        &events
            .iter()
            .map(|e| EventJson {
                name: &e.name,
                time_unix_nano: e.time_unix_nano,
                attributes: AttributesJson(&e.attributes),
            })
            .collect::<Vec<_>>(),
    )
}

/// A span's links as JSON text: an array of [`LinkJson`].
fn links_json(links: &[span::Link]) -> String {
    json_text(
        &links
            .iter()
            .map(|l| LinkJson {
                trace_id: hex::encode(&l.trace_id),
                span_id: hex::encode(&l.span_id),
                trace_state: &l.trace_state,
                attributes: AttributesJson(&l.attributes),
            })
            .collect::<Vec<_>>(),
    )
}
