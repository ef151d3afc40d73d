//! The traced [`FutureProducer`].

use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::FromClientConfigAndContext as _;
use rdkafka::message::ToBytes;
use rdkafka::producer::future_producer::{FutureProducerContext, OwnedDeliveryResult};
use rdkafka::producer::{FutureProducer, FutureRecord, NoCustomPartitioner};
use rdkafka::util::{AsyncRuntime, DefaultRuntime, Timeout};
use tracewire::propagation::Propagator;
use tracing::Instrument as _;

use super::{Outgoing, record_delivery};
use crate::client_info::{
    ClientTracing, client_constructors, propagator_method, record_kafka_error,
};

/// A [`FutureProducer`] whose sends are PRODUCER spans (`send {topic}`)
/// carrying their context to consumers in the message headers.
///
/// The span is a child of the current span. Its context (`traceparent`,
/// `tracestate`, `baggage` with the default propagator) replaces any stale
/// trace headers in the record; the user's other headers are kept. When a
/// filter leaves the span out, the current span's context is written
/// instead. The
/// delivery report fills in the partition and offset; a failed delivery
/// sets status Error with `error.type`.
///
/// It implements rdkafka's [`Producer`](rdkafka::producer::Producer) trait
/// (flush, purge, transactions, `client()`…), delegated to the wrapped
/// producer.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use rdkafka::ClientConfig;
/// use rdkafka::producer::{FutureRecord, Producer as _};
/// use tracewire_rdkafka::TracedFutureProducer;
///
/// let mut config = ClientConfig::new();
/// config.set("bootstrap.servers", "localhost:9092");
/// let producer: TracedFutureProducer = TracedFutureProducer::from_config(&config)?;
/// let delivery = producer
///     .send(FutureRecord::to("orders").key("order-7").payload("{}"), Duration::from_secs(5))
///     .await;
/// # let _ = delivery;
/// producer.flush(Duration::from_secs(5))?; // rdkafka's own Producer::flush
/// # Ok(())
/// # }
/// ```
pub struct TracedFutureProducer<C = DefaultClientContext, R = DefaultRuntime>
where
    C: ClientContext + 'static,
{
    inner: FutureProducer<C, R>,
    tracing: ClientTracing,
}

impl<C: ClientContext + 'static, R> Clone for TracedFutureProducer<C, R> {
    fn clone(&self) -> Self {
        TracedFutureProducer {
            inner: self.inner.clone(),
            tracing: self.tracing.clone(),
        }
    }
}

client_constructors! {
    TracedFutureProducer<C, R> where [C: ClientContext + 'static] { tracing: ClientTracing }, "producer";
    impl[R: AsyncRuntime] TracedFutureProducer<DefaultClientContext, R> = DefaultClientContext;
    impl[C: ClientContext + 'static, R: AsyncRuntime] |config, context: C| {
        FutureProducer::from_config_and_context(config, context)?
    }
}

impl<C: ClientContext + 'static, R: AsyncRuntime> TracedFutureProducer<C, R> {
    propagator_method!("Injects", tracing);

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
        let (span, headers) = self.tracing.start_send(
            &Outgoing {
                topic: record.topic,
                key: record.key.map(ToBytes::to_bytes),
                tombstone: record.payload.is_none(),
                partition: record.partition,
            },
            record.headers.take(),
        );
        record.headers = Some(headers);
        let result = self
            .inner
            .send(record, queue_timeout)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(delivery) => record_delivery(&span, delivery.partition, delivery.offset),
            Err((error, _)) => record_kafka_error(&span, error),
        }
        result
    }
}

delegate_producer!(
    impl<C, R> Producer<FutureProducerContext<C>, NoCustomPartitioner> for TracedFutureProducer<C, R>
    where
        C: ClientContext + 'static,
        R: AsyncRuntime,
);
