//! The probabilistic share of tail sampling over many traces: the
//! Collector documentation's example policies (errors, latency over 2 s,
//! 10 % of the rest) on 4,000 ordinary traces with random ids keep about
//! 400 of them: exactly those whose id the core's `Probabilistic` policy
//! samples, and a number within five standard deviations of the binomial
//! mean. Waits are bounded polls of the collector's counts.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tracewire::tail::Probabilistic;
use tracewire::{SpanKind, Status, TraceId};
use tracewire_collect::{Collector, CollectorFile, Config};

mod common;

const CONFIG: &str = "
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
processors:
  batch: {}
  tail_sampling:
    decision_wait: 200ms
    num_traces: 50000
    policies:
      - name: errors
        type: status_code
        status_code: {status_codes: [ERROR]}
      - name: slow
        type: latency
        latency: {threshold_ms: 2000}
      - name: ten-percent
        type: probabilistic
        probabilistic: {sampling_percentage: 10}
exporters:
  tracewire_store: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [tail_sampling, batch]
      exporters: [tracewire_store]
";

/// xorshift64*: trace ids spread like random ones, the same every run.
struct Ids(u64);

impl Ids {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_of_ordinary_traces_are_kept_within_statistical_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let file = CollectorFile::from_yaml(CONFIG).expect("the configuration loads");
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    }
    .apply(file);
    let collector = Collector::start(config)
        .await
        .expect("the collector starts");
    let addr: SocketAddr = collector.local_addr();

    let traces = 4_000_u64;
    let policy = Probabilistic::new(10.0, "");
    let mut ids = Ids(0x5eed_1234_abcd_0001);
    let start = SystemTime::now() - Duration::from_secs(60);
    let mut expected = 0_u64;
    let mut spans = Vec::new();
    for i in 0..traces {
        let trace = (u128::from(ids.next()) << 64) | u128::from(ids.next());
        expected += u64::from(policy.samples(TraceId::from_u128(trace)));
        spans.push(common::span(
            "share-test",
            trace,
            i + 1,
            0,
            "GET /items",
            SpanKind::Server,
            start,
            5,
            Status::Unset,
            Vec::new(),
        ));
    }
    for chunk in spans.chunks(512) {
        common::export(addr, "frontend", false, chunk.to_vec()).await;
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = collector.stats();
        if s.spans_stored + s.spans_not_sampled >= traces {
            break;
        }
        assert!(Instant::now() < deadline, "not all decided: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kept = collector.stats().spans_stored;
    // The decision is the core policy's, trace by trace…
    assert_eq!(kept, expected);
    // …and the share is what 10 % means: mean 400, standard deviation
    // sqrt(4000 × 0.1 × 0.9) ≈ 19.
    assert!(
        (305..=495).contains(&kept),
        "{kept} of {traces} traces kept at 10 %"
    );
    collector.shutdown().await;
}
