//! gRPC interop with another OpenTelemetry implementation: a Python peer
//! (`python/grpc_peer.py`: grpcio with the OpenTelemetry Python SDK and
//! `opentelemetry-instrumentation-grpc`) calls a tonic service traced by
//! `TraceLayer::grpc_server()` and is called by a tonic client traced by
//! `TraceLayer::grpc_client()`; one trace id and the right parents on both
//! sides.
//!
//! The peer runs on the virtualenv `.ci/run` creates: `$TRACEWIRE_PYTHON`,
//! or `$HOME/.cache/tracewire-venv/bin/python`. The tests are
//! `#[ignore]`d (a plain run shows them skipped); `.ci/test` runs them, and
//! they fail when that Python is missing.

mod echo;
mod grpc;
mod peer;
