//! The JSON API: `GET /api/services`,
//! `GET /api/services/{service}/operations`, `GET /api/traces?…`,
//! `GET /api/traces/{trace_id}`, `GET /api/dependencies?…`. Field names
//! are listed in the README.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use opentelemetry_proto::tonic::trace::v1::{span, status};
use serde_json::{Value, json};

use crate::server::{Reply, text};
use crate::store::{
    DEFAULT_LIMIT, MAX_ATTRIBUTE_BYTES, MAX_ATTRIBUTE_CONDITIONS, SpanRow, Store, TimeRange,
    TraceQuery,
};

/// Answers one `GET` of the JSON API: `path` is the request's path
/// (`/api/…`), `query` its query string without the `?`. The collector's
/// listener serves it; a viewer embedding a [`Store`] can serve the same
/// answers from its own server.
///
/// ```no_run
/// # async fn example(store: tracewire_collect::Store) {
/// let reply = tracewire_collect::api_response(&store, "/api/services", "").await;
/// assert_eq!(reply.status(), 200);
/// # }
/// ```
pub async fn api_response(store: &Store, path: &str, query: &str) -> Reply {
    let result = match path.trim_end_matches('/') {
        "/api/services" => store
            .services()
            .await
            .map(|services| json!({ "services": services })),
        "/api/traces" => {
            let query = match parse_query(query) {
                Ok(q) => q,
                Err(message) => return error(StatusCode::BAD_REQUEST, &message),
            };
            store
                .find_traces(&query)
                .await
                .map(|traces| json!({ "traces": traces }))
        }
        "/api/dependencies" => {
            let range = match parse_range(query) {
                Ok(r) => r,
                Err(message) => return error(StatusCode::BAD_REQUEST, &message),
            };
            store
                .dependencies(range)
                .await
                .map(|edges| json!({ "edges": edges }))
        }
        other if other.starts_with("/api/services/") => {
            let Some(service) = other
                .strip_prefix("/api/services/")
                .and_then(|rest| rest.strip_suffix("/operations"))
                .filter(|s| !s.is_empty() && !s.contains('/'))
                .map(path_segment)
            else {
                return error(
                    StatusCode::NOT_FOUND,
                    "not found: a service's operations are /api/services/{service}/operations",
                );
            };
            store.operations(&service).await.map(|operations| {
                let operations: Vec<Value> = operations
                    .iter()
                    .map(|o| json!({ "name": o.name, "kind": kind_name(o.kind) }))
                    .collect();
                json!({ "operations": operations })
            })
        }
        other => match other.strip_prefix("/api/traces/") {
            Some(id) => {
                let id = id.to_ascii_lowercase();
                if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "a trace id is 32 hexadecimal digits",
                    );
                }
                match store.trace(&id).await {
                    Ok(spans) if spans.is_empty() => {
                        return error(StatusCode::NOT_FOUND, "no span of this trace is stored");
                    }
                    // A trace's log records come with its spans (a trace
                    // with log records and no span is still not found).
                    Ok(spans) => store.trace_logs(&id).await.map(|logs| {
                        json!({
                            "trace_id": id,
                            "spans": spans.iter().map(span_json).collect::<Vec<_>>(),
                            "logs": logs.iter().map(crate::logs::log_json).collect::<Vec<_>>(),
                        })
                    }),
                    Err(e) => Err(e),
                }
            }
            None => {
                return text(
                    StatusCode::NOT_FOUND,
                    "not found: the API has /api/services, /api/services/{service}/operations, \
                     /api/traces, /api/traces/{trace_id} and /api/dependencies",
                );
            }
        },
    };
    match result {
        Ok(value) => json_reply(StatusCode::OK, &value),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn json_reply(status: StatusCode, value: &Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(value.to_string())));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply
}

fn error(status: StatusCode, message: &str) -> Reply {
    json_reply(status, &json!({ "error": message }))
}

/// Milliseconds (a non-negative number, fractions allowed) as
/// nanoseconds.
fn millis(name: &str, value: &str) -> Result<i64, String> {
    let ms: f64 = value
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{name} must be a non-negative number of milliseconds"))?;
    let ns = ms * 1e6;
    // `as` saturates for floats; the range was checked above.
    Ok(if ns >= i64::MAX as f64 {
        i64::MAX
    } else {
        ns as i64
    })
}

/// A percent-encoded path segment, decoded (`+` stays a plus sign; bytes
/// that are not UTF-8 become U+FFFD).
fn path_segment(segment: &str) -> String {
    let segment = segment.replace('+', "%2B");
    form_urlencoded::parse(format!("s={segment}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `since_ms`, `until_ms` (the dependencies' window).
fn parse_range(query: &str) -> Result<TimeRange, String> {
    let mut range = TimeRange::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if value.is_empty() {
            continue;
        }
        match key.as_ref() {
            "since_ms" => range.start_min_ns = Some(millis(&key, &value)?),
            "until_ms" => range.start_max_ns = Some(millis(&key, &value)?),
            other => return Err(format!("unknown parameter {other:?}")),
        }
    }
    Ok(range)
}

/// `attribute=key=value`: split at the first `=`, bounded.
fn attribute(value: &str) -> Result<(String, String), String> {
    let (key, value) = value
        .split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .ok_or("attribute must be key=value")?;
    if key.len() > MAX_ATTRIBUTE_BYTES || value.len() > MAX_ATTRIBUTE_BYTES {
        return Err(format!(
            "an attribute's key and value are at most {MAX_ATTRIBUTE_BYTES} bytes each"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

fn parse_query(query: &str) -> Result<TraceQuery, String> {
    let mut q = TraceQuery {
        limit: DEFAULT_LIMIT,
        ..TraceQuery::default()
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if value.is_empty() {
            continue;
        }
        match key.as_ref() {
            "service" => q.service = Some(value.into_owned()),
            "operation" => q.operation = Some(value.into_owned()),
            "min_duration_ms" => q.min_duration_ns = Some(millis(&key, &value)?),
            "max_duration_ms" => q.max_duration_ns = Some(millis(&key, &value)?),
            "since_ms" => q.start_min_ns = Some(millis(&key, &value)?),
            "until_ms" => q.start_max_ns = Some(millis(&key, &value)?),
            "attribute" => {
                if q.attributes.len() >= MAX_ATTRIBUTE_CONDITIONS {
                    return Err(format!(
                        "at most {MAX_ATTRIBUTE_CONDITIONS} attribute conditions"
                    ));
                }
                q.attributes.push(attribute(&value)?);
            }
            "error" => {
                q.error = Some(match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    _ => return Err("error must be true or false".to_owned()),
                });
            }
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or("limit must be a positive integer")?;
            }
            other => return Err(format!("unknown parameter {other:?}")),
        }
    }
    Ok(q)
}

fn kind_name(kind: i32) -> &'static str {
    match span::SpanKind::try_from(kind) {
        Ok(span::SpanKind::Internal) => "internal",
        Ok(span::SpanKind::Server) => "server",
        Ok(span::SpanKind::Client) => "client",
        Ok(span::SpanKind::Producer) => "producer",
        Ok(span::SpanKind::Consumer) => "consumer",
        Ok(span::SpanKind::Unspecified) | Err(_) => "unspecified",
    }
}

fn status_name(code: i32) -> &'static str {
    match status::StatusCode::try_from(code) {
        Ok(status::StatusCode::Ok) => "ok",
        Ok(status::StatusCode::Error) => "error",
        Ok(status::StatusCode::Unset) | Err(_) => "unset",
    }
}

/// Stored JSON text back to JSON (it was written by this crate; anything
/// else reads as `null`).
fn stored(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn span_json(s: &SpanRow) -> Value {
    json!({
        "trace_id": s.trace_id,
        "span_id": s.span_id,
        "parent_span_id": s.parent_span_id,
        "service": s.service,
        "name": s.name,
        "kind": kind_name(s.kind),
        "start_unix_nano": s.start_ns,
        "end_unix_nano": s.end_ns,
        "duration_ns": s.end_ns.saturating_sub(s.start_ns).max(0),
        "status": { "code": status_name(s.status_code), "message": s.status_message },
        "trace_state": s.trace_state,
        "flags": s.flags,
        "attributes": stored(&s.attributes),
        "events": stored(&s.events),
        "links": stored(&s.links),
        "resource": stored(&s.resource),
        "scope": stored(&s.scope),
    })
}
