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
use tracing::field::Empty;

use crate::client_info::{ClientInfo, is_recorded, key_str};
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
    /// stale trace headers, plus the span's context.
    pub(crate) fn start(
        &self,
        record: &Outgoing<'_>,
        headers: Option<OwnedHeaders>,
    ) -> (Span, OwnedHeaders) {
        let span = tracing::info_span!(
            "send",
            otel.name = Empty,
            otel.kind = "producer",
            otel.status_code = Empty,
            otel.status_message = Empty,
            messaging.system = "kafka",
            messaging.operation.name = "send",
            messaging.operation.type = "send",
            messaging.destination.name = record.topic,
            messaging.destination.partition.id = Empty,
            messaging.kafka.offset = Empty,
            messaging.kafka.message.key = Empty,
            messaging.kafka.message.tombstone = Empty,
            messaging.client.id = Empty,
            server.address = Empty,
            server.port = Empty,
            error.type = Empty,
        );
        if is_recorded(&span) {
            span.record("otel.name", format!("send {}", record.topic));
            if let Some(key) = key_str(record.key) {
                span.record("messaging.kafka.message.key", key);
            }
            if record.tombstone {
                span.record("messaging.kafka.message.tombstone", true);
            }
            if let Some(partition) = record.partition {
                span.record("messaging.destination.partition.id", partition.to_string());
            }
            self.info.record(&span);
        }
        let propagator = self
            .propagator
            .clone()
            .unwrap_or_else(tracewire::propagation::global);
        let headers = inject_headers(propagator.as_ref(), &span.context(), headers);
        (span, headers)
    }
}

/// Records where the broker stored the message.
pub(crate) fn record_delivery(span: &Span, partition: i32, offset: i64) {
    if is_recorded(span) {
        span.record("messaging.destination.partition.id", partition.to_string());
        span.record("messaging.kafka.offset", offset);
    }
}
