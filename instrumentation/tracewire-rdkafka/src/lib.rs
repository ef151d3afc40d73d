//! Trace context through Kafka for [`rdkafka`]: a producer whose sends are
//! `send {topic}` PRODUCER spans that write `traceparent`, `tracestate` and
//! `baggage` into the message headers, and consumers that turn each
//! received message into a `process {topic}` CONSUMER span continuing the
//! producer's trace, with the OpenTelemetry messaging conventions.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use rdkafka::ClientConfig;
//! use rdkafka::consumer::Consumer as _;
//! use rdkafka::producer::FutureRecord;
//! use tracing::Instrument as _;
//! use tracewire_rdkafka::{TracedFutureProducer, TracedStreamConsumer};
//!
//! let mut config = ClientConfig::new();
//! config.set("bootstrap.servers", "localhost:9092");
//!
//! // In the order service, inside the request's span:
//! let producer: TracedFutureProducer = TracedFutureProducer::from_config(&config)?;
//! producer
//!     .send(FutureRecord::to("order.created").key("order-7").payload("{}"), Duration::from_secs(5))
//!     .await
//!     .map_err(|(e, _)| e)?;
//!
//! // In the notification service:
//! config.set("group.id", "notifications");
//! let consumer: TracedStreamConsumer = TracedStreamConsumer::from_config(&config)?;
//! consumer.subscribe(&["order.created"])?; // rdkafka's Consumer::subscribe
//! let message = consumer.recv().await?;
//! async { tracing::info!("e-mail sent") } // joins the order's trace
//!     .instrument(message.span().clone())
//!     .await;
//! # Ok(())
//! # }
//! ```
//!
//! ## rdkafka's own API
//!
//! The wrappers implement rdkafka's traits, so what you call on rdkafka's
//! clients you call on them: [`TracedStreamConsumer`] and
//! [`TracedBaseConsumer`] implement [`Consumer`](rdkafka::consumer::Consumer)
//! (subscribe, assign, seek, commit, position, `client()`…), and the three
//! producers implement [`Producer`](rdkafka::producer::Producer) (flush,
//! purge, transactions, `client()`…). Each call goes to the wrapped client,
//! except `Consumer::commit_message`, which commits in a `commit {topic}`
//! span. Each wrapper's `inner()` reaches the rdkafka client itself: what
//! is sent or received through it directly has no span.
//!
//! Each client is created from its configuration once, with `from_config`
//! or, with your own context, `from_config_and_context`; the
//! configuration also gives what the spans record about the client
//! (`messaging.client.id`, `server.address`, `server.port`, the consumer
//! group). `propagator(…)` replaces the global propagator for one client.
//!
//! Every span has the target `tracewire_rdkafka` (whichever module makes
//! it): `tracewire::init` always traces it (the instrumentation crates'
//! targets start with `tracewire_`), and in a subscriber of your own one
//! filter directive for `tracewire_rdkafka` matches them all.
//!
//! ## Bad trace headers
//!
//! A message whose trace headers are missing, malformed, duplicated, not
//! UTF-8 or oversized starts a new trace; consumption never fails because
//! of them. In detail:
//!
//! - A header whose *name* is not UTF-8 is skipped, and the message is
//!   processed with the context of its other headers (after eight such
//!   names in one message, its remaining headers are not read, to bound
//!   the cost of each panic caught below). rdkafka's own header
//!   accessors (`Headers::get`, `try_get`, `iter`…) panic on such a name;
//!   this crate contains that panic (your panic hook still sees it), so a
//!   build with `panic = "abort"` still aborts on such a message. Read
//!   headers through [`HeaderExtractor`] to get the same protection.
//! - Two or more `traceparent` headers are invalid (W3C): a new trace.
//!   Repeated `tracestate` and `baggage` headers read as one list, in
//!   order, as HTTP header lines do; a repeated `b3` or `X-B3-*` header
//!   counts with its first value.
//! - Oversized values cost bounded work: an oversized `traceparent` or `b3`
//!   is invalid (a new trace), a `tracestate` over 32 members or with a bad
//!   member is dropped (the trace continues without it), and `baggage`
//!   keeps the valid members among its first 8192 bytes and 64 members.
//! - A value that is not UTF-8 or holds control characters is invalid for
//!   its field (a bad `baggage` member is skipped, the others are kept).
//!
//! When a filter leaves the send span out, the producer writes the current
//! span's context into the headers instead, so the trace still reaches the
//! consumers.
//!
//! | span | kind | name | made by |
//! |---|---|---|---|
//! | send | PRODUCER | `send {topic}` | [`TracedFutureProducer::send`], [`TracedBaseProducer::send`], [`TracedThreadedProducer::send`] |
//! | process | CONSUMER | `process {topic}` | [`TracedStreamConsumer::recv`], [`stream`](TracedStreamConsumer::stream), [`TracedBaseConsumer::poll`]; one per batch from [`TracedBaseConsumer::poll_batch`] (links every message) |
//! | poll | CLIENT | `poll {topic}` | [`TracedBaseConsumer::poll_batch`]: covers the polling only, ends before the batch's process span starts (links every message) |
//! | commit | CLIENT | `commit {topic}` | [`Consumer::commit_message`](rdkafka::consumer::Consumer::commit_message) on either consumer |
//!
//! ## When a send span ends
//!
//! Each producer starts the send span under the current span when the
//! record is handed over, and ends it when the broker's answer arrives, with
//! the partition and offset, or status Error and `error.type`:
//!
//! | producer | the span ends |
//! |---|---|
//! | [`TracedFutureProducer`] | when the delivery future completes |
//! | [`TracedBaseProducer`] | when [`poll`](TracedBaseProducer::poll) or `flush` serves the delivery report, in [`TracedProducerContext`]'s `delivery` callback |
//! | [`TracedThreadedProducer`] | when its polling thread serves the delivery report, in the same callback |
//!
//! A record refused at once (queue full, unknown partition…) ends its span
//! with Error right away. Dropping a base or threaded producer purges what
//! it still holds and serves the reports, so no span is left open.

/// The target of every span this crate makes: the instrumentation crates'
/// targets start with `tracewire_`, so `tracewire::init` always traces them
/// (see `tracewire::is_instrumentation`), and one filter directive matches
/// them all.
pub(crate) const TARGET: &str = "tracewire_rdkafka";

mod client_info;
mod consumer;
mod headers;
mod producer;

pub use consumer::{
    ProcessParent, TracedBaseConsumer, TracedBatch, TracedMessage, TracedStreamConsumer,
};
pub use headers::{HeaderExtractor, inject_headers};
pub use producer::{
    TracedBaseProducer, TracedFutureProducer, TracedProducerContext, TracedThreadedProducer,
};
