//! Per-test subscribers: each test builds its own and installs it only for
//! its own closure, so tests share no global state.

use std::io;
use std::sync::{Arc, Mutex};

use tracewire::TracewireLayer;
use tracewire::sampling::Sampler;
use tracewire::testing::InMemoryExporter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// Runs `f` under a subscriber with a tracewire layer using `sampler`,
/// returning the exported spans.
pub(crate) fn traced_with<R>(
    sampler: impl Sampler,
    f: impl FnOnce() -> R,
) -> (InMemoryExporter, R) {
    let exporter = InMemoryExporter::new();
    let layer = TracewireLayer::builder()
        .sampler(sampler)
        .processor(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(layer);
    let result = tracing::subscriber::with_default(subscriber, f);
    (exporter, result)
}

/// Runs `f` under the default (parent-based, always-on) sampler.
pub(crate) fn traced<R>(f: impl FnOnce() -> R) -> (InMemoryExporter, R) {
    traced_with(tracewire::sampling::ParentBased::default(), f)
}

/// A `MakeWriter` that collects everything written, for log assertions.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub(crate) fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
