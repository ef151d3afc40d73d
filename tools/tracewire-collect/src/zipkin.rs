//! The `zipkin` receiver: Zipkin v2 JSON spans on `POST /api/v2/spans`,
//! on a listener of its own (as the OpenTelemetry Collector's `zipkin`
//! receiver), turned into OTLP spans and queued like an OTLP export.
//!
//! The mapping is the OpenTelemetry specification's Zipkin exporter
//! mapping read in reverse, as the Collector's translator
//! (`pkg/translator/zipkin/zipkinv2`) does it:
//!
//! - `traceId`: 32 hex digits, or 16 (left-padded with zeros to 16
//!   bytes); `id` and `parentId`: 16 hex digits (a `parentId` equal to
//!   `id`, or all zeros, means no parent). A span with a missing or
//!   malformed id (or an all-zero trace or span id) is rejected and
//!   counted, the others are accepted.
//! - `timestamp` and `duration` (µs) → start and end (ns); without a
//!   `timestamp` the span starts at 0 and gets the attribute
//!   `otel.zipkin.absentField.startTime = true`.
//! - `kind` `CLIENT`, `SERVER`, `PRODUCER`, `CONSUMER` → the same kind;
//!   absent (or another value) → `INTERNAL`.
//! - `localEndpoint.serviceName` → the resource's `service.name` (spans
//!   are grouped into one `ResourceSpans` per service);
//!   `localEndpoint.ipv4`/`ipv6` → `network.local.address`, `port` →
//!   `network.local.port`; `remoteEndpoint.serviceName` →
//!   `service.peer.name`, `ipv4`/`ipv6` → `network.peer.address`, `port`
//!   → `network.peer.port` (span attributes; the Collector's
//!   `EmitV1NetworkConventions` names).
//! - `tags` → string attributes, except: `otel.status_code` (`OK`,
//!   `ERROR`, or the Collector's `STATUS_CODE_*`) and
//!   `otel.status_description` → the status; `error` → status ERROR with
//!   the tag's value as message (unless it is `true` or empty);
//!   `w3c.tracestate` → the trace state; `otel.scope.name` /
//!   `otel.library.name` and their `version` → the instrumentation scope;
//!   `span.kind` on a span without `kind` is dropped.
//! - `annotations` → events (`timestamp` µs → ns, `value` → name).
//! - `debug` and `shared` are accepted and not used (the Collector's
//!   translator does not read them either).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use serde::Deserialize;
use tokio::sync::watch;

use crate::Counters;
use crate::ingest::Ingest;
use crate::server::{Reply, read_limited, refused, text};

/// The path Zipkin reporters post their spans to.
pub(crate) const ZIPKIN_SPANS_PATH: &str = "/api/v2/spans";

/// What the Zipkin listener's connections share.
#[derive(Debug)]
struct Receiver {
    ingest: Ingest,
    body_limit: usize,
}

/// Accepts Zipkin connections until `stopped` turns true, then lets the
/// open ones finish (as the OTLP/HTTP listener does).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    ingest: Ingest,
    body_limit: usize,
    stopped: watch::Receiver<bool>,
    max_connections: usize,
) {
    let receiver = Arc::new(Receiver { ingest, body_limit });
    crate::serve_http1(listener, max_connections, stopped, move |request| {
        let receiver = receiver.clone();
        async move { handle(&receiver, request).await }
    })
    .await;
}

async fn handle(receiver: &Receiver, req: Request<Incoming>) -> Reply {
    match req.uri().path() {
        ZIPKIN_SPANS_PATH if req.method() == Method::POST => receive(receiver, req).await,
        ZIPKIN_SPANS_PATH => text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("use POST for {ZIPKIN_SPANS_PATH}"),
        ),
        "/api/v1/spans" => text(
            StatusCode::NOT_FOUND,
            "Zipkin v1 is not supported: POST Zipkin v2 JSON to /api/v2/spans",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: the Zipkin receiver takes POST /api/v2/spans",
        ),
    }
}

/// One Zipkin export: 202 when its spans are queued (a text body counts
/// the spans rejected for bad ids, if any); 415 unless the body is
/// `application/json`; 413, 400 and 503 as for OTLP/HTTP; 400 for a body
/// that is not a JSON array of Zipkin v2 spans.
async fn receive(receiver: &Receiver, req: Request<Incoming>) -> Reply {
    let json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .is_some_and(|media| media.eq_ignore_ascii_case("application/json"));
    if !json {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json (Zipkin v2 JSON)",
        );
    }
    let body = match read_limited(receiver.body_limit, req).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let spans: Vec<Option<ZipkinSpan>> = match serde_json::from_slice(&body) {
        Ok(spans) => spans,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("not a JSON array of Zipkin v2 spans: {e}"),
            );
        }
    };
    drop(body);
    let translated = translate(spans);
    let response = match receiver.ingest.traces(translated.request) {
        Ok(response) => response,
        Err(why) => return refused(why),
    };
    Counters::add(
        &receiver.ingest.counters.spans_rejected,
        translated.rejected,
    );
    let rejected = translated.rejected.saturating_add(
        response
            .partial_success
            .as_ref()
            .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0)),
    );
    let mut reply = if rejected == 0 {
        Response::new(Full::new(Bytes::new()))
    } else {
        let reason = translated
            .reason
            .or_else(|| response.partial_success.map(|p| p.error_message))
            .unwrap_or_default();
        text(
            StatusCode::ACCEPTED,
            &format!("{rejected} span(s) rejected: {reason}"),
        )
    };
    *reply.status_mut() = StatusCode::ACCEPTED;
    reply
}

/// A Zipkin v2 span as posted (fields not listed are ignored; every field
/// may be absent or `null`; a field of another JSON type makes the
/// request a 400).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ZipkinSpan {
    trace_id: Option<String>,
    id: Option<String>,
    parent_id: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    timestamp: Option<u64>,
    duration: Option<u64>,
    local_endpoint: Option<Endpoint>,
    remote_endpoint: Option<Endpoint>,
    annotations: Option<Vec<Option<Annotation>>>,
    tags: Option<BTreeMap<String, String>>,
}

/// A Zipkin endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    service_name: Option<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
    port: Option<i64>,
}

/// A Zipkin annotation: a timestamped value.
#[derive(Debug, Default, Deserialize)]
struct Annotation {
    timestamp: Option<u64>,
    value: Option<String>,
}

/// The OTLP request made of a Zipkin export, and the spans left out.
#[derive(Debug)]
pub(crate) struct Translated {
    /// The accepted spans, one `ResourceSpans` per local service.
    pub(crate) request: ExportTraceServiceRequest,
    /// Spans rejected for a missing or malformed id.
    pub(crate) rejected: u64,
    /// Why the first rejected span was.
    pub(crate) reason: Option<String>,
}

/// The attribute the Collector sets on spans that had no `timestamp`.
const START_TIME_ABSENT: &str = "otel.zipkin.absentField.startTime";

/// Turns Zipkin spans into an OTLP request: spans grouped by
/// `localEndpoint.serviceName` (in order of first appearance), then by
/// instrumentation scope. `null` entries are skipped.
pub(crate) fn translate(spans: Vec<Option<ZipkinSpan>>) -> Translated {
    let mut resource_spans: Vec<ResourceSpans> = Vec::new();
    let mut by_service: HashMap<Option<String>, usize> = HashMap::new();
    let mut by_scope: HashMap<(usize, String, String), usize> = HashMap::new();
    let mut rejected = 0u64;
    let mut reason = None;
    for (index, zspan) in spans.into_iter().enumerate() {
        let Some(zspan) = zspan else { continue };
        let service = zspan
            .local_endpoint
            .as_ref()
            .and_then(|e| e.service_name.clone())
            .filter(|s| !s.is_empty());
        let (span, scope) = match convert(zspan) {
            Ok(converted) => converted,
            Err(why) => {
                rejected += 1;
                reason.get_or_insert_with(|| format!("span {index}: {why}"));
                continue;
            }
        };
        let r = *by_service.entry(service).or_insert_with_key(|service| {
            let attributes = service
                .iter()
                .map(|name| string_attribute("service.name", name.clone()))
                .collect();
            resource_spans.push(ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Resource::default()
                }),
                scope_spans: Vec::new(),
                schema_url: String::new(),
            });
            resource_spans.len() - 1
        });
        let scope_spans = &mut resource_spans[r].scope_spans;
        let s = *by_scope
            .entry((r, scope.name.clone(), scope.version.clone()))
            .or_insert_with(|| {
                let named = !scope.name.is_empty() || !scope.version.is_empty();
                scope_spans.push(ScopeSpans {
                    scope: named.then_some(scope),
                    spans: Vec::new(),
                    schema_url: String::new(),
                });
                scope_spans.len() - 1
            });
        scope_spans[s].spans.push(span);
    }
    Translated {
        request: ExportTraceServiceRequest { resource_spans },
        rejected,
        reason,
    }
}

/// One Zipkin span as an OTLP span and its scope, or why it is rejected.
fn convert(zspan: ZipkinSpan) -> Result<(Span, InstrumentationScope), String> {
    let trace_id = match zspan.trace_id.as_deref() {
        Some(hex) if hex.len() == 32 => decode_id(hex),
        Some(hex) if hex.len() == 16 => decode_id(hex).map(|low| {
            let mut id = vec![0u8; 8];
            id.extend(low);
            id
        }),
        _ => None,
    }
    .filter(|id| id.iter().any(|b| *b != 0))
    .ok_or_else(|| {
        format!(
            "traceId {:?} is not 16 or 32 hex digits",
            shown(&zspan.trace_id)
        )
    })?;
    let span_id = zspan
        .id
        .as_deref()
        .filter(|hex| hex.len() == 16)
        .and_then(decode_id)
        .filter(|id| id.iter().any(|b| *b != 0))
        .ok_or_else(|| format!("id {:?} is not 16 hex digits", shown(&zspan.id)))?;
    let parent_span_id = match zspan.parent_id.as_deref() {
        None | Some("") => Vec::new(),
        Some(hex) => {
            let parent = Some(hex)
                .filter(|hex| hex.len() == 16)
                .and_then(decode_id)
                .ok_or_else(|| format!("parentId {hex:?} is not 16 hex digits"))?;
            if parent == span_id || parent.iter().all(|b| *b == 0) {
                Vec::new()
            } else {
                parent
            }
        }
    };

    let mut tags = zspan.tags.unwrap_or_default();
    let kind = match zspan
        .kind
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("CLIENT") => span::SpanKind::Client,
        Some("SERVER") => span::SpanKind::Server,
        Some("PRODUCER") => span::SpanKind::Producer,
        Some("CONSUMER") => span::SpanKind::Consumer,
        _ => {
            tags.remove("span.kind");
            span::SpanKind::Internal
        }
    };
    let status = status_from_tags(&mut tags);
    let trace_state = tags.remove("w3c.tracestate").unwrap_or_default();
    let scope = InstrumentationScope {
        name: take_either(&mut tags, "otel.scope.name", "otel.library.name"),
        version: take_either(&mut tags, "otel.scope.version", "otel.library.version"),
        ..InstrumentationScope::default()
    };

    let mut attributes: Vec<KeyValue> = tags
        .into_iter()
        .map(|(key, value)| string_attribute(&key, value))
        .collect();
    if let Some(local) = &zspan.local_endpoint {
        endpoint_attributes(
            &mut attributes,
            local,
            None,
            "network.local.address",
            "network.local.port",
        );
    }
    if let Some(remote) = &zspan.remote_endpoint {
        endpoint_attributes(
            &mut attributes,
            remote,
            Some("service.peer.name"),
            "network.peer.address",
            "network.peer.port",
        );
    }
    let duration_ns = micros_to_nanos(zspan.duration.unwrap_or(0));
    let start = match zspan.timestamp {
        Some(us) => micros_to_nanos(us),
        None => {
            put(
                &mut attributes,
                START_TIME_ABSENT,
                any_value::Value::BoolValue(true),
            );
            0
        }
    };
    let events = zspan
        .annotations
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|a| span::Event {
            time_unix_nano: micros_to_nanos(a.timestamp.unwrap_or(0)),
            name: a.value.unwrap_or_default(),
            ..span::Event::default()
        })
        .collect();
    let span = Span {
        trace_id,
        span_id,
        trace_state,
        parent_span_id,
        name: zspan.name.unwrap_or_default(),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start.saturating_add(duration_ns),
        attributes,
        events,
        status,
        ..Span::default()
    };
    Ok((span, scope))
}

/// The status the tags say: `otel.status_code` (with
/// `otel.status_description`), then `error` (which wins: ERROR, its value
/// as the message unless that is `true` or empty, or a description was
/// given). The tags read are removed.
fn status_from_tags(tags: &mut BTreeMap<String, String>) -> Option<Status> {
    let mut code = status::StatusCode::Unset;
    let mut message = String::new();
    if let Some(value) = tags.remove("otel.status_code") {
        code = match value.to_ascii_uppercase().as_str() {
            "OK" | "STATUS_CODE_OK" => status::StatusCode::Ok,
            "ERROR" | "STATUS_CODE_ERROR" => status::StatusCode::Error,
            _ => status::StatusCode::Unset,
        };
    }
    if let Some(description) = tags.remove("otel.status_description") {
        message = description;
    }
    if let Some(error) = tags.remove("error") {
        code = status::StatusCode::Error;
        if message.is_empty() && !error.eq_ignore_ascii_case("true") {
            message = error;
        }
    }
    if code == status::StatusCode::Unset {
        return None;
    }
    if code != status::StatusCode::Error {
        // Only an error status has a message.
        message.clear();
    }
    Some(Status {
        message,
        code: code as i32,
    })
}

/// The first of two tags present (both removed), or empty.
fn take_either(tags: &mut BTreeMap<String, String>, first: &str, second: &str) -> String {
    let a = tags.remove(first);
    let b = tags.remove(second);
    a.or(b).unwrap_or_default()
}

/// An endpoint's service name, address (IPv6 over IPv4, as the Collector)
/// and port (when in 1..=65535) as span attributes, replacing tags of the
/// same names.
fn endpoint_attributes(
    attributes: &mut Vec<KeyValue>,
    endpoint: &Endpoint,
    service_key: Option<&str>,
    address_key: &str,
    port_key: &str,
) {
    if let (Some(key), Some(name)) = (service_key, endpoint.service_name.as_ref())
        && !name.is_empty()
    {
        put(attributes, key, any_value::Value::StringValue(name.clone()));
    }
    let address = [&endpoint.ipv6, &endpoint.ipv4]
        .into_iter()
        .flatten()
        .find(|a| !a.is_empty());
    if let Some(address) = address {
        put(
            attributes,
            address_key,
            any_value::Value::StringValue(address.clone()),
        );
    }
    if let Some(port) = endpoint.port.filter(|p| (1..=65535).contains(p)) {
        put(attributes, port_key, any_value::Value::IntValue(port));
    }
}

/// Sets an attribute, replacing one of the same key.
fn put(attributes: &mut Vec<KeyValue>, key: &str, value: any_value::Value) {
    attributes.retain(|kv| kv.key != key);
    attributes.push(KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    });
}

fn string_attribute(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// Hex digits (either case) as bytes.
fn decode_id(hex: &str) -> Option<Vec<u8>> {
    hex::decode(hex).ok()
}

/// An id as shown in a rejection message (at most 64 characters of it).
fn shown(id: &Option<String>) -> String {
    match id {
        None => "(missing)".to_owned(),
        Some(id) => id.chars().take(64).collect(),
    }
}

fn micros_to_nanos(us: u64) -> u64 {
    us.saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Translated {
        translate(serde_json::from_str(json).expect("JSON array of spans"))
    }

    fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn a_64_bit_trace_id_is_left_padded() {
        let t = parse(r#"[{"traceId":"a3ce929d0e0e4736","id":"00f067aa0ba902b7"}]"#);
        assert_eq!(t.rejected, 0);
        let span = &t.request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            hex::encode(&span.trace_id),
            "0000000000000000a3ce929d0e0e4736"
        );
        assert_eq!(span.kind, span::SpanKind::Internal as i32);
        assert_eq!(
            attribute(span, START_TIME_ABSENT),
            Some(&any_value::Value::BoolValue(true))
        );
    }

    #[test]
    fn bad_ids_are_rejected_and_the_others_kept() {
        let t = parse(
            r#"[{"traceId":"xyz","id":"00f067aa0ba902b7"},
                {"traceId":"a3ce929d0e0e4736","id":"00f067aa0ba902"},
                {"traceId":"a3ce929d0e0e4736","id":"00f067aa0ba902b7","parentId":"zz"},
                {"id":"00f067aa0ba902b7"},
                {"traceId":"00000000000000000000000000000000","id":"00f067aa0ba902b7"},
                null,
                {"traceId":"4BF92F3577B34DA6A3CE929D0E0E4736","id":"00f067aa0ba902b7",
                 "parentId":"00f067aa0ba902b7"}]"#,
        );
        assert_eq!(t.rejected, 5);
        assert!(t.reason.unwrap().starts_with("span 0: traceId \"xyz\""));
        let spans: Vec<_> = t
            .request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .collect();
        assert_eq!(spans.len(), 1);
        assert!(
            spans[0].parent_span_id.is_empty(),
            "parentId == id: no parent"
        );
    }

    #[test]
    fn status_tags_become_the_status() {
        let t = parse(
            r#"[{"traceId":"a3ce929d0e0e4736","id":"0000000000000001",
                 "tags":{"error":"true","otel.status_description":"boom","x":"1"}},
                {"traceId":"a3ce929d0e0e4736","id":"0000000000000002",
                 "tags":{"otel.status_code":"OK","otel.status_description":"ignored"}},
                {"traceId":"a3ce929d0e0e4736","id":"0000000000000003",
                 "tags":{"otel.status_code":"STATUS_CODE_ERROR"}}]"#,
        );
        let spans = &t.request.resource_spans[0].scope_spans[0].spans;
        let status = |i: usize| spans[i].status.clone().unwrap();
        assert_eq!(status(0).code, status::StatusCode::Error as i32);
        assert_eq!(status(0).message, "boom");
        assert_eq!(spans[0].attributes.len(), 2, "x and the absent start");
        assert_eq!(status(1).code, status::StatusCode::Ok as i32);
        assert_eq!(status(1).message, "");
        assert_eq!(status(2).code, status::StatusCode::Error as i32);
        assert!(
            spans[1]
                .attributes
                .iter()
                .all(|kv| !kv.key.starts_with("otel.") || kv.key == START_TIME_ABSENT)
        );
    }

    #[test]
    fn spans_are_grouped_by_service_and_scope() {
        let t = parse(
            r#"[{"traceId":"a3ce929d0e0e4736","id":"0000000000000001",
                 "localEndpoint":{"serviceName":"a"},"tags":{"otel.library.name":"lib"}},
                {"traceId":"a3ce929d0e0e4736","id":"0000000000000002",
                 "localEndpoint":{"serviceName":"b"}},
                {"traceId":"a3ce929d0e0e4736","id":"0000000000000003",
                 "localEndpoint":{"serviceName":"a"}},
                {"traceId":"a3ce929d0e0e4736","id":"0000000000000004"}]"#,
        );
        let rs = &t.request.resource_spans;
        assert_eq!(rs.len(), 3);
        assert_eq!(rs[0].scope_spans.len(), 2);
        assert_eq!(rs[0].scope_spans[0].scope.as_ref().unwrap().name, "lib");
        assert!(rs[0].scope_spans[1].scope.is_none());
        assert!(rs[2].resource.as_ref().unwrap().attributes.is_empty());
    }
}
