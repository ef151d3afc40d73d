//! The store's queries and retention, through `Store` and the JSON API
//! (`api_response`, the handler the collector serves): operations,
//! attribute search, trace search rows, service dependencies, retention
//! by traces and by bytes.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tracewire::{KeyValue, SpanKind, Status};
use tracewire_collect::{
    Collector, CollectorFile, Config, Edge, LogRow, Operation, Retention, SPAN_OVERHEAD_BYTES,
    SpanRow, Store, TimeRange, TraceQuery, Usage, api_response,
};

mod common;

/// 2025-12-06T23:00:00Z in Unix milliseconds: every span starts after it.
const BASE_MS: i64 = 1_765_062_000_000;
const MS: i64 = 1_000_000;

const INTERNAL: i32 = 1;
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

fn trace_id(trace: u32) -> String {
    format!("{trace:032x}")
}

/// A span of `trace` starting `start_ms` after [`BASE_MS`] and lasting
/// `duration_ms`; kind INTERNAL, status unset, no attributes, the resource
/// naming the service.
fn span(
    trace: u32,
    id: u64,
    parent: u64,
    service: &str,
    name: &str,
    start_ms: i64,
    duration_ms: i64,
) -> SpanRow {
    let start_ns = (BASE_MS + start_ms) * MS;
    SpanRow {
        trace_id: trace_id(trace),
        span_id: format!("{id:016x}"),
        parent_span_id: (parent != 0).then(|| format!("{parent:016x}")),
        service: service.to_owned(),
        name: name.to_owned(),
        kind: INTERNAL,
        start_ns,
        end_ns: start_ns + duration_ms * MS,
        status_code: 0,
        status_message: String::new(),
        trace_state: String::new(),
        flags: 1,
        attributes: "{}".to_owned(),
        events: "[]".to_owned(),
        links: "[]".to_owned(),
        resource: json!({ "service.name": service }).to_string(),
        scope: json!({ "name": "store-test", "version": "" }).to_string(),
    }
}

fn with(mut row: SpanRow, kind: i32, error: bool, attributes: Value) -> SpanRow {
    row.kind = kind;
    if error {
        row.status_code = 2;
        row.status_message = "failed".to_owned();
    }
    row.attributes = attributes.to_string();
    row
}

async fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(dir.path()).await.expect("the store opens")
}

async fn get(store: &Store, path: &str, query: &str) -> (u16, Value) {
    let reply = api_response(store, path, query).await;
    let status = reply.status().as_u16();
    let body = reply.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&body).expect("a JSON answer"),
    )
}

fn ids(answer: &Value) -> Vec<String> {
    let mut ids: Vec<String> = answer["traces"]
        .as_array()
        .expect("a traces array")
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn traces(numbers: &[u32]) -> Vec<String> {
    let mut ids: Vec<String> = numbers.iter().map(|n| trace_id(*n)).collect();
    ids.sort();
    ids
}

/// The query string of `attribute=` conditions, percent-encoded.
fn attributes_query(conditions: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in conditions {
        query.append_pair("attribute", &format!("{key}={value}"));
    }
    query.finish()
}

// ---------------------------------------------------------------- operations

#[tokio::test]
async fn operations_are_the_distinct_names_and_kinds_of_a_service_sorted_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store
        .insert(vec![
            with(
                span(1, 1, 0, "frontend", "GET /login", 0, 10),
                SERVER,
                false,
                json!({}),
            ),
            with(
                span(1, 2, 1, "frontend", "GET /login", 1, 5),
                CLIENT,
                false,
                json!({}),
            ),
            with(
                span(1, 3, 1, "frontend", "SELECT users", 2, 1),
                CLIENT,
                false,
                json!({}),
            ),
            with(
                span(2, 1, 0, "frontend", "GET /login", 100, 10),
                SERVER,
                false,
                json!({}),
            ),
            with(
                span(2, 2, 1, "frontend", "GET /cart", 101, 5),
                SERVER,
                false,
                json!({}),
            ),
            with(
                span(2, 3, 2, "backend", "load", 102, 1),
                INTERNAL,
                false,
                json!({}),
            ),
            span(3, 1, 0, "my svc+1", "tick", 200, 1),
        ])
        .await
        .unwrap();

    assert_eq!(
        get(&store, "/api/services/frontend/operations", "").await,
        (
            200,
            json!({"operations": [
                {"name": "GET /cart", "kind": "server"},
                {"name": "GET /login", "kind": "server"},
                {"name": "GET /login", "kind": "client"},
                {"name": "SELECT users", "kind": "client"},
            ]})
        )
    );
    assert_eq!(
        store.operations("backend").await.unwrap(),
        [Operation {
            name: "load".to_owned(),
            kind: INTERNAL
        }]
    );
    // The service is a percent-encoded path segment; `+` is a plus sign.
    assert_eq!(
        get(&store, "/api/services/my%20svc+1/operations", "").await,
        (
            200,
            json!({"operations": [{"name": "tick", "kind": "internal"}]})
        )
    );
    assert_eq!(
        get(&store, "/api/services/nobody/operations", "").await,
        (200, json!({"operations": []}))
    );
    for path in [
        "/api/services//operations",
        "/api/services/frontend/other",
        "/api/services/a/b/operations",
    ] {
        let (status, answer) = get(&store, path, "").await;
        assert_eq!(status, 404, "{path}");
        assert!(answer["error"].is_string());
    }
    assert_eq!(
        get(&store, "/api/services", "").await,
        (
            200,
            json!({"services": ["backend", "frontend", "my svc+1"]})
        )
    );
}

// ---------------------------------------------------------- attribute search

async fn attribute_store(dir: &tempfile::TempDir) -> Store {
    let store = open(dir).await;
    let mut one = with(
        span(1, 1, 0, "frontend", "GET /login", 0, 10),
        SERVER,
        false,
        json!({
            "http.route": "/login",
            "http.response.status_code": 200,
            "retry": true,
            "ratio": 1.5,
            "we\"ird.key": "q\"v",
            "back\\slash": "b",
            "url.query": "a=b",
            "tags": ["x", "y"],
            "ключ.名前": "значение",
            "tab\there": "t",
        }),
    );
    one.resource =
        json!({"service.name": "frontend", "deployment.environment": "prod"}).to_string();
    let mut two = with(
        span(2, 1, 0, "frontend", "GET /cart", 100, 10),
        SERVER,
        false,
        json!({"http.route": "/cart", "http.response.status_code": "200"}),
    );
    two.resource = json!({"service.name": "frontend", "deployment.environment": "dev"}).to_string();
    store
        .insert(vec![
            one,
            two,
            // Trace 3: the conditions a=1 and b=2 hold on different spans.
            with(
                span(3, 1, 0, "backend", "a", 200, 1),
                SERVER,
                false,
                json!({"a": 1}),
            ),
            with(
                span(3, 2, 1, "backend", "b", 201, 1),
                INTERNAL,
                false,
                json!({"b": 2}),
            ),
        ])
        .await
        .unwrap();
    store
}

#[tokio::test]
async fn attribute_conditions_match_the_string_rendering_of_span_or_resource_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let store = attribute_store(&dir).await;
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [u32]);
    let cases: &[Case<'_>] = &[
        (&[("http.route", "/login")], &[1]),
        // A number matches its JSON text, and so does the string "200".
        (&[("http.response.status_code", "200")], &[1, 2]),
        (&[("retry", "true")], &[1]),
        (&[("retry", "1")], &[]),
        (&[("ratio", "1.5")], &[1]),
        (&[("tags", r#"["x","y"]"#)], &[1]),
        // The resource's attributes count as the span's.
        (&[("deployment.environment", "prod")], &[1]),
        (&[("service.name", "backend")], &[3]),
        // Keys with dots, quotes and backslashes are keys, not paths.
        (&[("we\"ird.key", "q\"v")], &[1]),
        (&[("back\\slash", "b")], &[1]),
        (&[("ключ.名前", "значение")], &[1]),
        (&[("tab\there", "t")], &[1]),
        (&[("tab", "t")], &[]),
        (&[("we", "q\"v")], &[]),
        // The key ends at the first `=`; the value may hold more.
        (&[("url.query", "a=b")], &[1]),
        (
            &[("http.route", "/login"), ("deployment.environment", "prod")],
            &[1],
        ),
        (
            &[("http.route", "/login"), ("deployment.environment", "dev")],
            &[],
        ),
        // Every condition on the same span.
        (&[("a", "1")], &[3]),
        (&[("a", "1"), ("b", "2")], &[]),
        (&[("missing", "")], &[]),
    ];
    for (conditions, expected) in cases {
        let (status, answer) = get(&store, "/api/traces", &attributes_query(conditions)).await;
        assert_eq!(status, 200, "{conditions:?}: {answer}");
        assert_eq!(ids(&answer), traces(expected), "{conditions:?}");
    }

    // With the other span conditions, on the same span.
    let query = format!(
        "service=frontend&operation=GET%20/cart&{}",
        attributes_query(&[("http.response.status_code", "200")])
    );
    assert_eq!(
        ids(&get(&store, "/api/traces", &query).await.1),
        traces(&[2])
    );

    // Through the Rust API.
    let found = store
        .find_traces(&TraceQuery {
            attributes: vec![("we\"ird.key".to_owned(), "q\"v".to_owned())],
            limit: 10,
            ..TraceQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].trace_id, trace_id(1));
}

#[tokio::test]
async fn attribute_conditions_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = attribute_store(&dir).await;
    let sixteen = vec![("http.route", "/login"); 16];
    let (status, answer) = get(&store, "/api/traces", &attributes_query(&sixteen)).await;
    assert_eq!((status, ids(&answer)), (200, traces(&[1])));

    let seventeen = vec![("http.route", "/login"); 17];
    let (status, answer) = get(&store, "/api/traces", &attributes_query(&seventeen)).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("16"), "{answer}");

    let long = "k".repeat(256);
    let longer = "k".repeat(257);
    for (conditions, status) in [
        (vec![(long.as_str(), long.as_str())], 200),
        (vec![(longer.as_str(), "v")], 400),
        (vec![("k", longer.as_str())], 400),
    ] {
        let (got, _) = get(&store, "/api/traces", &attributes_query(&conditions)).await;
        assert_eq!(got, status);
    }
    for query in ["attribute=no-equals-sign", "attribute==value"] {
        let (status, answer) = get(&store, "/api/traces", query).await;
        assert_eq!(status, 400, "{query}");
        assert!(answer["error"].is_string());
    }
}

// ---------------------------------------------------------------- search rows

#[tokio::test]
async fn search_rows_summarise_each_trace_and_the_time_range_is_on_span_starts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store
        .insert(vec![
            with(
                span(1, 1, 0, "gateway", "GET /checkout", 1_000, 250),
                SERVER,
                false,
                json!({}),
            ),
            with(
                span(1, 2, 1, "payments", "charge", 1_010, 100),
                SERVER,
                true,
                json!({}),
            ),
            with(
                span(1, 3, 2, "payments", "SELECT cards", 1_020, 10),
                CLIENT,
                true,
                json!({}),
            ),
            with(
                span(2, 1, 0, "gateway", "GET /", 5_000, 5),
                SERVER,
                false,
                json!({}),
            ),
        ])
        .await
        .unwrap();
    let (status, answer) = get(&store, "/api/traces", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["traces"],
        json!([
            {"trace_id": trace_id(2), "start_unix_nano": (BASE_MS + 5_000) * MS,
             "duration_ns": 5 * MS, "span_count": 1, "error_count": 0,
             "root_service": "gateway", "root_name": "GET /", "services": ["gateway"]},
            {"trace_id": trace_id(1), "start_unix_nano": (BASE_MS + 1_000) * MS,
             "duration_ns": 250 * MS, "span_count": 3, "error_count": 2,
             "root_service": "gateway", "root_name": "GET /checkout",
             "services": ["gateway", "payments"]},
        ])
    );
    // A trace is found when one of its spans starts in the range.
    let range = |since: i64, until: i64| {
        format!("since_ms={}&until_ms={}", BASE_MS + since, BASE_MS + until)
    };
    for (query, expected) in [
        (range(1_015, 1_020), vec![1]),
        (range(1_021, 4_999), vec![]),
        (range(1_000, 5_000), vec![1, 2]),
        (format!("since_ms={}", BASE_MS + 1_021), vec![2]),
        (format!("until_ms={}", BASE_MS + 4_999), vec![1]),
    ] {
        let (status, answer) = get(&store, "/api/traces", &query).await;
        assert_eq!(status, 200);
        assert_eq!(ids(&answer), traces(&expected), "{query}");
    }
}

// --------------------------------------------------------------- dependencies

/// 100 login traces (gateway → auth over HTTP, auth → users over gRPC,
/// users → PostgreSQL, auth → SQLite through legacy `db.system`), 10
/// Kafka traces (orders → billing), and three odd ones. Trace `i` starts
/// at `i` seconds.
fn dependency_traces() -> Vec<SpanRow> {
    let mut spans = Vec::new();
    for i in 0..100u32 {
        let t = i64::from(i) * 1000;
        let i64i = i64::from(i);
        spans.extend([
            with(
                span(i, 1, 0, "gateway", "GET /login", t, 200),
                SERVER,
                false,
                json!({}),
            ),
            // The caller's client span: its duration is the call's latency.
            with(
                span(i, 2, 1, "gateway", "POST", t + 1, i64i + 1),
                CLIENT,
                i < 5,
                json!({"http.request.method": "POST"}),
            ),
            with(
                span(i, 3, 2, "auth", "POST /auth", t + 2, 1),
                SERVER,
                false,
                json!({"http.request.method": "POST", "http.route": "/auth"}),
            ),
            with(
                span(i, 4, 3, "auth", "users.Users/Get", t + 3, 10 + i64i % 10),
                CLIENT,
                false,
                json!({"rpc.system.name": "grpc"}),
            ),
            // An error on the callee's side counts.
            with(
                span(i, 5, 4, "users", "users.Users/Get", t + 4, 8),
                SERVER,
                i % 10 == 0,
                json!({"rpc.system.name": "grpc"}),
            ),
            with(
                span(i, 6, 5, "users", "SELECT users", t + 5, 2),
                CLIENT,
                false,
                json!({"db.system.name": "postgresql", "db.query.summary": "SELECT users"}),
            ),
            with(
                span(i, 7, 3, "auth", "SELECT sessions", t + 6, 1),
                CLIENT,
                i == 0,
                json!({"db.system": "sqlite"}),
            ),
        ]);
    }
    for j in 0..10u32 {
        let trace = 1000 + j;
        let t = 200_000 + i64::from(j) * 1000;
        spans.extend([
            with(
                span(trace, 1, 0, "orders", "send orders", t, 1),
                PRODUCER,
                false,
                json!({"messaging.system": "kafka", "messaging.destination.name": "orders"}),
            ),
            // No client span: the consumer's process span is the latency.
            with(
                span(
                    trace,
                    2,
                    1,
                    "billing",
                    "process orders",
                    t + 5,
                    (i64::from(j) + 1) * 10,
                ),
                CONSUMER,
                false,
                json!({"messaging.system": "kafka"}),
            ),
        ]);
    }
    spans.extend([
        // A database client span with a child in another service (a
        // proxy) is a call to that service, not to the database.
        with(
            span(2000, 1, 0, "reporting", "SELECT totals", 300_000, 30),
            CLIENT,
            false,
            json!({"db.system.name": "postgresql"}),
        ),
        with(
            span(2000, 2, 1, "pgproxy", "query", 300_001, 20),
            SERVER,
            false,
            json!({}),
        ),
        // An internal parent: the protocol comes from the callee.
        with(
            span(2001, 1, 0, "cron", "tick", 301_000, 50),
            INTERNAL,
            false,
            json!({}),
        ),
        with(
            span(2001, 2, 1, "reports", "GET /daily", 301_001, 40),
            SERVER,
            false,
            json!({"http.request.method": "GET"}),
        ),
        // A parent that is not stored: no edge.
        with(
            span(2002, 2, 1, "orphan", "x", 302_000, 1),
            SERVER,
            false,
            json!({}),
        ),
    ]);
    spans
}

fn edge(
    caller: &str,
    callee: &str,
    protocol: &str,
    calls: u64,
    errors: u64,
    p50_ms: i64,
    p99_ms: i64,
) -> Edge {
    Edge {
        caller: caller.to_owned(),
        callee: callee.to_owned(),
        protocol: protocol.to_owned(),
        calls,
        errors,
        p50_ns: p50_ms * MS,
        p99_ns: p99_ms * MS,
    }
}

#[tokio::test]
async fn dependencies_count_calls_errors_and_exact_percentiles_per_edge() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.insert(dependency_traces()).await.unwrap();

    let expected = vec![
        // Durations 10..=19 ms ten times each: rank 50 is 14, rank 99 is 19.
        edge("auth", "sqlite", "sql", 100, 1, 1, 1),
        edge("auth", "users", "grpc", 100, 10, 14, 19),
        edge("cron", "reports", "http", 1, 0, 40, 40),
        // Durations 1..=100 ms.
        edge("gateway", "auth", "http", 100, 5, 50, 99),
        // Durations 10, 20, …, 100 ms: rank 5 is 50, rank 10 is 100.
        edge("orders", "billing", "kafka", 10, 0, 50, 100),
        edge("reporting", "pgproxy", "other", 1, 0, 30, 30),
        edge("users", "postgresql", "sql", 100, 0, 2, 2),
    ];
    assert_eq!(
        store.dependencies(TimeRange::default()).await.unwrap(),
        expected
    );

    let (status, answer) = get(&store, "/api/dependencies", "").await;
    assert_eq!(status, 200);
    assert_eq!(answer["edges"].as_array().unwrap().len(), expected.len());
    assert_eq!(
        answer["edges"][3],
        json!({"caller": "gateway", "callee": "auth", "protocol": "http", "calls": 100,
               "errors": 5, "p50_ns": 50 * MS, "p99_ns": 99 * MS})
    );

    // The window is on the callee span's start (the database span's for
    // database calls): traces 0..=9 only.
    let query = format!("since_ms={BASE_MS}&until_ms={}", BASE_MS + 9_500);
    let (status, answer) = get(&store, "/api/dependencies", &query).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["edges"],
        json!([
            {"caller": "auth", "callee": "sqlite", "protocol": "sql", "calls": 10, "errors": 1,
             "p50_ns": MS, "p99_ns": MS},
            {"caller": "auth", "callee": "users", "protocol": "grpc", "calls": 10, "errors": 1,
             "p50_ns": 14 * MS, "p99_ns": 19 * MS},
            {"caller": "gateway", "callee": "auth", "protocol": "http", "calls": 10, "errors": 5,
             "p50_ns": 5 * MS, "p99_ns": 10 * MS},
            {"caller": "users", "callee": "postgresql", "protocol": "sql", "calls": 10,
             "errors": 0, "p50_ns": 2 * MS, "p99_ns": 2 * MS},
        ])
    );
    // The gateway → auth call of trace 0 starts its callee at 2 ms.
    let range = TimeRange {
        start_min_ns: Some((BASE_MS + 2) * MS),
        start_max_ns: Some((BASE_MS + 2) * MS),
    };
    assert_eq!(
        store.dependencies(range).await.unwrap(),
        [edge("gateway", "auth", "http", 1, 1, 1, 1)]
    );
    let (status, _) = get(&store, "/api/dependencies", "since_ms=-1").await;
    assert_eq!(status, 400);
    let (status, _) = get(&store, "/api/dependencies", "limit=3").await;
    assert_eq!(status, 400);
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        get(&open(&empty).await, "/api/dependencies", "").await,
        (200, json!({"edges": []}))
    );
}

// ------------------------------------------------------------------ retention

/// Trace `n`: two spans in two services, starting at `n` seconds.
fn two_span_trace(n: u32) -> Vec<SpanRow> {
    let t = i64::from(n) * 1000;
    vec![
        with(
            span(n, 1, 0, "front", "GET /", t, 10),
            SERVER,
            false,
            json!({"n": n}),
        ),
        with(
            span(n, 2, 1, "back", "work", t + 1, 5),
            SERVER,
            false,
            json!({"n": n}),
        ),
    ]
}

/// What retention counts for `spans`: their text plus the overhead.
fn bytes_of(spans: &[SpanRow]) -> u64 {
    spans
        .iter()
        .map(|s| {
            let text = s.service.len()
                + s.name.len()
                + s.status_message.len()
                + s.trace_state.len()
                + s.attributes.len()
                + s.events.len()
                + s.links.len()
                + s.resource.len()
                + s.scope.len();
            SPAN_OVERHEAD_BYTES + u64::try_from(text).unwrap()
        })
        .sum()
}

async fn stored_ids(store: &Store) -> Vec<String> {
    let found = store
        .find_traces(&TraceQuery {
            limit: 1000,
            ..TraceQuery::default()
        })
        .await
        .unwrap();
    for t in &found {
        assert_eq!(t.span_count, 2, "trace {} is whole", t.trace_id);
    }
    let mut ids: Vec<String> = found.into_iter().map(|t| t.trace_id).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn usage_counts_traces_and_bytes_and_a_replaced_span_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    assert_eq!(store.usage().await.unwrap(), Usage::default());
    let mut spans = two_span_trace(1);
    spans.extend(two_span_trace(2));
    store.insert(spans.clone()).await.unwrap();
    let usage = Usage {
        traces: 2,
        bytes: bytes_of(&spans),
        ..Usage::default()
    };
    assert_eq!(store.usage().await.unwrap(), usage);
    // The same batch again (a retried export) replaces the spans.
    store.insert(spans.clone()).await.unwrap();
    assert_eq!(store.usage().await.unwrap(), usage);
    // A replacement with other text changes the count by the difference.
    let mut longer = spans[0].clone();
    longer.attributes = json!({"n": 1, "more": "0123456789"}).to_string();
    store.insert(vec![longer.clone()]).await.unwrap();
    let grown = bytes_of(&[longer]) - bytes_of(&spans[..1]);
    assert_eq!(store.usage().await.unwrap().bytes, usage.bytes + grown);
    store.close().await;
    // Counted again from the tables when reopened.
    let store = open(&dir).await;
    assert_eq!(store.usage().await.unwrap().bytes, usage.bytes + grown);
    assert_eq!(store.traces_evicted(), 0);
}

/// One batch with new traces, a span stored before (retried), a span
/// given twice and a new span of a stored trace: every trace counts each
/// of its spans once, and the totals are the sum of what is stored.
#[tokio::test]
async fn a_mixed_batch_counts_every_span_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let first = two_span_trace(300);
    store.insert(first.clone()).await.unwrap();
    let mut batch = two_span_trace(2);
    batch.push(first[1].clone());
    batch.extend(two_span_trace(3));
    batch.push(batch[0].clone());
    // A third span of trace 300, starting before every other trace.
    batch.push(span(300, 3, 1, "back", "early", 500, 5));
    // Enough new traces to fill several statements.
    for n in 10..260 {
        batch.extend(two_span_trace(n));
    }
    store.insert(batch).await.unwrap();

    let found = store
        .find_traces(&TraceQuery {
            limit: 1000,
            ..TraceQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 253);
    for t in &found {
        let expected = if t.trace_id == trace_id(300) { 3 } else { 2 };
        assert_eq!(t.span_count, expected, "trace {}", t.trace_id);
    }
    let mut stored = first.clone();
    stored.push(span(300, 3, 1, "back", "early", 500, 5));
    stored.extend(two_span_trace(2));
    stored.extend(two_span_trace(3));
    for n in 10..260 {
        stored.extend(two_span_trace(n));
    }
    let usage = Usage {
        traces: 253,
        bytes: bytes_of(&stored),
        ..Usage::default()
    };
    assert_eq!(store.usage().await.unwrap(), usage);
    // Trace 300 now starts with its new span: it is the oldest to evict.
    let store_with_one = {
        store.close().await;
        Store::open_with(
            dir.path(),
            Retention {
                max_traces: 252,
                max_bytes: u64::MAX,
                ..Retention::default()
            },
        )
        .await
        .unwrap()
    };
    assert_eq!(store_with_one.traces_evicted(), 1);
    assert!(
        store_with_one
            .trace(&trace_id(300))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store_with_one.usage().await.unwrap().traces, 252);
}

/// A log record of trace 7 (never stored as a trace) at `time_ns`.
fn log_of_a_trace_never_stored(time_ns: i64) -> LogRow {
    LogRow {
        trace_id: Some(trace_id(7)),
        span_id: None,
        time_ns,
        observed_time_ns: time_ns,
        service: "svc".to_owned(),
        severity_number: 9,
        severity_text: "INFO".to_owned(),
        body: json!(format!("record {time_ns}")).to_string(),
        attributes: "{}".to_owned(),
        resource: "{}".to_owned(),
        scope: "{}".to_owned(),
        flags: 0,
    }
}

/// Log records whose trace is never stored (or that have none) are
/// bounded by their own number and bytes: past either, the oldest by time
/// go; the totals follow.
#[tokio::test]
async fn past_max_logs_or_max_log_bytes_the_oldest_log_records_go() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path(),
        Retention {
            max_logs: 3,
            ..Retention::default()
        },
    )
    .await
    .unwrap();
    let logs: Vec<LogRow> = [5, 1, 4, 2, 3]
        .into_iter()
        .map(log_of_a_trace_never_stored)
        .collect();
    store.insert_logs(&logs).await.unwrap();
    let times = |logs: Vec<LogRow>| logs.iter().map(|l| l.time_ns).collect::<Vec<_>>();
    assert_eq!(
        times(store.trace_logs(&trace_id(7)).await.unwrap()),
        [3, 4, 5]
    );
    let usage = store.usage().await.unwrap();
    // Every record here has the same size.
    let one = usage.log_bytes / 3;
    assert_eq!((usage.logs, usage.log_bytes), (3, 3 * one));
    store.close().await;

    // Reopened with room for two records' bytes.
    let store = Store::open_with(
        dir.path(),
        Retention {
            max_log_bytes: 2 * one,
            ..Retention::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(times(store.trace_logs(&trace_id(7)).await.unwrap()), [4, 5]);
    let usage = store.usage().await.unwrap();
    assert_eq!((usage.logs, usage.log_bytes), (2, 2 * one));
    assert_eq!(usage.traces, 0);
}

#[tokio::test]
async fn past_max_traces_the_oldest_traces_go_whole() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_traces: 3,
        max_bytes: u64::MAX,
        ..Retention::default()
    };
    let store = Store::open_with(dir.path(), retention).await.unwrap();
    // Inserted out of order: age is the first span's start.
    for n in [2, 0, 4] {
        store.insert(two_span_trace(n)).await.unwrap();
    }
    assert_eq!(store.traces_evicted(), 0);
    store.insert(two_span_trace(1)).await.unwrap();
    assert_eq!(stored_ids(&store).await, traces(&[1, 2, 4]));
    store.insert(two_span_trace(3)).await.unwrap();
    assert_eq!(stored_ids(&store).await, traces(&[2, 3, 4]));
    assert_eq!(store.traces_evicted(), 2);
    assert_eq!(store.usage().await.unwrap().traces, 3);

    // One batch far over the bound (more than one eviction chunk).
    let batch: Vec<SpanRow> = (100..700).flat_map(two_span_trace).collect();
    store.insert(batch).await.unwrap();
    assert_eq!(stored_ids(&store).await, traces(&[697, 698, 699]));
    assert_eq!(store.traces_evicted(), 2 + 600);
    let usage = store.usage().await.unwrap();
    let kept: Vec<SpanRow> = (697..700).flat_map(two_span_trace).collect();
    assert_eq!(
        usage,
        Usage {
            traces: 3,
            bytes: bytes_of(&kept),
            ..Usage::default()
        }
    );
    // Every span of an evicted trace is gone.
    assert_eq!(store.trace(&trace_id(0)).await.unwrap(), []);
    assert_eq!(store.trace(&trace_id(100)).await.unwrap(), []);
}

#[tokio::test]
async fn past_max_bytes_the_oldest_traces_go_whole() {
    let dir = tempfile::tempdir().unwrap();
    let one = bytes_of(&two_span_trace(10));
    // Traces 10..=19 are the same size; room for three and a half.
    assert!((10..20).all(|n| bytes_of(&two_span_trace(n)) == one));
    let retention = Retention {
        max_traces: 1000,
        max_bytes: 3 * one + one / 2,
        ..Retention::default()
    };
    let store = Store::open_with(dir.path(), retention).await.unwrap();
    for n in 10..20 {
        store.insert(two_span_trace(n)).await.unwrap();
        let usage = store.usage().await.unwrap();
        assert!(usage.bytes <= retention.max_bytes, "{usage:?}");
    }
    assert_eq!(stored_ids(&store).await, traces(&[17, 18, 19]));
    assert_eq!(store.traces_evicted(), 7);
    assert_eq!(
        store.usage().await.unwrap(),
        Usage {
            traces: 3,
            bytes: 3 * one,
            ..Usage::default()
        }
    );
    store.close().await;

    // Reopened with smaller bounds: applied at once.
    let store = Store::open_with(
        dir.path(),
        Retention {
            max_traces: 1000,
            max_bytes: one,
            ..Retention::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(stored_ids(&store).await, traces(&[19]));
    assert_eq!(store.traces_evicted(), 2);
}

#[tokio::test]
async fn operations_and_services_of_evicted_traces_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_traces: 1,
        max_bytes: u64::MAX,
        ..Retention::default()
    };
    let store = Store::open_with(dir.path(), retention).await.unwrap();
    store
        .insert(vec![span(1, 1, 0, "old", "gone", 0, 1)])
        .await
        .unwrap();
    store
        .insert(vec![span(2, 1, 0, "new", "kept", 1000, 1)])
        .await
        .unwrap();
    assert_eq!(store.services().await.unwrap(), ["new"]);
    assert_eq!(store.operations("old").await.unwrap(), []);
}

#[test]
fn the_yaml_sets_the_retention() {
    let yaml = "receivers: {otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}}\n\
                exporters: {tracewire_store: {max_traces: 5, max_bytes: 4096, max_logs: 9, max_log_bytes: 8192}}\n\
                service: {pipelines: {traces: {receivers: [otlp], exporters: [tracewire_store]}}}\n";
    let config = Config::default().apply(CollectorFile::from_yaml(yaml).unwrap());
    assert_eq!(
        config.retention,
        Retention {
            max_traces: 5,
            max_bytes: 4096,
            max_logs: 9,
            max_log_bytes: 8192,
        }
    );
    let partial = yaml.replace(
        "max_traces: 5, max_bytes: 4096, max_logs: 9, max_log_bytes: 8192",
        "max_traces: 7",
    );
    let config = Config::default().apply(CollectorFile::from_yaml(&partial).unwrap());
    assert_eq!(config.retention.max_traces, 7);
    assert_eq!(config.retention.max_bytes, Retention::DEFAULT.max_bytes);
    assert_eq!(config.retention.max_logs, Retention::DEFAULT.max_logs);
    assert_eq!(
        Config::default().retention,
        Retention {
            max_traces: 100_000,
            max_bytes: 1 << 30,
            max_logs: 1_000_000,
            max_log_bytes: 256 << 20,
        }
    );
    for bad in [
        "max_traces: -1",
        "max_bytes: lots",
        "max_logs: 1.5",
        "max_age: 5",
    ] {
        let yaml = yaml.replace(
            "max_traces: 5, max_bytes: 4096, max_logs: 9, max_log_bytes: 8192",
            bad,
        );
        let error = CollectorFile::from_yaml(&yaml).unwrap_err().to_string();
        assert!(error.contains("tracewire_store"), "{bad}: {error}");
    }
}

#[tokio::test]
async fn the_collector_evicts_and_counts_past_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        grpc_listen: None,
        data_dir: dir.path().to_path_buf(),
        retention: Retention {
            max_traces: 2,
            max_bytes: u64::MAX,
            ..Retention::default()
        },
        ..Config::default()
    })
    .await
    .unwrap();
    let start = SystemTime::now() - Duration::from_secs(60);
    for n in 1..=4u32 {
        let root = common::span(
            "store-test",
            u128::from(n),
            1,
            0,
            "GET /",
            SpanKind::Server,
            start + Duration::from_secs(u64::from(n)),
            5,
            Status::Unset,
            vec![KeyValue::new("n", i64::from(n))],
        );
        common::export(collector.local_addr(), "front", false, vec![root]).await;
    }
    for _ in 0..200 {
        if collector.stats().spans_stored >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(collector.stats().spans_stored, 4);
    assert_eq!(collector.stats().traces_evicted, 2);
    let (_, answer) = get(collector.store(), "/api/traces", "").await;
    assert_eq!(ids(&answer), traces(&[3, 4]));
    let stats = collector.shutdown().await;
    assert_eq!(stats.traces_evicted, 2);
}
