//! What the receivers (OTLP/HTTP and OTLP/gRPC) share: turning a decoded
//! export request into a batch of rows, and queueing it for the writer.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::mpsc;

use crate::Counters;
use crate::logs::{self, LogRow};
use crate::otlp::{self, Received};

/// One accepted export's rows, waiting in the queue for the writer.
#[derive(Debug)]
pub(crate) enum Batch {
    /// Spans (each a store row and, for the forwarding exporters, the
    /// span as received): run through the pipeline's processors, then
    /// stored and forwarded.
    Spans(Vec<Received>),
    /// Log records: stored as they are (the processors are trace
    /// processors).
    Logs(Vec<LogRow>),
}

/// Why a batch was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue is full: the client should retry later.
    Full,
    /// The writer is gone: the collector is stopping.
    Stopping,
}

/// The sending end of the queue between the receivers and the writer,
/// with the counters of what was accepted.
#[derive(Clone, Debug)]
pub(crate) struct Ingest {
    pub(crate) queue: mpsc::Sender<Batch>,
    pub(crate) counters: Arc<Counters>,
}

impl Ingest {
    /// Queues the spans of a trace export request; answers the
    /// response to send (with a partial success for rejected spans).
    pub(crate) fn traces(
        &self,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, Refused> {
        let (rows, rejected, reason) = otlp::rows(request);
        let accepted = count(rows.len());
        if !rows.is_empty() {
            self.submit(Batch::Spans(rows))?;
            Counters::add(&self.counters.spans_accepted, accepted);
        }
        Counters::add(&self.counters.spans_rejected, rejected);
        Ok(ExportTraceServiceResponse {
            partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message: reason.unwrap_or_default(),
            }),
        })
    }

    /// Queues the records of a logs export request. No record is
    /// rejected (an invalid trace id means no trace), so the response
    /// is always a full success.
    pub(crate) fn logs(
        &self,
        request: ExportLogsServiceRequest,
    ) -> Result<ExportLogsServiceResponse, Refused> {
        let rows = logs::rows(request);
        let accepted = count(rows.len());
        if !rows.is_empty() {
            self.submit(Batch::Logs(rows))?;
            Counters::add(&self.counters.logs_accepted, accepted);
        }
        Ok(ExportLogsServiceResponse {
            partial_success: None,
        })
    }

    fn submit(&self, batch: Batch) -> Result<(), Refused> {
        match self.queue.try_send(batch) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Counters::add(&self.counters.requests_throttled, 1);
                Err(Refused::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Refused::Stopping),
        }
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
