//! The shop sending to `tracewire collect`: with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a running collector, every
//! trace the services wrote to their files is in the collector's store,
//! span for span, and the viewer reads it back over the collector's API.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracewire_cli::Trace;
use tracewire_cli::remote::Client;
use tracewire_collect::{Collector, Config};

use crate::support::run_shop_with;

/// A collector on its own runtime thread, stopped (its queue stored) when
/// the test is done with it.
struct Running {
    runtime: tokio::runtime::Runtime,
    collector: Option<Collector>,
    _data: tempfile::TempDir,
}

impl Running {
    fn start() -> Self {
        let data = tempfile::tempdir().expect("a temporary directory");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc_listen: None,
            data_dir: data.path().to_path_buf(),
            ..Config::default()
        };
        let collector = runtime
            .block_on(Collector::start(config))
            .expect("the collector starts");
        Running {
            runtime,
            collector: Some(collector),
            _data: data,
        }
    }

    fn collector(&self) -> &Collector {
        self.collector.as_ref().expect("running")
    }

    fn url(&self) -> String {
        format!("http://{}", self.collector().local_addr())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(collector) = self.collector.take() {
            self.runtime.block_on(collector.shutdown());
        }
    }
}

/// A trace's spans as (service, span id, parent id, name): what must be
/// the same whichever way the spans travelled.
fn shape(trace: &Trace) -> BTreeSet<(String, String, String, String)> {
    trace
        .spans()
        .iter()
        .map(|s| {
            (
                s.service.clone(),
                s.span_id.to_string(),
                s.parent_span_id.map(|p| p.to_string()).unwrap_or_default(),
                s.name.clone(),
            )
        })
        .collect()
}

#[test]
fn the_shops_traces_reach_tracewire_collect_whole() {
    let collector = Running::start();
    let endpoint = collector.url();
    let run = run_shop_with(
        10,
        1_000,
        None,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
        Duration::from_secs(300),
    );
    // The services flushed before exiting: every exported span was
    // answered 200, so it is queued or stored; wait (bounded) for the
    // writer.
    let in_files: u64 = run.traces.iter().map(|t| t.spans().len() as u64).sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    while collector.collector().stats().spans_stored < in_files && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        collector.collector().stats().spans_stored,
        in_files,
        "spans stored by the collector vs spans in the services' files"
    );

    let client = Client::new(&endpoint).expect("a client for the collector");
    let ids: Vec<String> = run.traces.iter().map(|t| t.id().to_string()).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let from_collector = client
        .traces(&refs)
        .expect("every trace is at the collector");
    assert_eq!(from_collector.len(), run.traces.len());
    for trace in run.traces.iter() {
        let stored = from_collector
            .find(&trace.id().to_string())
            .expect("the trace is at the collector");
        assert_eq!(shape(stored), shape(trace), "trace {}", trace.id());
    }
    // The newest traces, as `tracewire list --from URL` shows them.
    let recent = client.recent(5).expect("recent traces");
    assert_eq!(recent.len(), 5.min(run.traces.len()));
}
