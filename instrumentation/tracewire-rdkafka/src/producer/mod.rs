//! The traced producers and what they share: the `send {topic}` span, the
//! injection of its context into the record's headers, and how a delivery
//! report or a failure is recorded on it.

/// Implements rdkafka's [`Producer`](rdkafka::producer::Producer) for a
/// traced producer by delegating to the producer its `inner()` returns:
/// flush, purge, in-flight count and transactions (delivery reports they
/// serve end send spans).
macro_rules! delegate_producer {
    (impl<$($g:ident),*> Producer<$cx:ty, $part:ty> for $ty:ty where $($bounds:tt)*) => {
        /// Flush, purge, in-flight count and transactions, delegated to the
        /// wrapped producer; delivery reports they serve end send spans.
        impl<$($g),*> rdkafka::producer::Producer<$cx, $part> for $ty
        where
            $($bounds)*
        {
            fn client(&self) -> &rdkafka::client::Client<$cx> {
                self.inner().client()
            }

            fn in_flight_count(&self) -> i32 {
                self.inner().in_flight_count()
            }

            fn flush<T: Into<rdkafka::util::Timeout>>(&self, timeout: T) -> rdkafka::error::KafkaResult<()> {
                self.inner().flush(timeout)
            }

            fn purge(&self, flags: rdkafka::producer::PurgeConfig) {
                self.inner().purge(flags);
            }

            fn init_transactions<T: Into<rdkafka::util::Timeout>>(&self, timeout: T) -> rdkafka::error::KafkaResult<()> {
                self.inner().init_transactions(timeout)
            }

            fn begin_transaction(&self) -> rdkafka::error::KafkaResult<()> {
                self.inner().begin_transaction()
            }

            fn send_offsets_to_transaction<T: Into<rdkafka::util::Timeout>>(
                &self,
                offsets: &rdkafka::TopicPartitionList,
                cgm: &rdkafka::consumer::ConsumerGroupMetadata,
                timeout: T,
            ) -> rdkafka::error::KafkaResult<()> {
                self.inner()
                    .send_offsets_to_transaction(offsets, cgm, timeout)
            }

            fn commit_transaction<T: Into<rdkafka::util::Timeout>>(&self, timeout: T) -> rdkafka::error::KafkaResult<()> {
                self.inner().commit_transaction(timeout)
            }

            fn abort_transaction<T: Into<rdkafka::util::Timeout>>(&self, timeout: T) -> rdkafka::error::KafkaResult<()> {
                self.inner().abort_transaction(timeout)
            }
        }
    };
}

mod base;
mod context;
mod future;

use rdkafka::message::OwnedHeaders;
use tracewire::SpanExt as _;
use tracing::Span;
use tracing::field::{Empty, display};

use crate::TARGET;
use crate::client_info::{ClientTracing, key_str};
use crate::headers::inject_headers;

pub use base::{TracedBaseProducer, TracedThreadedProducer};
pub use context::TracedProducerContext;
pub use future::TracedFutureProducer;

/// The parts of an outgoing record the send span describes.
pub(crate) struct Outgoing<'a> {
    pub(crate) topic: &'a str,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) tombstone: bool,
    pub(crate) partition: Option<i32>,
}

impl ClientTracing {
    /// Starts the `send {topic}` PRODUCER span under the current span and
    /// returns it with the record's headers: the user's `headers` without
    /// stale trace headers, plus the span's context (the current span's
    /// when the send span is filtered out).
    pub(crate) fn start_send(
        &self,
        record: &Outgoing<'_>,
        headers: Option<OwnedHeaders>,
    ) -> (Span, OwnedHeaders) {
        // Every attribute is given here rather than recorded afterwards:
        // one dispatch instead of one per attribute, and the `%`
        // values (name, partition) are only formatted if the span records.
        let span = tracing::info_span!(
            target: TARGET,
            "send",
            otel.name = %format_args!("send {}", record.topic),
            otel.kind = "producer",
            otel.status_code = Empty,
            otel.status_message = Empty,
            messaging.system = "kafka",
            messaging.operation.name = "send",
            messaging.operation.type = "send",
            messaging.destination.name = record.topic,
            messaging.destination.partition.id = record.partition.map(display),
            messaging.kafka.offset = Empty,
            messaging.kafka.message.key = key_str(record.key),
            messaging.kafka.message.tombstone = record.tombstone.then_some(true),
            messaging.client.id = self.info.client_id(),
            server.address = self.info.server_address(),
            server.port = self.info.server_port(),
            error.type = Empty,
        );
        // When a filter left the send span out (or no tracewire layer saw
        // it), the current span's context travels instead, as the HTTP
        // clients do: the trace still reaches the consumers.
        let mut cx = span.context();
        if cx.span_context().is_none() {
            cx = tracewire::current_context();
        }
        let headers = self.with_propagator(|propagator| inject_headers(propagator, &cx, headers));
        (span, headers)
    }
}

/// Records where the broker stored the message (the partition is
/// formatted only when the span records).
pub(crate) fn record_delivery(span: &Span, partition: i32, offset: i64) {
    span.record("messaging.destination.partition.id", display(partition));
    span.record("messaging.kafka.offset", offset);
}
