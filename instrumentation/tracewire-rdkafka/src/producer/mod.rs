//! The traced producers and what they share: the `send {topic}` span, the
//! injection of its context into the record's headers, and how a delivery
//! report or a failure is recorded on it.

mod base;
mod context;
mod future;

use std::sync::Arc;

use rdkafka::ClientConfig;
use rdkafka::message::OwnedHeaders;
use tracewire::SpanExt as _;
use tracewire::propagation::Propagator;
use tracing::Span;
use tracing::field::{Empty, display};

use crate::client_info::{ClientInfo, key_str};
use crate::headers::inject_headers;

pub use base::{TracedBaseProducer, TracedThreadedProducer};
pub use context::TracedProducerContext;
pub use future::TracedFutureProducer;

/// What every traced producer shares: client identity and propagator.
#[derive(Clone)]
pub(crate) struct SendTracing {
    info: Arc<ClientInfo>,
    propagator: Option<Arc<dyn Propagator>>,
}

impl std::fmt::Debug for SendTracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendTracing")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The parts of an outgoing record the send span describes.
pub(crate) struct Outgoing<'a> {
    pub(crate) topic: &'a str,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) tombstone: bool,
    pub(crate) partition: Option<i32>,
}

impl SendTracing {
    pub(crate) fn new(config: &ClientConfig) -> Self {
        SendTracing {
            info: Arc::new(ClientInfo::from_config(config)),
            propagator: None,
        }
    }

    pub(crate) fn set_propagator(&mut self, propagator: impl Propagator + 'static) {
        self.propagator = Some(Arc::new(propagator));
    }

    /// Starts the `send {topic}` PRODUCER span under the current span and
    /// returns it with the record's headers: the user's `headers` without
    /// stale trace headers, plus the span's context (the current span's
    /// when the send span is filtered out).
    pub(crate) fn start(
        &self,
        record: &Outgoing<'_>,
        headers: Option<OwnedHeaders>,
    ) -> (Span, OwnedHeaders) {
        // Every attribute is given here rather than recorded afterwards:
        // one dispatch instead of one per attribute, and the `%`
        // values (name, partition) are only formatted if the span records.
        let span = tracing::info_span!(
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
        let headers = match &self.propagator {
            Some(propagator) => inject_headers(propagator.as_ref(), &cx, headers),
            None => inject_headers(tracewire::propagation::global().as_ref(), &cx, headers),
        };
        (span, headers)
    }
}

/// Records where the broker stored the message (the partition is
/// formatted only when the span records).
pub(crate) fn record_delivery(span: &Span, partition: i32, offset: i64) {
    span.record("messaging.destination.partition.id", display(partition));
    span.record("messaging.kafka.offset", offset);
}
