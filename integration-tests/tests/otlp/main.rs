//! The export pipeline against a real OTLP receiver: HTTP/protobuf,
//! HTTP/JSON and gRPC deliveries decoded with the official message types,
//! failure handling (hostile receivers included), the JSON-lines file,
//! and `OTEL_*` configuration.

mod config;
mod delivery;
mod failures;
mod hostile;
mod support;
