//! User headers survive; bad trace headers start new traces and never fail
//! consumption.

use std::time::Duration;

use rdkafka::consumer::Consumer as _;
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracewire::SpanExt as _;
use tracewire_rdkafka::{TracedFutureProducer, TracedStreamConsumer};
use tracing::Instrument as _;

use crate::support::{Broker, traced, within};

/// A message's key and the headers it carries.
type Case<'a> = (&'a str, Vec<(&'a str, Vec<u8>)>);

const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn user_headers_survive_and_stale_trace_headers_are_replaced() {
    let broker = Broker::start();
    let topic = broker.topic("headers", 1).await;
    let (exporter, _guard) = traced();
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).unwrap();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "tenant",
            value: Some("acme"),
        })
        .insert(Header {
            key: "TraceParent",
            value: Some(VALID),
        })
        .insert(Header {
            key: "content-type",
            value: Some("application/json"),
        });
    producer
        .send(
            FutureRecord::to(&topic)
                .key("k")
                .payload("x")
                .headers(headers),
            Duration::from_secs(10),
        )
        .instrument(tracing::info_span!("request"))
        .await
        .unwrap();
    let consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(&broker.consumer_config()).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let message = within("recv", consumer.recv()).await.unwrap();
    let received = message.headers().expect("headers");
    let pairs: Vec<(String, Vec<u8>)> = received
        .iter()
        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
        .collect();
    let send = exporter.span(&format!("send {topic}"));
    let expected = format!(
        "00-{}-{}-{}",
        send.span_context.trace_id(),
        send.span_context.span_id(),
        send.span_context.flags().to_hex()
    );
    let traceparents: Vec<_> = pairs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
        .collect();
    assert_eq!(traceparents.len(), 1, "{pairs:?}");
    assert_eq!(traceparents[0].1, expected.as_bytes());
    assert!(pairs.contains(&("tenant".into(), b"acme".to_vec())));
    assert!(pairs.contains(&("content-type".into(), b"application/json".to_vec())));
    assert_eq!(
        message.span().span_context().unwrap().trace_id(),
        send.span_context.trace_id()
    );
}

#[tokio::test]
async fn bad_trace_headers_start_new_traces() {
    let broker = Broker::start();
    let topic = broker.topic("hostile", 1).await;
    let plain: FutureProducer = broker.producer_config().create().unwrap();
    let huge = format!("k={}", "v".repeat(100_000));
    let cases: Vec<Case<'_>> = vec![
        ("malformed", vec![("traceparent", b"00-zz-yy-01".to_vec())]),
        (
            "uppercase",
            vec![("traceparent", VALID.to_uppercase().into_bytes())],
        ),
        (
            "duplicated",
            vec![("traceparent", VALID.into()), ("traceparent", VALID.into())],
        ),
        (
            "not-utf8",
            vec![("traceparent", vec![0xff, 0xfe, 0x00, 0x80])],
        ),
        (
            "oversized",
            vec![
                (
                    "traceparent",
                    format!("{VALID}{}", "-x".repeat(50_000)).into_bytes(),
                ),
                ("tracestate", huge.into_bytes()),
            ],
        ),
        ("empty", vec![("traceparent", Vec::new())]),
    ];
    for (key, headers) in &cases {
        let mut owned = OwnedHeaders::new();
        for (k, v) in headers {
            owned = owned.insert(Header {
                key: k,
                value: Some(v.as_slice()),
            });
        }
        plain
            .send(
                FutureRecord::to(&topic)
                    .key(*key)
                    .payload("x")
                    .headers(owned),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let (exporter, _guard) = traced();
    let consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(&broker.consumer_config()).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    for _ in &cases {
        let message = within("recv", consumer.recv())
            .await
            .expect("consumption never fails");
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let cx = message.span().span_context().unwrap();
        assert!(cx.is_valid(), "{key}");
        assert_ne!(
            cx.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "{key} continued the bad trace"
        );
    }
    let processes = exporter.spans_named(&format!("process {topic}"));
    assert_eq!(processes.len(), cases.len());
    assert!(
        processes.iter().all(|p| !p.parent_span_id.is_valid()),
        "each starts a new trace"
    );
}
