//! The server layer's hot path for a request that is not sampled: no heap
//! allocation beyond what creating any `tracing` span under a remote parent
//! costs. Counted with dhat's testing mode; one test per binary, so nothing
//! else allocates concurrently.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer as _, service_fn};
use tracewire::TracewireLayer;
use tracewire::propagation::{Propagator as _, TraceContextPropagator};
use tracewire::sampling::{AlwaysOff, ParentBased};
use tracewire_tower::TraceLayer;
use tracing_subscriber::prelude::*;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Not sampled by the caller.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
const ROUNDS: u64 = 200;

fn blocks(f: impl FnOnce()) -> u64 {
    let before = dhat::HeapStats::get().total_blocks;
    f();
    dhat::HeapStats::get().total_blocks - before
}

/// Polls a future that never waits.
fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the future waited"),
    }
}

/// Sends `request()` through `svc` and reads the whole body.
fn serve<S, B>(svc: &mut S, request: &dyn Fn() -> Request<Full<Bytes>>)
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body,
{
    let Ok(response) = ready(svc.call(request()));
    let mut body = pin!(response.into_body());
    let mut cx = Context::from_waker(Waker::noop());
    while let Poll::Ready(Some(_)) = body.as_mut().poll_frame(&mut cx) {}
}

#[test]
fn unsampled_requests_cost_no_more_than_a_span() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let layer = TracewireLayer::builder()
        .sampler(ParentBased::new(AlwaysOff))
        .build();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let handler = service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
        let mut bare = handler;
        let mut traced = TraceLayer::server().layer(handler);
        let request = || {
            Request::get("/users/7?x=1")
                .header("host", "api.example:8080")
                .header("user-agent", "bench/1.0")
                .header("traceparent", TRACEPARENT)
                .body(Full::new(Bytes::new()))
                .unwrap()
        };
        let headers = request().into_parts().0.headers;
        // Warm up the span pool and thread-locals.
        for _ in 0..10 {
            serve(&mut traced, &request);
        }

        let bare_cost = blocks(|| {
            for _ in 0..ROUNDS {
                serve(&mut bare, &request);
            }
        });
        let traced_cost = blocks(|| {
            for _ in 0..ROUNDS {
                serve(&mut traced, &request);
            }
        });
        // What any instrumentation pays: extract, create a span under the
        // remote parent, enter it, drop it.
        let span_cost = blocks(|| {
            for _ in 0..ROUNDS {
                let cx = TraceContextPropagator::new().extract(&headers);
                let span = tracewire::with_remote_parent(&cx, || {
                    tracing::info_span!("HTTP request", otel.kind = "server", url.path = "/users/7")
                });
                drop(span.enter());
            }
        });
        // dhat counts every thread of the process; a few stray blocks from
        // the test harness on a busy machine are not the layer's. One
        // allocation per request would be ROUNDS blocks.
        let slack = ROUNDS / 20;
        assert!(
            traced_cost - bare_cost <= span_cost + slack,
            "the layer allocated {} blocks per request beyond the handler, a bare span costs {}",
            (traced_cost - bare_cost) as f64 / ROUNDS as f64,
            span_cost as f64 / ROUNDS as f64,
        );
    });
}
