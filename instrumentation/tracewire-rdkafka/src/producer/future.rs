//! The traced producer.

use std::sync::Arc;

use rdkafka::ClientConfig;
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::error::KafkaResult;
use rdkafka::message::ToBytes;
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::{AsyncRuntime, DefaultRuntime, Timeout};
use tracewire::SpanExt as _;
use tracewire::propagation::Propagator;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::client_info::{ClientInfo, error_type, is_recorded, key_str};
use crate::headers::inject_headers;

/// A [`FutureProducer`] whose sends are PRODUCER spans (`send {topic}`)
/// carrying their context to consumers in the message headers.
///
/// The span is a child of the current span. Its context (`traceparent`,
/// `tracestate`, `baggage` with the default propagator) replaces any stale
/// trace headers in the record; the user's other headers are kept. The
/// delivery report fills in the partition and offset; a failed delivery
/// sets status Error with `error.type`.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use rdkafka::ClientConfig;
/// use rdkafka::producer::FutureRecord;
/// use tracewire_rdkafka::TracedFutureProducer;
///
/// let mut config = ClientConfig::new();
/// config.set("bootstrap.servers", "localhost:9092");
/// let producer: TracedFutureProducer = TracedFutureProducer::from_config(&config)?;
/// let delivery = producer
///     .send(FutureRecord::to("orders").key("order-7").payload("{}"), Duration::from_secs(5))
///     .await;
/// # let _ = delivery;
/// # Ok(())
/// # }
/// ```
pub struct TracedFutureProducer<C = DefaultClientContext, R = DefaultRuntime>
where
    C: ClientContext + 'static,
{
    inner: FutureProducer<C, R>,
    info: Arc<ClientInfo>,
    propagator: Option<Arc<dyn Propagator>>,
}

impl<C: ClientContext + 'static, R> Clone for TracedFutureProducer<C, R> {
    fn clone(&self) -> Self {
        TracedFutureProducer {
            inner: self.inner.clone(),
            info: self.info.clone(),
            propagator: self.propagator.clone(),
        }
    }
}

impl<C: ClientContext + 'static, R> std::fmt::Debug for TracedFutureProducer<C, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedFutureProducer")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRuntime> TracedFutureProducer<DefaultClientContext, R> {
    /// Creates the producer from `config`.
    ///
    /// # Errors
    /// When librdkafka rejects the configuration.
    pub fn from_config(config: &ClientConfig) -> KafkaResult<Self> {
        Ok(Self::new(config.create()?, config))
    }
}

impl<C: ClientContext + 'static, R: AsyncRuntime> TracedFutureProducer<C, R> {
    /// Wraps `producer`; `config` is the configuration it was created with
    /// (for `messaging.client.id` and `server.address`).
    pub fn new(producer: FutureProducer<C, R>, config: &ClientConfig) -> Self {
        TracedFutureProducer {
            inner: producer,
            info: Arc::new(ClientInfo::from_config(config)),
            propagator: None,
        }
    }

    /// Injects with `propagator` instead of the global one.
    #[must_use]
    pub fn with_propagator(mut self, propagator: impl Propagator + 'static) -> Self {
        self.propagator = Some(Arc::new(propagator));
        self
    }

    /// The wrapped producer.
    pub fn inner(&self) -> &FutureProducer<C, R> {
        &self.inner
    }

    /// Sends `record` in a `send {topic}` span, as
    /// [`FutureProducer::send`] does.
    ///
    /// # Errors
    /// As [`FutureProducer::send`]: the error and the message that could
    /// not be delivered.
    pub async fn send<K, P, T>(
        &self,
        mut record: FutureRecord<'_, K, P>,
        queue_timeout: T,
    ) -> OwnedDeliveryResult
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
        T: Into<Timeout>,
    {
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
            if let Some(key) = key_str(record.key.map(ToBytes::to_bytes)) {
                span.record("messaging.kafka.message.key", key);
            }
            if record.payload.is_none() {
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
        record.headers = Some(inject_headers(
            propagator.as_ref(),
            &span.context(),
            record.headers.take(),
        ));
        let result = self
            .inner
            .send(record, queue_timeout)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(delivery) => {
                if is_recorded(&span) {
                    span.record(
                        "messaging.destination.partition.id",
                        delivery.partition.to_string(),
                    );
                    span.record("messaging.kafka.offset", delivery.offset);
                }
            }
            Err((error, _)) => {
                span.record("otel.status_code", "error");
                span.record("otel.status_message", error.to_string());
                span.record("error.type", error_type(error));
            }
        }
        result
    }
}
