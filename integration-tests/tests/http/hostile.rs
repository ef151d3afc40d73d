//! Invalid and hostile trace headers never fail a request: an invalid
//! `traceparent` starts a new trace, a bad `tracestate` is dropped while a
//! valid `traceparent` is kept.

use axum::Router;
use axum::routing::get;
use http::HeaderValue;
use tracewire::SpanData;
use tracewire_tower::TraceLayer;

use crate::support::{self, str_attr};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn app() -> Router {
    Router::new()
        .route("/probe", get(|| async { "ok" }))
        .route(
            "/baggage",
            get(|| async { tracewire::current_context().baggage().len().to_string() }),
        )
        .layer(TraceLayer::server())
}

/// Sends one request per case (`(header name, raw value)` pairs) with a
/// plain reqwest client, asserts every answer is 200, and returns each
/// case's server span.
async fn probe(
    exporter: &tracewire::testing::InMemoryExporter,
    cases: &[Headers],
) -> Vec<SpanData> {
    let url = support::serve(app()).await;
    let client = reqwest::Client::new();
    for (i, headers) in cases.iter().enumerate() {
        let mut request = client.get(format!("{url}/probe?case={i}"));
        for (name, value) in headers {
            let value = HeaderValue::from_bytes(value).expect("a sendable header value");
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), 200, "case {i}");
        assert_eq!(response.text().await.unwrap(), "ok");
    }
    let spans = support::wait_for_spans(exporter, cases.len()).await;
    (0..cases.len())
        .map(|i| {
            let query = format!("case={i}");
            spans
                .iter()
                .find(|s| str_attr(s, "url.query") == query)
                .unwrap_or_else(|| panic!("no span for case {i}"))
                .clone()
        })
        .collect()
}

/// The headers of one request, as raw bytes.
type Headers = Vec<(&'static str, Vec<u8>)>;

fn traceparent(value: impl Into<Vec<u8>>) -> Headers {
    vec![("traceparent", value.into())]
}

#[test]
fn invalid_traceparents_start_a_new_trace() {
    support::run(|exporter| async move {
        let invalid: Vec<(&str, Headers)> = vec![
            (
                "uppercase hex",
                traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"),
            ),
            (
                "non-hex digit",
                traceparent("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"),
            ),
            (
                "short trace id",
                traceparent("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"),
            ),
            (
                "long parent id",
                traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b70-01"),
            ),
            (
                "short flags",
                traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"),
            ),
            (
                "all-zero trace id",
                traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            ),
            (
                "all-zero parent id",
                traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            ),
            (
                "version ff",
                traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ),
            (
                "version 00 with trailing data",
                traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"),
            ),
            (
                "higher version, too short",
                traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"),
            ),
            (
                "higher version, bad separator after flags",
                traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"),
            ),
            (
                "wrong separators",
                traceparent("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01"),
            ),
            ("empty", traceparent("")),
            (
                "non-ASCII bytes",
                traceparent(
                    b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-\xff\xfe".to_vec(),
                ),
            ),
            ("huge", traceparent("0".repeat(16 * 1024))),
            (
                "two traceparent headers",
                vec![
                    ("traceparent", VALID.into()),
                    (
                        "traceparent",
                        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
                    ),
                ],
            ),
        ];
        let cases: Vec<_> = invalid.iter().map(|(_, h)| h.clone()).collect();
        let spans = probe(&exporter, &cases).await;
        for ((what, _), span) in invalid.iter().zip(&spans) {
            assert_ne!(
                span.span_context.trace_id().to_string(),
                TRACE,
                "{what}: must not continue the trace"
            );
            assert!(
                !span.parent_span_id.is_valid(),
                "{what}: a new trace has no parent"
            );
            assert!(span.span_context.trace_state().is_empty(), "{what}");
        }
        // Every new trace is distinct.
        let mut ids: Vec<_> = spans.iter().map(|s| s.span_context.trace_id()).collect();
        ids.sort_by_key(|id| id.to_u128());
        ids.dedup();
        assert_eq!(ids.len(), spans.len());
    });
}

#[test]
fn valid_traceparents_are_continued() {
    // The positive controls for the test above: the same server continues
    // well-formed contexts, including a future version with extra fields.
    support::run(|exporter| async move {
        let cases = vec![
            traceparent(VALID),
            traceparent(format!(" {VALID}\t")),
            traceparent(
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds",
            ),
        ];
        let spans = probe(&exporter, &cases).await;
        for span in &spans {
            assert_eq!(span.span_context.trace_id().to_string(), TRACE);
            assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
            assert!(span.parent_is_remote);
        }
    });
}

#[test]
fn bad_tracestate_is_dropped_and_traceparent_kept() {
    support::run(|exporter| async move {
        let with_state =
            |state: Vec<u8>| vec![("traceparent", VALID.into()), ("tracestate", state)];
        let members_33 = (0..33)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let huge = format!("big={}", "x".repeat(16 * 1024));
        let bad = [
            ("33 members", with_state(members_33.into_bytes())),
            ("huge member", with_state(huge.into_bytes())),
            ("uppercase key", with_state(b"Vendor=1".to_vec())),
            ("value with =", with_state(b"a=b=c".to_vec())),
            ("non-ASCII bytes", with_state(b"a=\xff\xfe".to_vec())),
        ];
        let good = [
            ("one member", with_state(b"vendor=abc".to_vec())),
            ("duplicate keys", with_state(b"a=1,b=2,a=3".to_vec())),
            (
                "two header lines",
                vec![
                    ("traceparent", VALID.into()),
                    ("tracestate", b"vendor=abc".to_vec()),
                    ("tracestate", b"other=1".to_vec()),
                ],
            ),
        ];
        let cases: Vec<_> = bad.iter().chain(&good).map(|(_, h)| h.clone()).collect();
        let spans = probe(&exporter, &cases).await;
        for ((what, _), span) in bad.iter().zip(&spans) {
            assert_eq!(
                span.span_context.trace_id().to_string(),
                TRACE,
                "{what}: traceparent kept"
            );
            assert!(
                span.span_context.trace_state().is_empty(),
                "{what}: dropped"
            );
        }
        let one_member = &spans[bad.len()];
        assert_eq!(
            one_member.span_context.trace_state().get("vendor"),
            Some("abc")
        );
        // Duplicate keys keep the header (W3C test_tracestate_duplicated_keys);
        // the first member of a key wins.
        let duplicates = &spans[bad.len() + 1];
        assert_eq!(
            duplicates.span_context.trace_state().get("a"),
            Some("1"),
            "{:?}",
            spans
                .iter()
                .map(|s| (
                    str_attr(s, "url.query"),
                    s.span_context.trace_state().header()
                ))
                .collect::<Vec<_>>()
        );
        assert_eq!(duplicates.span_context.trace_state().get("b"), Some("2"));
        let joined = &spans[bad.len() + 2];
        assert_eq!(joined.span_context.trace_state().get("vendor"), Some("abc"));
        assert_eq!(joined.span_context.trace_state().get("other"), Some("1"));
    });
}

#[test]
fn hostile_headers_elsewhere_never_fail_the_request() {
    support::run(|exporter| async move {
        let cases = vec![
            vec![("baggage", b"user=\xff\xfe;x".to_vec())],
            vec![("baggage", "k=v,".repeat(4096).into_bytes())],
            vec![("user-agent", b"curl/\xff\xfe".to_vec())],
            vec![("forwarded", b"for=\"[::1".to_vec())],
            vec![("x-forwarded-for", b"\xff, 10.0.0.1".to_vec())],
            vec![("b3", b"not-b3-at-all".to_vec())],
        ];
        let spans = probe(&exporter, &cases).await;
        // The non-ASCII user agent is not recorded rather than mangled.
        assert!(spans[2].attribute("user_agent.original").is_none());
        for span in &spans {
            assert!(!span.parent_span_id.is_valid());
            assert_eq!(str_attr(span, "client.address"), "127.0.0.1");
        }
    });
}

/// 400 KB: the size of the largest header block hyper accepts by default
/// (a larger one is answered 431 by hyper before any layer runs).
const OVERSIZED: usize = 400 * 1000;

#[test]
fn oversized_and_repeated_propagation_headers_are_bounded() {
    support::run(|exporter| async move {
        let big_hex = "a".repeat(OVERSIZED);
        let cases: Vec<(&str, Headers, bool)> = vec![
            // (what, headers, continues the caller's trace)
            ("400 KB traceparent", traceparent(big_hex.clone()), false),
            (
                "400 KB tracestate",
                vec![
                    ("traceparent", VALID.into()),
                    (
                        "tracestate",
                        format!("k={}", "v".repeat(OVERSIZED)).into_bytes(),
                    ),
                ],
                true,
            ),
            (
                "a valid tracestate member, then 400 KB of members",
                vec![
                    ("traceparent", VALID.into()),
                    ("tracestate", "k=v,".repeat(OVERSIZED / 4).into_bytes()),
                ],
                true,
            ),
            (
                "400 KB b3",
                vec![("b3", big_hex.clone().into_bytes())],
                false,
            ),
            (
                "a valid b3 followed by 400 KB",
                vec![(
                    "b3",
                    format!("{TRACE}-00f067aa0ba902b7-1-{big_hex}").into_bytes(),
                )],
                false,
            ),
            (
                "400 KB X-B3-TraceId",
                vec![
                    ("x-b3-traceid", big_hex.clone().into_bytes()),
                    ("x-b3-spanid", b"00f067aa0ba902b7".to_vec()),
                ],
                false,
            ),
            (
                "400 KB X-B3-SpanId",
                vec![
                    ("x-b3-traceid", TRACE.into()),
                    ("x-b3-spanid", big_hex.clone().into_bytes()),
                ],
                false,
            ),
            (
                "repeated X-B3-TraceId",
                vec![
                    ("x-b3-traceid", TRACE.into()),
                    ("x-b3-traceid", TRACE.into()),
                    ("x-b3-spanid", b"00f067aa0ba902b7".to_vec()),
                ],
                false,
            ),
            (
                "tab inside traceparent",
                traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736\t-00f067aa0ba902b7-01"),
                false,
            ),
        ];
        let headers: Vec<_> = cases.iter().map(|(_, h, _)| h.clone()).collect();
        let spans = probe(&exporter, &headers).await;
        for ((what, _, continues), span) in cases.iter().zip(&spans) {
            let continued = span.span_context.trace_id().to_string() == TRACE;
            assert_eq!(continued, *continues, "{what}");
            assert!(span.span_context.trace_state().len() <= 32, "{what}");
        }
    });
}

#[test]
fn a_400_kb_baggage_header_keeps_at_most_64_members() {
    support::run(|_exporter| async move {
        let url = support::serve(app()).await;
        let client = reqwest::Client::new();
        let distinct: String = (0..45_000).map(|i| format!("k{i}=v,")).collect();
        let cases: Vec<(&str, Vec<&str>, usize)> = vec![
            // (what, baggage header lines, members kept)
            (
                "45,000 distinct keys in one line",
                vec![&distinct[..OVERSIZED.min(distinct.len())]],
                64,
            ),
            (
                "two lines of 45,000 keys",
                vec![&distinct[..200_000], &distinct[..150_000]],
                64,
            ),
            ("three members", vec!["a=1,b=2;prop,c=%20x"], 3),
        ];
        for (what, lines, kept) in cases {
            let mut request = client.get(format!("{url}/baggage"));
            for line in lines {
                request = request.header("baggage", line);
            }
            let response = request.send().await.expect("sent");
            assert_eq!(response.status(), 200, "{what}");
            let members: usize = response.text().await.unwrap().parse().unwrap();
            assert_eq!(members, kept, "{what}");
        }
    });
}
