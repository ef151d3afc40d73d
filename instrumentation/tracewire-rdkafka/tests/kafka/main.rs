//! The rdkafka wrappers against a real Kafka protocol peer: librdkafka's
//! mock cluster by default, a real broker when `KAFKA_BROKERS` is set.

mod base_producer;
mod consume;
mod headers;
mod hostile;
mod produce;
mod support;
