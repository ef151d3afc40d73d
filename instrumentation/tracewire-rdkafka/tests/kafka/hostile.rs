//! Hostile Kafka headers: names that are not UTF-8, and `traceparent`,
//! `tracestate`, `baggage`, `b3` and `X-B3-*` headers that are oversized
//! (400 KB), repeated, not UTF-8 or hold control characters. Every traced
//! consumer processes every message, in a span, with the documented
//! outcome, and goes on to the next message.
//!
//! rdkafka cannot write a header name that is not UTF-8 (its keys are
//! `&str`), so [`raw_produce`] writes the records itself: one Produce v3
//! request with a v2 record batch, straight to the partition's leader.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::producer::FutureRecord;
use tracewire::propagation::{
    B3Encoding, B3Propagator, BaggagePropagator, CompositePropagator, Propagator,
    TraceContextPropagator,
};
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanExt as _, Value};
use tracewire_rdkafka::{TracedBaseConsumer, TracedFutureProducer, TracedStreamConsumer};
use tracing::Instrument as _;

use crate::support::{Broker, traced, within};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const B3_VALID: &str = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1";
const HUGE: usize = 400 * 1024;

/// What the process span of a message must show.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Trace {
    /// A child of `PARENT` in `TRACE`.
    Continues,
    /// The root of a new trace.
    New,
}

/// A hostile message: its key, its headers (raw names and values) and the
/// outcome.
struct Case {
    key: &'static str,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    trace: Trace,
    /// The members the process span's context keeps (baggage), when checked.
    baggage: Option<usize>,
    /// The tracestate the process span keeps, when checked.
    tracestate: Option<&'static str>,
}

fn h(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> (Vec<u8>, Vec<u8>) {
    (name.into(), value.into())
}

fn case(key: &'static str, trace: Trace, headers: Vec<(Vec<u8>, Vec<u8>)>) -> Case {
    Case {
        key,
        headers,
        trace,
        baggage: None,
        tracestate: None,
    }
}

/// `count` distinct list members `k{i}=v`, joined with `,`.
fn members(count: usize) -> String {
    (0..count)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A 400 KB list of distinct members.
fn huge_list() -> String {
    let mut list = members(HUGE / 8);
    list.truncate(HUGE);
    list
}

fn cases() -> Vec<Case> {
    use Trace::{Continues, New};
    let bad_names = |n: usize| -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| h(vec![b'x', 0xff, 0xfe, b'0' + i as u8], "v"))
            .collect()
    };
    let with_valid = |mut headers: Vec<(Vec<u8>, Vec<u8>)>| {
        headers.insert(0, h("traceparent", VALID));
        headers
    };
    let mut cases = vec![
        // Header names that are not UTF-8 are skipped.
        case(
            "name-not-utf8-first",
            Continues,
            vec![
                h([0xff, 0xfe], "x"),
                h("traceparent", VALID),
                h("baggage", "k=v"),
            ],
        ),
        case(
            "name-not-utf8-last",
            Continues,
            vec![h("traceparent", VALID), h(b"tenant\xc0".to_vec(), "acme")],
        ),
        case(
            "name-not-utf8-traceparent",
            New,
            vec![h(b"traceparent\xff".to_vec(), VALID)],
        ),
        case(
            "names-not-utf8-seven",
            Continues,
            [bad_names(7), vec![h("traceparent", VALID)]].concat(),
        ),
        // After eight of them, the rest of the headers are not read.
        case(
            "names-not-utf8-eight",
            New,
            [bad_names(8), vec![h("traceparent", VALID)]].concat(),
        ),
        // traceparent: oversized, cut after a valid member, repeated, not
        // UTF-8, control characters: a new trace.
        case(
            "traceparent-oversized",
            New,
            vec![h("traceparent", "f".repeat(HUGE))],
        ),
        case(
            "traceparent-oversized-valid-start",
            New,
            vec![h("traceparent", format!("{VALID},{}", "x".repeat(HUGE)))],
        ),
        case(
            "traceparent-repeated",
            New,
            vec![h("traceparent", VALID), h("TraceParent", VALID)],
        ),
        case(
            "traceparent-repeated-many",
            New,
            (0..500).map(|_| h("traceparent", VALID)).collect(),
        ),
        case(
            "traceparent-not-utf8",
            New,
            vec![h(
                "traceparent",
                [&VALID.as_bytes()[..54], &[0xff]].concat(),
            )],
        ),
        case(
            "traceparent-control",
            New,
            vec![h("traceparent", format!("{VALID}\r\n"))],
        ),
        case(
            "traceparent-nul",
            New,
            vec![h("traceparent", format!("\0{}", &VALID[1..]))],
        ),
        // b3 and X-B3-*.
        case("b3-valid", Continues, vec![h("b3", B3_VALID)]),
        case("b3-oversized", New, vec![h("b3", "a".repeat(HUGE))]),
        case(
            "b3-oversized-valid-start",
            New,
            vec![h("b3", format!("{B3_VALID},{}", "x".repeat(HUGE)))],
        ),
        // Repeated: the first counts.
        case(
            "b3-repeated",
            Continues,
            vec![h("b3", B3_VALID), h("b3", "garbage")],
        ),
        case(
            "b3-not-utf8",
            New,
            vec![h("b3", [B3_VALID.as_bytes(), &[0xc3]].concat())],
        ),
        case(
            "b3-control",
            New,
            vec![h("b3", format!("{TRACE}\x07-{PARENT}-1"))],
        ),
        case(
            "x-b3-valid",
            Continues,
            vec![
                h("X-B3-TraceId", TRACE),
                h("X-B3-SpanId", PARENT),
                h("X-B3-Sampled", "1"),
            ],
        ),
        case(
            "x-b3-traceid-oversized",
            New,
            vec![
                h("X-B3-TraceId", "a".repeat(HUGE)),
                h("X-B3-SpanId", PARENT),
                h("X-B3-Sampled", "1"),
            ],
        ),
        case(
            "x-b3-spanid-not-utf8",
            New,
            vec![
                h("X-B3-TraceId", TRACE),
                h("X-B3-SpanId", [PARENT.as_bytes(), &[0xff]].concat()),
                h("X-B3-Sampled", "1"),
            ],
        ),
        case(
            "x-b3-sampled-control",
            New,
            vec![
                h("X-B3-TraceId", TRACE),
                h("X-B3-SpanId", PARENT),
                h("X-B3-Sampled", "1\x01"),
            ],
        ),
        case(
            "x-b3-repeated",
            Continues,
            vec![
                h("X-B3-TraceId", TRACE),
                h("X-B3-TraceId", "zz"),
                h("X-B3-SpanId", PARENT),
                h("X-B3-SpanId", "zz"),
                h("X-B3-Sampled", "1"),
            ],
        ),
    ];
    // tracestate: a bad tracestate never breaks the trace.
    let tracestate = [
        (
            "tracestate-repeated",
            vec![h("tracestate", "a=1"), h("tracestate", "b=2")],
            "a=1,b=2",
        ),
        (
            "tracestate-oversized",
            vec![h("tracestate", huge_list())],
            "",
        ),
        (
            "tracestate-repeated-many",
            (0..500)
                .map(|i| h("tracestate", format!("k{i}=v")))
                .collect(),
            "",
        ),
        (
            "tracestate-not-utf8",
            vec![h("tracestate", b"a=1,b=\xff".to_vec())],
            "",
        ),
        ("tracestate-control", vec![h("tracestate", "a=1\x07")], ""),
    ];
    for (key, headers, expected) in tracestate {
        cases.push(Case {
            tracestate: Some(expected),
            ..case(key, Continues, with_valid(headers))
        });
    }
    // baggage: bounded to 64 members, joined across lines.
    let baggage = [
        (
            "baggage-repeated",
            vec![h("baggage", "a=1"), h("baggage", "b=2")],
            2,
        ),
        ("baggage-oversized", vec![h("baggage", huge_list())], 64),
        (
            "baggage-repeated-many",
            (0..500).map(|i| h("baggage", format!("k{i}=v"))).collect(),
            64,
        ),
        (
            "baggage-oversized-member",
            vec![h("baggage", format!("k={}", "v".repeat(HUGE)))],
            0,
        ),
        // The bad member is skipped, the other kept.
        (
            "baggage-not-utf8",
            vec![h("baggage", b"a=1,b=\xff".to_vec())],
            1,
        ),
    ];
    for (key, headers, expected) in baggage {
        cases.push(Case {
            baggage: Some(expected),
            ..case(key, Continues, with_valid(headers))
        });
    }
    cases.push(case(
        "baggage-control",
        Continues,
        with_valid(vec![h("baggage", "a=\x01,b=\n")]),
    ));
    cases
}

/// Extracts W3C Trace Context, W3C Baggage and B3 (single and multi).
fn propagator() -> impl Propagator {
    CompositePropagator::new(vec![
        Arc::new(TraceContextPropagator::new()),
        Arc::new(BaggagePropagator::new()),
        Arc::new(B3Propagator::with_encoding(
            B3Encoding::SingleAndMultipleHeader,
        )),
    ])
}

/// Writes every case to `topic`'s partition 0 with [`raw_produce`], then a
/// message sent by the traced producer inside a `request` span; returns the
/// trace id of that request.
async fn produce_all(broker: &Broker, topic: &str, cases: &[Case]) -> String {
    let metadata_client: BaseConsumer = broker.consumer_config().create().unwrap();
    let metadata = metadata_client
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata");
    let leader = metadata.topics()[0].partitions()[0].leader();
    let leader = metadata
        .brokers()
        .iter()
        .find(|b| b.id() == leader)
        .expect("the partition's leader");
    let address = format!("{}:{}", leader.host(), leader.port());
    for (i, case) in cases.iter().enumerate() {
        raw_produce(&address, topic, i as i32, case.key, &case.headers);
    }
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config())
            .unwrap()
            .propagator(propagator());
    let request = tracing::info_span!("request");
    let trace = request.span_context().unwrap().trace_id().to_string();
    producer
        .send(
            FutureRecord::to(topic).key("next").payload("x"),
            Duration::from_secs(10),
        )
        .instrument(request)
        .await
        .expect("delivered");
    trace
}

/// Checks the process span of the message with `key` against its case (or
/// the final message sent in `next_trace`).
fn check_live(
    message: &rdkafka::message::BorrowedMessage<'_>,
    span: &tracing::Span,
    cases: &[Case],
    next_trace: &str,
) {
    let key = std::str::from_utf8(message.key().unwrap()).unwrap();
    let cx = span.context();
    let span_cx = cx.span_context().expect("every message has a process span");
    if key == "next" {
        assert_eq!(span_cx.trace_id().to_string(), next_trace);
        return;
    }
    let case = cases.iter().find(|c| c.key == key).unwrap();
    match case.trace {
        Trace::Continues => assert_eq!(span_cx.trace_id().to_string(), TRACE, "{key}"),
        Trace::New => assert_ne!(span_cx.trace_id().to_string(), TRACE, "{key}"),
    }
    if let Some(members) = case.baggage {
        assert_eq!(cx.baggage().len(), members, "{key}: baggage members");
    }
    assert!(cx.baggage().len() <= 64, "{key}: baggage bounded");
    if let Some(tracestate) = case.tracestate {
        assert_eq!(
            span_cx.trace_state().header(),
            tracestate,
            "{key}: tracestate"
        );
    }
}

/// Checks the exported process spans: one per message, each a child of
/// `PARENT` or a root as its case says.
fn check_exported(exporter: &InMemoryExporter, topic: &str, cases: &[Case]) {
    let processes = exporter.spans_named(&format!("process {topic}"));
    assert_eq!(processes.len(), cases.len() + 1, "every message processed");
    for case in cases {
        let process = processes
            .iter()
            .find(|p| p.attribute("messaging.kafka.message.key") == Some(&Value::from(case.key)))
            .unwrap_or_else(|| panic!("no process span for {}", case.key));
        match case.trace {
            Trace::Continues => {
                assert_eq!(process.parent_span_id.to_string(), PARENT, "{}", case.key);
                assert!(process.parent_is_remote, "{}", case.key);
            }
            Trace::New => assert!(!process.parent_span_id.is_valid(), "{}", case.key),
        }
    }
}

#[tokio::test]
async fn the_stream_consumer_processes_hostile_headers() {
    let broker = Broker::start();
    let topic = broker.topic("hostile-stream", 1).await;
    let cases = cases();
    let (exporter, _guard) = traced();
    let next_trace = produce_all(&broker, &topic, &cases).await;
    let consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(&broker.consumer_config())
            .unwrap()
            .propagator(propagator());
    consumer.subscribe(&[&topic]).unwrap();
    for _ in 0..=cases.len() {
        let message = within("recv", consumer.recv())
            .await
            .expect("consumption never fails");
        check_live(&message, message.span(), &cases, &next_trace);
    }
    check_exported(&exporter, &topic, &cases);
}

#[tokio::test]
async fn the_base_consumer_processes_hostile_headers() {
    let broker = Broker::start();
    let topic = broker.topic("hostile-base", 1).await;
    let cases = cases();
    let (exporter, _guard) = traced();
    let next_trace = produce_all(&broker, &topic, &cases).await;
    let consumer = TracedBaseConsumer::from_config(&broker.consumer_config())
        .unwrap()
        .propagator(propagator());
    consumer.subscribe(&[&topic]).unwrap();
    let mut received = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while received <= cases.len() && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_secs(1)) {
            let message = message.expect("consumption never fails");
            check_live(&message, message.span(), &cases, &next_trace);
            received += 1;
        }
    }
    assert_eq!(received, cases.len() + 1);
    check_exported(&exporter, &topic, &cases);
}

#[tokio::test]
async fn a_batch_with_hostile_headers_is_received_whole() {
    let broker = Broker::start();
    let topic = broker.topic("hostile-batch", 1).await;
    let cases = cases();
    let (exporter, _guard) = traced();
    let next_trace = produce_all(&broker, &topic, &cases).await;
    let consumer = TracedBaseConsumer::from_config(&broker.consumer_config())
        .unwrap()
        .propagator(propagator());
    consumer.subscribe(&[&topic]).unwrap();
    let mut received = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while received <= cases.len() && std::time::Instant::now() < deadline {
        if let Some(batch) = consumer.poll_batch(100, Duration::from_secs(1)) {
            received += batch.expect("consumption never fails").messages.len();
        }
    }
    assert_eq!(received, cases.len() + 1);
    // Each batch's poll and process spans link the context of every message
    // that carries a valid one, and no other.
    let continuing = cases.iter().filter(|c| c.trace == Trace::Continues).count();
    for name in [format!("poll {topic}"), format!("process {topic}")] {
        let links: Vec<String> = exporter
            .spans_named(&name)
            .iter()
            .flat_map(|s| {
                s.links
                    .iter()
                    .map(|l| l.span_context.trace_id().to_string())
            })
            .collect();
        assert_eq!(
            links.iter().filter(|t| *t == TRACE).count(),
            continuing,
            "{name}"
        );
        assert!(links.contains(&next_trace), "{name}");
        assert_eq!(links.len(), continuing + 1, "{name}");
    }
}

/// Writes one record with `key`, payload `x` and `headers` (raw names and
/// values) to partition 0 of `topic` at `address`: a Produce v3 request
/// (acks all) with a v2 record batch, and checks the answer.
fn raw_produce(
    address: &str,
    topic: &str,
    correlation: i32,
    key: &str,
    headers: &[(Vec<u8>, Vec<u8>)],
) {
    let mut record = vec![0]; // attributes
    varint(&mut record, 0); // timestamp delta
    varint(&mut record, 0); // offset delta
    bytes(&mut record, key.as_bytes());
    bytes(&mut record, b"x");
    varint(&mut record, headers.len() as i64);
    for (name, value) in headers {
        bytes(&mut record, name);
        bytes(&mut record, value);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut checked = Vec::new(); // the part of the batch the CRC covers
    checked.extend(0i16.to_be_bytes()); // attributes
    checked.extend(0i32.to_be_bytes()); // last offset delta
    checked.extend(now.to_be_bytes()); // base timestamp
    checked.extend(now.to_be_bytes()); // max timestamp
    checked.extend((-1i64).to_be_bytes()); // producer id
    checked.extend((-1i16).to_be_bytes()); // producer epoch
    checked.extend((-1i32).to_be_bytes()); // base sequence
    checked.extend(1i32.to_be_bytes()); // records
    varint(&mut checked, record.len() as i64);
    checked.extend(&record);
    let mut batch = Vec::new();
    batch.extend(0i64.to_be_bytes()); // base offset
    batch.extend((4 + 1 + 4 + checked.len() as i32).to_be_bytes()); // length
    batch.extend((-1i32).to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend(crc32c(&checked).to_be_bytes());
    batch.extend(&checked);

    let mut request = Vec::new();
    request.extend(0i16.to_be_bytes()); // Produce
    request.extend(3i16.to_be_bytes()); // v3
    request.extend(correlation.to_be_bytes());
    string(&mut request, "raw-producer");
    request.extend((-1i16).to_be_bytes()); // no transactional id
    request.extend((-1i16).to_be_bytes()); // acks: all
    request.extend(30_000i32.to_be_bytes()); // timeout
    request.extend(1i32.to_be_bytes()); // topics
    string(&mut request, topic);
    request.extend(1i32.to_be_bytes()); // partitions
    request.extend(0i32.to_be_bytes()); // partition 0
    request.extend((batch.len() as i32).to_be_bytes());
    request.extend(&batch);

    let mut stream = TcpStream::connect(address).expect("connect to the leader");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(&(request.len() as i32).to_be_bytes())
        .unwrap();
    stream.write_all(&request).unwrap();
    let mut size = [0; 4];
    stream.read_exact(&mut size).expect("a Produce response");
    let mut response = vec![0; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response).unwrap();
    // correlation id, topics, topic name, partitions, partition, error code
    let at = 4 + 4 + 2 + topic.len() + 4 + 4;
    assert_eq!(
        i32::from_be_bytes(response[..4].try_into().unwrap()),
        correlation
    );
    let error = i16::from_be_bytes(response[at..at + 2].try_into().unwrap());
    assert_eq!(error, 0, "{key}: Produce error code");
}

/// A zigzag varint (Kafka record fields).
fn varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Varint length and bytes (record keys, values, header names and values).
fn bytes(out: &mut Vec<u8>, value: &[u8]) {
    varint(out, value.len() as i64);
    out.extend(value);
}

/// An int16 length and the bytes (protocol strings).
fn string(out: &mut Vec<u8>, value: &str) {
    out.extend((value.len() as i16).to_be_bytes());
    out.extend(value.as_bytes());
}

/// CRC-32C (Castagnoli), as record batches carry it.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32c_matches_the_check_value() {
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
}
