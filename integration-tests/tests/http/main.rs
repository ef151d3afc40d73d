//! HTTP instrumentation over real sockets: axum servers with
//! `tracewire_tower::TraceLayer::server()`, called by reqwest with
//! `tracewire_reqwest::TracingMiddleware` and by hyper-util's client with
//! `TraceLayer::client()`.

mod chain;
mod clients;
mod hostile;
mod server;
mod support;
