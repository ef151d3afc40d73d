//! The JSON-lines file exporter: one OTLP/JSON request per line.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::{ExportError, ExportFuture, Resource, SpanExporter, proto};
use crate::SpanData;

/// Writes each batch as one line holding an OTLP/JSON
/// `ExportTraceServiceRequest` (the format of the OTLP/JSON specification,
/// with hex trace and span ids), to a file or standard output.
///
/// The OpenTelemetry Collector's `otlpjsonfile` receiver and tracewire's
/// trace viewer read it back.
///
/// ```
/// use tracewire::export::{JsonLinesExporter, Resource, SpanExporter};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("spans.jsonl");
/// let exporter = JsonLinesExporter::create(&path, Resource::new("checkout")).unwrap();
/// # drop(exporter);
/// assert!(path.exists());
/// ```
pub struct JsonLinesExporter {
    out: BufWriter<Box<dyn Write + Send>>,
    resource: Resource,
}

impl std::fmt::Debug for JsonLinesExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesExporter")
            .field("service", &self.resource.service_name())
            .finish_non_exhaustive()
    }
}

impl JsonLinesExporter {
    /// Writes to `out`.
    pub fn new(out: impl Write + Send + 'static, resource: Resource) -> Self {
        JsonLinesExporter {
            out: BufWriter::new(Box::new(out)),
            resource,
        }
    }

    /// Appends to the file at `path`, creating it (not its directory).
    ///
    /// # Errors
    /// When the file cannot be opened for appending.
    pub fn create(path: impl AsRef<Path>, resource: Resource) -> io::Result<Self> {
        let file: File = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self::new(file, resource))
    }

    /// Writes to standard output.
    pub fn stdout(resource: Resource) -> Self {
        Self::new(io::stdout(), resource)
    }

    fn write_batch(&mut self, batch: &[SpanData]) -> io::Result<()> {
        let request = proto::export_request(&self.resource, batch);
        serde_json::to_writer(&mut self.out, &request)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

impl SpanExporter for JsonLinesExporter {
    fn export(&mut self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        let result = self
            .write_batch(&batch)
            .map_err(|e| ExportError::Io(e.to_string()));
        Box::pin(async move { result })
    }

    fn force_flush(&mut self) -> ExportFuture<'_> {
        let result = self.out.flush().map_err(|e| ExportError::Io(e.to_string()));
        Box::pin(async move { result })
    }
}
