//! Traced consumers: a CONSUMER span per received message; for a batch, a
//! CLIENT span covering the poll and a CONSUMER span for its processing.

use std::ops::Deref;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt as _};
use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfigAndContext as _;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, DefaultConsumerContext, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message as _, OwnedMessage};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::util::{AsyncRuntime, DefaultRuntime, Timeout};
use tracewire::propagation::Propagator;
use tracewire::{Context, SpanContext, SpanExt as _, with_remote_parent};
use tracing::Span;
use tracing::field::{self, Empty};

use crate::TARGET;
use crate::client_info::{
    ClientTracing, client_constructors, key_str, propagator_method, record_kafka_error,
};
use crate::headers::extract;

/// Where a message's process span goes in the trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessParent {
    /// A child of the producer's span (the default): the trace continues
    /// through the broker. The span the consumer was polled under, if any,
    /// is linked.
    #[default]
    Producer,
    /// A new trace, linked to the producer's span: for consumers whose work
    /// should not extend the producer's trace (fan-out, long delays).
    NewTraceWithLink,
}

/// What the traced consumers share: client identity, propagator, options.
#[derive(Clone, Debug)]
struct Tracing {
    client: ClientTracing,
    parent: ProcessParent,
}

/// What a `process {topic}` span is for.
#[derive(Clone, Copy)]
enum Processed<'m, 'a> {
    /// One message.
    Message(&'m BorrowedMessage<'a>),
    /// A batch of this many messages.
    Batch(usize),
}

impl Tracing {
    fn new(config: &ClientConfig) -> Self {
        Tracing {
            client: ClientTracing::new(config),
            parent: ProcessParent::default(),
        }
    }

    /// The context a message carries (none when its headers are absent or
    /// invalid: a new trace).
    fn message_context(&self, message: &BorrowedMessage<'_>) -> Context {
        self.client
            .with_propagator(|propagator| extract(propagator, message.headers()))
    }

    /// A new `process {topic}` CONSUMER span, under the current span unless
    /// called inside a remote parent. Every attribute is given at creation
    /// (one dispatch; the `%` values are only formatted if the span
    /// records); those that do not apply are left out.
    fn new_process_span(&self, topic: &str, processed: Processed<'_, '_>) -> Span {
        let (message, batch) = match processed {
            Processed::Message(message) => (Some(message), None),
            Processed::Batch(count) => (None, Some(count)),
        };
        let info = &self.client.info;
        tracing::info_span!(
            target: TARGET,
            "process",
            otel.name = %format_args!("process {topic}"),
            otel.kind = "consumer",
            otel.status_code = Empty,
            otel.status_message = Empty,
            messaging.system = "kafka",
            messaging.operation.name = "process",
            messaging.operation.type = "process",
            messaging.destination.name = topic,
            messaging.batch.message_count = batch,
            messaging.destination.partition.id = message.map(|m| field::display(m.partition())),
            messaging.kafka.offset = message.map(|m| m.offset()),
            messaging.kafka.message.key = message.and_then(|m| key_str(m.key())),
            messaging.kafka.message.tombstone =
                message.and_then(|m| m.payload().is_none().then_some(true)),
            messaging.consumer.group.name = info.group(),
            messaging.client.id = info.client_id(),
            server.address = info.server_address(),
            server.port = info.server_port(),
            error.type = Empty,
        )
    }

    /// The `process {topic}` span of `message`.
    fn process_span(&self, message: &BorrowedMessage<'_>) -> Span {
        let ambient = tracewire::current_span_context();
        let cx = self.message_context(message);
        let make = || self.new_process_span(message.topic(), Processed::Message(message));
        let span = match self.parent {
            ProcessParent::Producer => with_remote_parent(&cx, make),
            ProcessParent::NewTraceWithLink => {
                let fresh = Context::new().with_baggage(cx.baggage().clone());
                let span = with_remote_parent(&fresh, make);
                if let Some(producer) = cx.span_context() {
                    span.add_link(producer);
                }
                span
            }
        };
        if let Some(ambient) = ambient {
            span.add_link(&ambient);
        }
        span
    }

    /// The `poll {topic}` CLIENT span of a batch, started before polling:
    /// named `poll` until a message tells the topic.
    fn poll_span(&self) -> Span {
        let info = &self.client.info;
        tracing::info_span!(
            target: TARGET,
            "poll",
            otel.name = "poll",
            otel.kind = "client",
            otel.status_code = Empty,
            otel.status_message = Empty,
            messaging.system = "kafka",
            messaging.operation.name = "poll",
            messaging.operation.type = "receive",
            messaging.destination.name = Empty,
            messaging.batch.message_count = Empty,
            messaging.consumer.group.name = info.group(),
            messaging.client.id = info.client_id(),
            server.address = info.server_address(),
            server.port = info.server_port(),
            error.type = Empty,
        )
    }

    /// Records what a poll received on its span and links each message's
    /// context to it, ends it, then returns the batch's `process {topic}`
    /// CONSUMER span (under the current span), which links them too.
    fn received_batch(&self, poll: Span, messages: &[BorrowedMessage<'_>]) -> Span {
        let topic = messages.first().map_or("", |m| m.topic());
        let mut producers = None;
        let link_producers = |span: &Span, producers: &mut Option<Vec<SpanContext>>| {
            if span.is_recording() {
                let producers = producers.get_or_insert_with(|| {
                    messages
                        .iter()
                        .filter_map(|m| self.message_context(m).span_context().cloned())
                        .collect()
                });
                for producer in producers.iter() {
                    span.add_link(producer);
                }
            }
        };
        poll.record("otel.name", format_args!("poll {topic}"));
        poll.record("messaging.destination.name", topic);
        poll.record("messaging.batch.message_count", messages.len());
        link_producers(&poll, &mut producers);
        // The poll span ends before the processing starts.
        drop(poll);
        let process = self.new_process_span(topic, Processed::Batch(messages.len()));
        link_producers(&process, &mut producers);
        process
    }

    /// Commits `message` in a `commit {topic}` CLIENT span.
    fn commit<X: ConsumerContext>(
        &self,
        consumer: &impl Consumer<X>,
        message: &BorrowedMessage<'_>,
        mode: CommitMode,
    ) -> KafkaResult<()> {
        let span = tracing::info_span!(
            target: TARGET,
            "commit",
            otel.name = %format_args!("commit {}", message.topic()),
            otel.kind = "client",
            otel.status_code = Empty,
            otel.status_message = Empty,
            messaging.system = "kafka",
            messaging.operation.name = "commit",
            messaging.operation.type = "settle",
            messaging.destination.name = message.topic(),
            messaging.destination.partition.id = %message.partition(),
            messaging.kafka.offset = message.offset(),
            messaging.consumer.group.name = self.client.info.group(),
            error.type = Empty,
        );
        let result = span.in_scope(|| consumer.commit_message(message, mode));
        if let Err(error) = &result {
            record_kafka_error(&span, error);
        }
        result
    }
}

/// A received message and its `process {topic}` span.
///
/// The span started when the message was received and ends when this value
/// (and every clone of [`span`](Self::span)) is dropped, so it covers the
/// processing, not the wait for the next message. Run the processing inside
/// it: `message.span().in_scope(|| …)`, or for async code
/// `handle(&message).instrument(message.span().clone()).await`.
#[derive(Debug)]
pub struct TracedMessage<'a> {
    message: BorrowedMessage<'a>,
    span: Span,
}

impl<'a> TracedMessage<'a> {
    /// The process span.
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The message.
    pub fn message(&self) -> &BorrowedMessage<'a> {
        &self.message
    }

    /// Records that processing failed: status Error with `error`'s message
    /// and `error.type` (the arguments in the order of
    /// [`tracewire::error::record_error`]).
    pub fn record_error(&self, error_type: &str, error: &dyn std::fmt::Display) {
        tracewire::error::record_error(&self.span, error_type, Some(error));
    }

    /// An owned copy of the message with the span, to move into a task.
    pub fn detach(&self) -> (OwnedMessage, Span) {
        (self.message.detach(), self.span.clone())
    }

    /// Splits into the message and the span.
    pub fn into_parts(self) -> (BorrowedMessage<'a>, Span) {
        (self.message, self.span)
    }
}

impl<'a> Deref for TracedMessage<'a> {
    type Target = BorrowedMessage<'a>;
    fn deref(&self) -> &Self::Target {
        &self.message
    }
}

/// Messages polled together by [`TracedBaseConsumer::poll_batch`], with the
/// `process {topic}` span for processing them.
///
/// The `poll {topic}` span of the poll that received them has already
/// ended; both link each message's producer context.
#[derive(Debug)]
pub struct TracedBatch<'a> {
    /// The batch's `process {topic}` CONSUMER span, under the span that was
    /// current when polling; process the batch inside it. It ends when this
    /// value and every clone of the span are dropped.
    pub span: Span,
    /// The messages, in the order received.
    pub messages: Vec<BorrowedMessage<'a>>,
}

/// The builder method both consumers have: `process_parent(…)`.
macro_rules! process_parent_method {
    () => {
        /// Where process spans go (default: children of the producer's span).
        #[must_use]
        pub fn process_parent(mut self, parent: ProcessParent) -> Self {
            self.tracing.parent = parent;
            self
        }
    };
}

/// Implements rdkafka's [`Consumer`] for a traced consumer by delegating to
/// its `inner` consumer, except `commit_message`, which commits in a
/// `commit {topic}` span.
macro_rules! delegate_consumer {
    (impl<$($g:ident),*> Consumer<$cx:ty> for $ty:ty where $($bounds:tt)*) => {
        /// rdkafka's consumer API (subscribe, assign, seek, commit,
        /// position, `client()`…), delegated to the wrapped consumer;
        /// [`commit_message`](Consumer::commit_message) commits in a
        /// `commit {topic}` span.
        impl<$($g),*> Consumer<$cx> for $ty
        where
            $($bounds)*
        {
            fn client(&self) -> &rdkafka::client::Client<$cx> {
                self.inner.client()
            }

            fn group_metadata(&self) -> Option<rdkafka::consumer::ConsumerGroupMetadata> {
                self.inner.group_metadata()
            }

            fn subscribe(&self, topics: &[&str]) -> KafkaResult<()> {
                self.inner.subscribe(topics)
            }

            fn unsubscribe(&self) {
                self.inner.unsubscribe();
            }

            fn assign(&self, assignment: &TopicPartitionList) -> KafkaResult<()> {
                self.inner.assign(assignment)
            }

            fn unassign(&self) -> KafkaResult<()> {
                self.inner.unassign()
            }

            fn incremental_assign(&self, assignment: &TopicPartitionList) -> KafkaResult<()> {
                self.inner.incremental_assign(assignment)
            }

            fn incremental_unassign(&self, assignment: &TopicPartitionList) -> KafkaResult<()> {
                self.inner.incremental_unassign(assignment)
            }

            fn seek<T: Into<Timeout>>(
                &self,
                topic: &str,
                partition: i32,
                offset: rdkafka::Offset,
                timeout: T,
            ) -> KafkaResult<()> {
                self.inner.seek(topic, partition, offset, timeout)
            }

            fn seek_partitions<T: Into<Timeout>>(
                &self,
                topic_partition_list: TopicPartitionList,
                timeout: T,
            ) -> KafkaResult<TopicPartitionList> {
                self.inner.seek_partitions(topic_partition_list, timeout)
            }

            fn commit(
                &self,
                topic_partition_list: &TopicPartitionList,
                mode: CommitMode,
            ) -> KafkaResult<()> {
                self.inner.commit(topic_partition_list, mode)
            }

            fn commit_consumer_state(&self, mode: CommitMode) -> KafkaResult<()> {
                self.inner.commit_consumer_state(mode)
            }

            /// Commits `message` in a `commit {topic}` CLIENT span (status
            /// Error and `error.type` when the commit fails).
            fn commit_message(
                &self,
                message: &BorrowedMessage<'_>,
                mode: CommitMode,
            ) -> KafkaResult<()> {
                self.tracing.commit(&self.inner, message, mode)
            }

            fn store_offset(&self, topic: &str, partition: i32, offset: i64) -> KafkaResult<()> {
                self.inner.store_offset(topic, partition, offset)
            }

            fn store_offset_from_message(&self, message: &BorrowedMessage<'_>) -> KafkaResult<()> {
                self.inner.store_offset_from_message(message)
            }

            fn store_offsets(&self, tpl: &TopicPartitionList) -> KafkaResult<()> {
                self.inner.store_offsets(tpl)
            }

            fn subscription(&self) -> KafkaResult<TopicPartitionList> {
                self.inner.subscription()
            }

            fn assignment(&self) -> KafkaResult<TopicPartitionList> {
                self.inner.assignment()
            }

            fn assignment_lost(&self) -> bool {
                self.inner.assignment_lost()
            }

            fn committed<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<TopicPartitionList> {
                self.inner.committed(timeout)
            }

            fn committed_offsets<T: Into<Timeout>>(
                &self,
                tpl: TopicPartitionList,
                timeout: T,
            ) -> KafkaResult<TopicPartitionList> {
                self.inner.committed_offsets(tpl, timeout)
            }

            fn offsets_for_timestamp<T: Into<Timeout>>(
                &self,
                timestamp: i64,
                timeout: T,
            ) -> KafkaResult<TopicPartitionList> {
                self.inner.offsets_for_timestamp(timestamp, timeout)
            }

            fn offsets_for_times<T: Into<Timeout>>(
                &self,
                timestamps: TopicPartitionList,
                timeout: T,
            ) -> KafkaResult<TopicPartitionList> {
                self.inner.offsets_for_times(timestamps, timeout)
            }

            fn position(&self) -> KafkaResult<TopicPartitionList> {
                self.inner.position()
            }

            fn fetch_metadata<T: Into<Timeout>>(
                &self,
                topic: Option<&str>,
                timeout: T,
            ) -> KafkaResult<rdkafka::metadata::Metadata> {
                self.inner.fetch_metadata(topic, timeout)
            }

            fn fetch_watermarks<T: Into<Timeout>>(
                &self,
                topic: &str,
                partition: i32,
                timeout: T,
            ) -> KafkaResult<(i64, i64)> {
                self.inner.fetch_watermarks(topic, partition, timeout)
            }

            fn fetch_group_list<T: Into<Timeout>>(
                &self,
                group: Option<&str>,
                timeout: T,
            ) -> KafkaResult<rdkafka::groups::GroupList> {
                self.inner.fetch_group_list(group, timeout)
            }

            fn pause(&self, partitions: &TopicPartitionList) -> KafkaResult<()> {
                self.inner.pause(partitions)
            }

            fn resume(&self, partitions: &TopicPartitionList) -> KafkaResult<()> {
                self.inner.resume(partitions)
            }

            fn rebalance_protocol(&self) -> rdkafka::consumer::RebalanceProtocol {
                self.inner.rebalance_protocol()
            }
        }
    };
}

/// A [`StreamConsumer`] whose messages come with their process spans.
///
/// It implements rdkafka's [`Consumer`] trait: subscribe, assign, seek,
/// commit, position, `client()` and the rest are the wrapped consumer's,
/// except [`commit_message`](Consumer::commit_message), which commits in a
/// `commit {topic}` span. [`inner`](Self::inner) reaches the
/// [`StreamConsumer`] itself (what it receives has no spans).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use rdkafka::ClientConfig;
/// use rdkafka::consumer::{CommitMode, Consumer as _};
/// use tracing::Instrument as _;
/// use tracewire_rdkafka::TracedStreamConsumer;
///
/// let mut config = ClientConfig::new();
/// config.set("bootstrap.servers", "localhost:9092").set("group.id", "notifications");
/// let consumer: TracedStreamConsumer = TracedStreamConsumer::from_config(&config)?;
/// consumer.subscribe(&["orders"])?; // rdkafka's Consumer::subscribe
/// loop {
///     let message = consumer.recv().await?;
///     async { tracing::info!("sending the e-mail") }
///         .instrument(message.span().clone())
///         .await;
///     consumer.commit_message(&message, CommitMode::Async)?; // a commit span
/// }
/// # }
/// ```
pub struct TracedStreamConsumer<C = DefaultConsumerContext, R = DefaultRuntime>
where
    C: ConsumerContext + 'static,
{
    inner: StreamConsumer<C, R>,
    tracing: Tracing,
}

client_constructors! {
    TracedStreamConsumer<C, R> where [C: ConsumerContext + 'static] { tracing: Tracing }, "consumer";
    impl[R: AsyncRuntime] TracedStreamConsumer<DefaultConsumerContext, R> = DefaultConsumerContext;
    impl[C: ConsumerContext + 'static, R: AsyncRuntime] |config, context: C| {
        StreamConsumer::from_config_and_context(config, context)?
    }
}

impl<C: ConsumerContext + 'static, R: AsyncRuntime> TracedStreamConsumer<C, R> {
    propagator_method!("Extracts", tracing.client);
    process_parent_method!();

    /// The wrapped consumer (what it receives has no spans).
    pub fn inner(&self) -> &StreamConsumer<C, R> {
        &self.inner
    }

    /// Receives the next message with its process span.
    ///
    /// # Errors
    /// As [`StreamConsumer::recv`].
    pub async fn recv(&self) -> KafkaResult<TracedMessage<'_>> {
        let message = self.inner.recv().await?;
        let span = self.tracing.process_span(&message);
        Ok(TracedMessage { message, span })
    }

    /// The messages as a stream, each with its process span.
    pub fn stream(&self) -> impl Stream<Item = KafkaResult<TracedMessage<'_>>> + '_ {
        self.inner.stream().map(move |received| {
            received.map(|message| {
                let span = self.tracing.process_span(&message);
                TracedMessage { message, span }
            })
        })
    }
}

delegate_consumer!(
    impl<C, R> Consumer<C> for TracedStreamConsumer<C, R>
    where
        C: ConsumerContext + 'static,
);

/// A [`BaseConsumer`] (poll loop) whose messages come with their process
/// spans, and which can poll batches.
///
/// It implements rdkafka's [`Consumer`] trait, as
/// [`TracedStreamConsumer`] does.
///
/// ```no_run
/// use std::time::Duration;
/// use rdkafka::ClientConfig;
/// use rdkafka::consumer::{CommitMode, Consumer as _};
/// use tracewire_rdkafka::TracedBaseConsumer;
///
/// let mut config = ClientConfig::new();
/// config.set("bootstrap.servers", "localhost:9092").set("group.id", "audit");
/// let consumer = TracedBaseConsumer::from_config(&config).unwrap();
/// consumer.subscribe(&["orders"]).unwrap(); // rdkafka's Consumer::subscribe
/// if let Some(Ok(message)) = consumer.poll(Duration::from_secs(1)) {
///     message.span().in_scope(|| tracing::info!("audited"));
///     consumer.commit_message(&message, CommitMode::Sync).unwrap(); // a commit span
/// }
/// ```
pub struct TracedBaseConsumer<C = DefaultConsumerContext>
where
    C: ConsumerContext + 'static,
{
    inner: BaseConsumer<C>,
    tracing: Tracing,
}

client_constructors! {
    TracedBaseConsumer<C> where [C: ConsumerContext + 'static] { tracing: Tracing }, "consumer";
    impl[] TracedBaseConsumer<DefaultConsumerContext> = DefaultConsumerContext;
    impl[C: ConsumerContext + 'static] |config, context: C| {
        BaseConsumer::from_config_and_context(config, context)?
    }
}

impl<C: ConsumerContext + 'static> TracedBaseConsumer<C> {
    propagator_method!("Extracts", tracing.client);
    process_parent_method!();

    /// The wrapped consumer (what it polls has no spans).
    pub fn inner(&self) -> &BaseConsumer<C> {
        &self.inner
    }
    /// Polls for one message, with its process span.
    pub fn poll(&self, timeout: Duration) -> Option<KafkaResult<TracedMessage<'_>>> {
        let received = self.inner.poll(timeout)?;
        Some(received.map(|message| {
            let span = self.tracing.process_span(&message);
            TracedMessage { message, span }
        }))
    }

    /// Polls up to `max` messages within `timeout`, in a `poll {topic}`
    /// CLIENT span that covers the polling only: it starts before the first
    /// poll and ends before this returns, with the number of messages
    /// received (0 when none arrived; the span is then named `poll`) and a
    /// link to each message's producer context, or status Error. The batch
    /// comes with a `process {topic}` CONSUMER span for processing it, under
    /// the current span and linking each message's producer context too.
    /// `None` when no message arrived.
    ///
    /// # Errors
    /// The first consumer error, when it comes before any message.
    pub fn poll_batch(
        &self,
        max: usize,
        timeout: Duration,
    ) -> Option<KafkaResult<TracedBatch<'_>>> {
        let poll = self.tracing.poll_span();
        let received = poll.in_scope(|| {
            let deadline = Instant::now() + timeout;
            let mut messages = Vec::new();
            while messages.len() < max {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match self.inner.poll(left) {
                    Some(Ok(message)) => messages.push(message),
                    Some(Err(e)) if messages.is_empty() => return Err(e),
                    Some(Err(_)) | None => break,
                }
            }
            Ok(messages)
        });
        let messages = match received {
            Ok(messages) => messages,
            Err(error) => {
                record_kafka_error(&poll, &error);
                return Some(Err(error));
            }
        };
        if messages.is_empty() {
            poll.record("messaging.batch.message_count", 0);
            return None;
        }
        let span = self.tracing.received_batch(poll, &messages);
        Some(Ok(TracedBatch { span, messages }))
    }
}

delegate_consumer!(
    impl<C> Consumer<C> for TracedBaseConsumer<C>
    where
        C: ConsumerContext + 'static,
);
