//! Reading traces from a running collector (`tracewire collect`) over its
//! JSON API instead of from files.
//!
//! Requests are plain HTTP/1.1 `GET`s made one at a time on a
//! single-threaded tokio runtime with hyper's client (both already used by
//! the collector), so the viewer stays a synchronous program. Every request
//! is bounded: [`CONNECT_TIMEOUT`] to connect, [`REQUEST_TIMEOUT`] for the
//! whole answer, at most [`MAX_RESPONSE_BYTES`] of body.
//!
//! ```no_run
//! use tracewire_cli::remote::Client;
//!
//! let client = Client::new("http://127.0.0.1:4318")?;
//! let recent = client.recent(20)?; // the 20 newest traces
//! let two = client.traces(&["4bf9", "5a1c3b0d2e9f4a8b9c7d6e5f4a3b2c1d"])?;
//! # Ok::<(), tracewire_cli::remote::RemoteError>(())
//! ```

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::StatusCode;
use hyper::header::{ACCEPT, HOST};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use tracewire::{Array, KeyValue, SpanId, SpanKind, Status, TraceId, Value};

use crate::load::{FindError, Loader, Traces, find_id, id_query};
use crate::model::{Event, Span};

/// How long connecting to the collector may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one request may take, connecting included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest response body read: 64 MiB (a trace of about 100,000 spans).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// The most traces one search returns (the collector's own bound).
pub const MAX_LIMIT: usize = tracewire_collect::MAX_LIMIT as usize;

/// Why traces could not be read from the collector.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL is not `http://host[:port][/path]`.
    #[error("{url:?} is not a collector URL: {reason} (expected http://HOST:PORT)")]
    BadUrl {
        /// What was given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The async runtime could not be built.
    #[error("cannot start the HTTP client: {0}")]
    Runtime(std::io::Error),
    /// No connection could be made.
    #[error(
        "cannot connect to the collector at {url}: {source} (is `tracewire collect` running there?)"
    )]
    Connect {
        /// The collector's URL.
        url: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The collector did not answer in time.
    #[error("no answer from {url} within {}s", timeout.as_secs())]
    Timeout {
        /// The request's URL.
        url: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The HTTP exchange failed (connection reset, not HTTP, …).
    #[error("request to {url} failed: {source}")]
    Http {
        /// The request's URL.
        url: String,
        /// What hyper said.
        source: hyper::Error,
    },
    /// The answer is larger than [`MAX_RESPONSE_BYTES`].
    #[error("the answer from {url} is larger than {} MiB", MAX_RESPONSE_BYTES / (1024 * 1024))]
    TooLarge {
        /// The request's URL.
        url: String,
    },
    /// The collector answered with an error status.
    #[error("{url} answered {status}: {message}")]
    Status {
        /// The request's URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The API's `error` message, or the start of the body.
        message: String,
        /// Whether the body was the API's `{"error": …}` JSON (a 404
        /// without it is a wrong URL rather than a missing trace).
        api: bool,
    },
    /// The collector has no span of the trace.
    #[error("trace {id} is not in the collector at {url}")]
    TraceNotFound {
        /// The trace id.
        id: String,
        /// The collector's URL.
        url: String,
    },
    /// The answer is not the JSON the API documents.
    #[error("the answer from {url} is not the collector's JSON: {reason}")]
    NotJson {
        /// The request's URL.
        url: String,
        /// Why it could not be read.
        reason: String,
    },
    /// A trace id prefix matches none of the most recent traces.
    #[error(
        "no trace id starts with {query:?} among the {searched} most recent traces at {url}; give the full 32-digit id"
    )]
    PrefixNotFound {
        /// What was given.
        query: String,
        /// How many traces were searched.
        searched: usize,
        /// The collector's URL.
        url: String,
    },
    /// The trace id is not hex, or matches several traces.
    #[error(transparent)]
    Find(#[from] FindError),
}

/// A collector's JSON API, read with blocking requests.
#[derive(Debug)]
pub struct Client {
    /// `http://host:port/base`, without a trailing slash.
    url: String,
    /// `host:port`, to connect to and for the `Host` header.
    authority: String,
    /// The path before `/api`, without a trailing slash.
    base: String,
    runtime: tokio::runtime::Runtime,
}

#[derive(Deserialize)]
struct SearchBody {
    traces: Vec<SummaryJson>,
}

#[derive(Deserialize)]
struct SummaryJson {
    trace_id: String,
}

#[derive(Deserialize)]
struct TraceBody {
    spans: Vec<SpanJson>,
}

#[derive(Deserialize)]
struct SpanJson {
    trace_id: String,
    span_id: String,
    parent_span_id: Option<String>,
    service: String,
    name: String,
    kind: String,
    start_unix_nano: i64,
    end_unix_nano: i64,
    status: StatusJson,
    #[serde(default)]
    attributes: Option<Map<String, Json>>,
    #[serde(default)]
    events: Option<Vec<EventJson>>,
}

#[derive(Deserialize)]
struct StatusJson {
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct EventJson {
    name: String,
    time_unix_nano: i64,
    #[serde(default)]
    attributes: Option<Map<String, Json>>,
}

impl Client {
    /// A client for the collector at `url`: `http://HOST[:PORT][/PATH]`
    /// (port 80 when none is given; `http://` may be left out). HTTPS is
    /// not supported: the collector serves plain HTTP.
    ///
    /// # Errors
    /// When the URL is not of that form, or the runtime cannot be built.
    pub fn new(url: &str) -> Result<Self, RemoteError> {
        let bad = |reason| RemoteError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let trimmed = url.trim();
        let rest = if let Some(rest) = trimmed.strip_prefix("http://") {
            rest
        } else if trimmed.starts_with("https://") {
            return Err(bad(
                "HTTPS is not supported; the collector serves plain HTTP",
            ));
        } else if trimmed.contains("://") {
            return Err(bad("only http:// is supported"));
        } else {
            trimmed
        };
        let (host_port, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if host_port.is_empty() {
            return Err(bad("no host"));
        }
        if host_port.contains(['@', '?', '#', ' ']) || path.contains(['?', '#', ' ']) {
            return Err(bad("credentials, queries and fragments are not supported"));
        }
        let has_port = match host_port.rfind(':') {
            Some(i) => !host_port[i..].contains(']'),
            None => false,
        };
        let authority = if has_port {
            let port = &host_port[host_port.rfind(':').map_or(0, |i| i + 1)..];
            if port.parse::<u16>().is_err() {
                return Err(bad("the port is not a number from 0 to 65535"));
            }
            host_port.to_owned()
        } else {
            format!("{host_port}:80")
        };
        let base = path.trim_end_matches('/').to_owned();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(RemoteError::Runtime)?;
        Ok(Client {
            url: format!("http://{authority}{base}"),
            authority,
            base,
            runtime,
        })
    }

    /// The collector's URL, as requests use it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `limit` most recent traces (clamped to 1..=[`MAX_LIMIT`]),
    /// each fetched whole.
    ///
    /// # Errors
    /// When a request fails or an answer cannot be read.
    pub fn recent(&self, limit: usize) -> Result<Traces, RemoteError> {
        let limit = limit.clamp(1, MAX_LIMIT);
        let mut ids = self.search(limit)?;
        // No more than asked for, and each once, whatever the answer held.
        ids.truncate(limit);
        let mut fetched = HashSet::new();
        ids.retain(|id| fetched.insert(*id));
        let mut loader = Loader::new();
        for id in ids {
            match self.fetch(id, &mut loader) {
                // Gone between the search and the fetch: not listed.
                Err(RemoteError::TraceNotFound { .. }) => {}
                other => other?,
            }
        }
        Ok(loader.finish())
    }

    /// The traces named by `ids`: full 32-digit ids are fetched directly;
    /// shorter prefixes are resolved among the [`MAX_LIMIT`] most recent
    /// traces first, and must match exactly one of them.
    ///
    /// # Errors
    /// When an id is not hex, a prefix matches no recent trace or
    /// several, a trace is not stored, or a request fails.
    pub fn traces(&self, ids: &[&str]) -> Result<Traces, RemoteError> {
        let mut recent: Option<Vec<TraceId>> = None;
        let mut fetched = HashSet::new();
        let mut loader = Loader::new();
        for given in ids {
            let query = id_query(given)?;
            let id = match TraceId::from_hex(&query).filter(|_| query.len() == 32) {
                Some(id) => id,
                None => {
                    let searched = match &mut recent {
                        Some(searched) => searched,
                        none => none.insert(self.search(MAX_LIMIT)?),
                    };
                    find_id(given, searched.iter().copied())?.ok_or_else(|| {
                        RemoteError::PrefixNotFound {
                            query: (*given).to_owned(),
                            searched: searched.len(),
                            url: self.url.clone(),
                        }
                    })?
                }
            };
            // `diff X X`: one trace, read once (not reported as duplicates).
            if fetched.insert(id) {
                self.fetch(id, &mut loader)?;
            }
        }
        Ok(loader.finish())
    }

    /// The ids of the `limit` most recent traces (an id that is not one is
    /// left out).
    fn search(&self, limit: usize) -> Result<Vec<TraceId>, RemoteError> {
        let (url, body) = self.get(&format!("/api/traces?limit={limit}"))?;
        let search: SearchBody = parse(&url, &body)?;
        Ok(search
            .traces
            .iter()
            .filter_map(|t| {
                TraceId::from_hex(&t.trace_id.to_ascii_lowercase()).filter(|id| id.is_valid())
            })
            .collect())
    }

    /// Adds every span of trace `id` (32 hex digits) to `loader`.
    fn fetch(&self, id: TraceId, loader: &mut Loader) -> Result<(), RemoteError> {
        let (url, body) = match self.get(&format!("/api/traces/{id}")) {
            Err(RemoteError::Status {
                status: 404,
                api: true,
                ..
            }) => {
                return Err(RemoteError::TraceNotFound {
                    id: id.to_string(),
                    url: self.url.clone(),
                });
            }
            other => other?,
        };
        let trace: TraceBody = parse(&url, &body)?;
        for span in trace.spans {
            loader.add_span(convert(span));
        }
        Ok(())
    }

    /// `GET base + path`: the request's URL and the body of a 200.
    fn get(&self, path: &str) -> Result<(String, Bytes), RemoteError> {
        let path = format!("{}{path}", self.base);
        let url = format!("http://{}{path}", self.authority);
        let exchange = async {
            let stream = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio::net::TcpStream::connect(self.authority.as_str()),
            )
            .await
            .map_err(|_| RemoteError::Timeout {
                url: self.url.clone(),
                timeout: CONNECT_TIMEOUT,
            })?
            .map_err(|source| RemoteError::Connect {
                url: self.url.clone(),
                source,
            })?;
            let http = |source| RemoteError::Http {
                url: url.clone(),
                source,
            };
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(http)?;
            let request = hyper::Request::get(path.as_str())
                .header(HOST, self.authority.as_str())
                .header(ACCEPT, "application/json")
                .body(Empty::<Bytes>::new())
                .map_err(|_| RemoteError::BadUrl {
                    url: self.url.clone(),
                    reason: "the path is not valid in a request",
                })?;
            let answer = async {
                let response = sender.send_request(request).await.map_err(http)?;
                let status = response.status();
                let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                    .collect()
                    .await
                    .map_err(|e| match e.downcast::<hyper::Error>() {
                        Ok(e) => http(*e),
                        Err(_) => RemoteError::TooLarge { url: url.clone() },
                    })?
                    .to_bytes();
                Ok::<_, RemoteError>((status, body))
            };
            // The connection is driven alongside the request; it ends
            // when the request's answer has been read.
            tokio::pin!(connection);
            tokio::pin!(answer);
            tokio::select! {
                result = &mut answer => result,
                result = &mut connection => match result {
                    Err(e) => Err(http(e)),
                    Ok(()) => answer.await,
                },
            }
        };
        let (status, body) = self
            .runtime
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, exchange).await })
            .map_err(|_| RemoteError::Timeout {
                url: url.clone(),
                timeout: REQUEST_TIMEOUT,
            })??;
        if status != StatusCode::OK {
            let (message, api) = error_message(&body);
            return Err(RemoteError::Status {
                url,
                status: status.as_u16(),
                message,
                api,
            });
        }
        Ok((url, body))
    }
}

/// The API's `{"error": "…"}` (and `true`), or a text body; either
/// shortened to one line of at most 200 characters, as it comes from
/// outside.
fn error_message(body: &[u8]) -> (String, bool) {
    if let Ok(Json::Object(map)) = serde_json::from_slice::<Json>(body)
        && let Some(Json::String(message)) = map.get("error")
    {
        return (one_line(message), true);
    }
    (one_line(&String::from_utf8_lossy(body)), false)
}

fn one_line(text: &str) -> String {
    let text = text.trim();
    let mut line: String = text
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(200).is_some() {
        line.push('…');
    } else if line.is_empty() {
        line.push_str("(no message)");
    }
    line
}

fn parse<T: for<'de> Deserialize<'de>>(url: &str, body: &[u8]) -> Result<T, RemoteError> {
    serde_json::from_slice(body).map_err(|e| RemoteError::NotJson {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

fn nanos(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A span as the store holds it as the viewer's, for the web viewer,
/// which reads the store in-process: the row's JSON fields are what the
/// API sends for them, so the conversion is the API's ([`convert`])
/// without writing the answer and reading it back. `None` when its ids
/// are invalid.
pub(crate) fn span_from_row(row: &tracewire_collect::SpanRow) -> Option<Span> {
    let span = SpanJson {
        trace_id: row.trace_id.clone(),
        span_id: row.span_id.clone(),
        parent_span_id: row.parent_span_id.clone(),
        service: row.service.clone(),
        name: row.name.clone(),
        kind: String::new(),
        start_unix_nano: row.start_ns,
        end_unix_nano: row.end_ns,
        status: StatusJson {
            code: String::new(),
            message: String::new(),
        },
        attributes: serde_json::from_str(&row.attributes).ok(),
        events: serde_json::from_str(&row.events).ok(),
    };
    let kind = crate::load::kind_from_otlp(row.kind);
    let status = crate::load::status_from_otlp(row.status_code, row.status_message.clone());
    build(span, kind, status)
}

/// One span of the API as the viewer's; `None` when its ids are invalid.
fn convert(mut span: SpanJson) -> Option<Span> {
    // The API writes `SpanKind::as_str`, or `unspecified`.
    let kind = SpanKind::parse(&span.kind).unwrap_or(SpanKind::Internal);
    let status = match span.status.code.as_str() {
        "error" => Status::Error {
            message: std::mem::take(&mut span.status.message).into(),
        },
        "ok" => Status::Ok,
        _ => Status::Unset,
    };
    build(span, kind, status)
}

fn build(span: SpanJson, kind: SpanKind, status: Status) -> Option<Span> {
    let trace_id = TraceId::from_hex(&span.trace_id).filter(|id| id.is_valid())?;
    let span_id = SpanId::from_hex(&span.span_id).filter(|id| id.is_valid())?;
    let parent_span_id = match span.parent_span_id.as_deref() {
        None | Some("") => None,
        Some(hex) => Some(SpanId::from_hex(hex)?).filter(|id| id.is_valid()),
    };
    Some(Span {
        trace_id,
        span_id,
        parent_span_id,
        service: span.service,
        name: span.name,
        kind,
        start_unix_nano: nanos(span.start_unix_nano),
        end_unix_nano: nanos(span.end_unix_nano),
        status,
        attributes: attributes(span.attributes),
        events: span
            .events
            .unwrap_or_default()
            .into_iter()
            .map(|e| Event {
                name: e.name,
                time_unix_nano: nanos(e.time_unix_nano),
                attributes: attributes(e.attributes),
            })
            .collect(),
    })
}

fn attributes(map: Option<Map<String, Json>>) -> Vec<KeyValue> {
    map.unwrap_or_default()
        .into_iter()
        .filter_map(|(key, value)| Some(KeyValue::new(key, attribute(value)?)))
        .collect()
}

/// A JSON attribute value as the API writes it: scalars as themselves,
/// arrays as arrays (homogeneous ones kept as arrays, others shown as
/// text), objects as text; `null` is dropped.
fn attribute(value: Json) -> Option<Value> {
    Some(match value {
        Json::Null => return None,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::I64(i),
            None => Value::F64(n.as_f64()?),
        },
        Json::String(s) => Value::String(s.into()),
        Json::Array(items) => match homogeneous(&items) {
            Some(array) => Value::Array(array),
            None => Value::String(Json::Array(items).to_string().into()),
        },
        Json::Object(_) => Value::String(value.to_string().into()),
    })
}

fn homogeneous(items: &[Json]) -> Option<Array> {
    fn all<T>(items: &[Json], f: impl Fn(&Json) -> Option<T>) -> Option<Vec<T>> {
        items.iter().map(f).collect()
    }
    Some(match items.first()? {
        Json::String(_) => Array::String(all(items, |v| Some(v.as_str()?.to_owned().into()))?),
        Json::Bool(_) => Array::Bool(all(items, Json::as_bool)?),
        Json::Number(n) if n.is_i64() => Array::I64(all(items, Json::as_i64)?),
        Json::Number(_) => Array::F64(all(items, Json::as_f64)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_host_and_port() {
        let c = Client::new("http://127.0.0.1:4318/").unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:4318");
        assert_eq!(
            Client::new("localhost:4318").unwrap().url(),
            "http://localhost:4318"
        );
        assert_eq!(
            Client::new("http://example.com/tracing/").unwrap().url(),
            "http://example.com:80/tracing"
        );
        assert_eq!(
            Client::new("http://[::1]:4318").unwrap().url(),
            "http://[::1]:4318"
        );
        assert_eq!(
            Client::new("http://[::1]").unwrap().url(),
            "http://[::1]:80"
        );
        for bad in [
            "https://x:1",
            "ftp://x",
            "http://",
            "http://x:port",
            "http://x:99999",
            "http://u@x:1",
            "http://x:1/?q",
        ] {
            assert!(
                matches!(Client::new(bad), Err(RemoteError::BadUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn api_spans_become_viewer_spans() {
        let json = r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"0000000000000002",
            "parent_span_id":"0000000000000001","service":"orders","name":"SELECT","kind":"client",
            "start_unix_nano":1000,"end_unix_nano":3000,"duration_ns":2000,
            "status":{"code":"error","message":"boom"},"trace_state":"","flags":1,
            "attributes":{"rows":7,"ratio":0.5,"db":"pg","tags":["a","b"],"mixed":["a",1],"map":{"k":1},"none":null},
            "events":[{"name":"retry","time_unix_nano":2000,"attributes":{}}],"links":[],
            "resource":{"service.name":"orders"},"scope":{"name":"x","version":""}}"#;
        let span = convert(serde_json::from_str(json).unwrap()).unwrap();
        assert_eq!(span.kind, SpanKind::Client);
        assert_eq!(span.error_message(), Some("boom"));
        assert_eq!(span.parent_span_id, Some(SpanId::from_u64(1)));
        assert_eq!((span.start_unix_nano, span.end_unix_nano), (1000, 3000));
        assert_eq!(span.attribute("rows"), Some(&Value::I64(7)));
        assert_eq!(span.attribute("ratio"), Some(&Value::F64(0.5)));
        assert_eq!(span.attribute("tags"), Some(&Value::from(vec!["a", "b"])));
        assert_eq!(
            span.attribute("mixed").and_then(Value::as_str),
            Some(r#"["a",1]"#)
        );
        assert_eq!(
            span.attribute("map").and_then(Value::as_str),
            Some(r#"{"k":1}"#)
        );
        assert_eq!(span.attribute("none"), None);
        assert_eq!(span.events[0].name, "retry");

        let bad = json.replace("0000000000000002", "zz");
        assert!(convert(serde_json::from_str(&bad).unwrap()).is_none());
    }

    #[test]
    fn a_stored_row_converts_as_its_api_answer_does() {
        let row = tracewire_collect::SpanRow {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "0000000000000002".into(),
            parent_span_id: Some("0000000000000001".into()),
            service: "orders".into(),
            name: "SELECT".into(),
            kind: 3,
            start_ns: 1000,
            end_ns: 3000,
            status_code: 2,
            status_message: "boom".into(),
            trace_state: String::new(),
            flags: 1,
            attributes: r#"{"rows":7,"db":"pg","tags":["a","b"]}"#.into(),
            events: r#"[{"name":"retry","time_unix_nano":2000,"attributes":{"n":1}}]"#.into(),
            links: "[]".into(),
            resource: r#"{"service.name":"orders"}"#.into(),
            scope: r#"{"name":"x","version":""}"#.into(),
        };
        let api = r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"0000000000000002",
            "parent_span_id":"0000000000000001","service":"orders","name":"SELECT","kind":"client",
            "start_unix_nano":1000,"end_unix_nano":3000,"status":{"code":"error","message":"boom"},
            "attributes":{"rows":7,"db":"pg","tags":["a","b"]},
            "events":[{"name":"retry","time_unix_nano":2000,"attributes":{"n":1}}]}"#;
        let from_api = convert(serde_json::from_str(api).unwrap()).unwrap();
        assert_eq!(span_from_row(&row), Some(from_api));
        let bad = tracewire_collect::SpanRow {
            span_id: "zz".into(),
            ..row
        };
        assert_eq!(span_from_row(&bad), None);
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(br#"{"error":"bad id"}"#),
            ("bad id".to_owned(), true)
        );
        assert_eq!(
            error_message(b"  plain text\n"),
            ("plain text".to_owned(), false)
        );
        assert_eq!(error_message(b"").0, "(no message)");
        assert!(error_message("x".repeat(500).as_bytes()).0.ends_with('…'));
    }
}
