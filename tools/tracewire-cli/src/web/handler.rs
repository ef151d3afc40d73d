//! Routing one request: the embedded page, the viewer's endpoints, and
//! the collector's API.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tracewire_collect::{Reply, Store, api_response};

use crate::model::Trace;

/// The page, its script and its style sheet, embedded in the binary.
const INDEX_HTML: &str = include_str!("static/index.html");
const APP_JS: &str = include_str!("static/app.js");
const APP_CSS: &str = include_str!("static/app.css");

/// The page loads only what this server serves.
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub(crate) async fn handle<B>(store: &Store, req: &Request<B>) -> Reply {
    respond(
        store,
        req.method(),
        req.uri().path(),
        req.uri().query().unwrap_or_default(),
    )
    .await
}

/// Answers one request of the viewer: `path` is the request's path,
/// `query` its query string without the `?`. Only `GET` and `HEAD` are
/// answered (others get `405`).
///
/// This is what [`serve`](super::serve) runs for every request; another
/// server embedding a [`Store`] can answer with it too.
pub async fn respond(store: &Store, method: &Method, path: &str, query: &str) -> Reply {
    if method != Method::GET && method != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "the viewer only answers GET",
        );
    }
    match path {
        "/" | "/index.html" => return asset(INDEX_HTML, "text/html; charset=utf-8"),
        "/app.js" => return asset(APP_JS, "text/javascript; charset=utf-8"),
        "/app.css" => return asset(APP_CSS, "text/css; charset=utf-8"),
        "/api/compare" | "/api/compare/" => return compare(store, query).await,
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/api/traces/") {
        if let Some(id) = rest.strip_suffix("/critical-path") {
            return match load(store, id).await {
                Ok(trace) => {
                    let path = crate::critical_path(&trace);
                    json_reply(&crate::json::critical_path(&trace, &path))
                }
                Err(reply) => reply,
            };
        }
        if let Some(id) = rest.strip_suffix("/view") {
            return match load(store, id).await {
                Ok(trace) => {
                    // The page draws the waterfall and the critical path
                    // from this one answer.
                    let mut view = crate::json::view(&trace);
                    let path = crate::critical_path(&trace);
                    view["critical_path"] = crate::json::critical_path(&trace, &path);
                    json_reply(&view)
                }
                Err(reply) => reply,
            };
        }
    }
    if path == "/api" || path.starts_with("/api/") {
        return api_response(store, path, query).await;
    }
    error(
        StatusCode::NOT_FOUND,
        "not found: the viewer is at / and its API under /api/",
    )
}

/// `GET /api/compare?a=ID&b=ID`: the diff of B against A.
async fn compare(store: &Store, query: &str) -> Reply {
    let (mut a, mut b) = (None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "a" => a = Some(value.into_owned()),
            "b" => b = Some(value.into_owned()),
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("unknown parameter {:?}", short(other)),
                );
            }
        }
    }
    let (Some(a), Some(b)) = (a, b) else {
        return error(
            StatusCode::BAD_REQUEST,
            "give both traces: /api/compare?a=ID&b=ID",
        );
    };
    let a = match load(store, a.trim()).await {
        Ok(trace) => trace,
        Err(reply) => return reply,
    };
    let b = match load(store, b.trim()).await {
        Ok(trace) => trace,
        Err(reply) => return reply,
    };
    json_reply(&crate::json::diff(&crate::diff(&a, &b), 0))
}

/// Trace `id` from the store, its spans read with the same conversion as
/// `--from` ([`crate::remote`]); an error answer like the API's when the
/// id is not one or no span of it is stored.
async fn load(store: &Store, id: &str) -> Result<Trace, Reply> {
    let id = id.trim_end_matches('/').to_ascii_lowercase();
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "a trace id is 32 hexadecimal digits",
        ));
    }
    let rows = store
        .trace(&id)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    if rows.len() > super::MAX_TRACE_SPANS {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the trace has {} spans; the viewer analyses at most {}",
                rows.len(),
                super::MAX_TRACE_SPANS
            ),
        ));
    }
    let spans = rows
        .iter()
        .filter_map(crate::remote::span_from_row)
        .collect();
    Trace::from_spans(spans)
        .map_err(|_| error(StatusCode::NOT_FOUND, "no span of this trace is stored"))
}

/// At most 100 characters of something from outside, for a message.
fn short(text: &str) -> String {
    text.chars().take(100).collect()
}

fn asset(body: &'static str, content_type: &'static str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let headers = reply.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    reply
}

fn json_reply(value: &Value) -> Reply {
    with_status(StatusCode::OK, value)
}

fn error(status: StatusCode, message: &str) -> Reply {
    with_status(status, &json!({ "error": message }))
}

fn with_status(status: StatusCode, value: &Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(value.to_string())));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply
}
