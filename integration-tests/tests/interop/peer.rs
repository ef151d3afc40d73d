//! The Python gRPC peer (`python/grpc_peer.py`) as a child process, killed
//! on drop, and the spans it writes (one JSON object a line).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the peer may take to start (it runs `grpc_tools.protoc` first),
/// to answer, and to export a span.
const PATIENCE: Duration = Duration::from_secs(60);

/// The Python of the virtualenv `.ci/run` creates; a clear failure when it
/// is missing.
fn python() -> PathBuf {
    let python = match std::env::var_os("TRACEWIRE_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is not set (nor TRACEWIRE_PYTHON)");
            Path::new(&home).join(".cache/tracewire-venv/bin/python")
        }
    };
    assert!(
        python.is_file(),
        "no Python for the gRPC interop peer at {}: run .ci/run (it creates the \
         virtualenv with grpcio, grpcio-tools, opentelemetry-sdk and \
         opentelemetry-instrumentation-grpc) or set TRACEWIRE_PYTHON",
        python.display()
    );
    python
}

/// A span the peer exported.
#[derive(Debug, Clone)]
pub(crate) struct PySpan {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    pub(crate) parent_id: Option<String>,
    pub(crate) parent_is_remote: bool,
    pub(crate) name: String,
    /// `SERVER`, `CLIENT`, …
    pub(crate) kind: String,
}

impl PySpan {
    fn parse(line: &str) -> PySpan {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad span line {line:?}: {e}"));
        let text = |key: &str| {
            v[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in span line {line:?}"))
                .to_owned()
        };
        PySpan {
            trace_id: text("trace_id"),
            span_id: text("span_id"),
            parent_id: v["parent_id"].as_str().map(str::to_owned),
            parent_is_remote: v["parent_is_remote"].as_bool().unwrap_or(false),
            name: text("name"),
            kind: text("kind"),
        }
    }
}

/// A running peer; killed (and reaped) on drop.
pub(crate) struct Peer {
    child: Child,
    /// Lines of its stdout, read by a thread.
    stdout: mpsc::Receiver<String>,
    spans: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Peer {
    fn start(args: &[&str]) -> Peer {
        let dir = tempfile::tempdir().expect("temp dir");
        let spans = dir.path().join("spans.jsonl");
        let stderr = dir.path().join("stderr.txt");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(python())
            .arg(manifest.join("python/grpc_peer.py"))
            .arg("--proto")
            .arg(manifest.join("proto"))
            .arg("--spans")
            .arg(&spans)
            .args(args)
            // The SDK's defaults, whatever the environment of the test says.
            .env("OTEL_PROPAGATORS", "tracecontext,baggage")
            .env_remove("OTEL_SDK_DISABLED")
            .env_remove("OTEL_TRACES_SAMPLER")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start the Python gRPC peer");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            child,
            stdout,
            spans,
            stderr,
            _dir: dir,
        }
    }

    /// What the peer wrote on stderr, for failure messages.
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The next stdout line starting with `prefix`, without it; waits
    /// while the runtime keeps serving (the peer may be calling us).
    async fn line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.stdout.try_recv() {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "the Python peer exited ({status:?}) before printing {prefix:?}; stderr:\n{}",
                        self.stderr()
                    );
                }
                Err(mpsc::TryRecvError::Empty) => {
                    assert!(
                        Instant::now() < deadline,
                        "the Python peer printed no {prefix:?} within {PATIENCE:?}; stderr:\n{}",
                        self.stderr()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Starts a peer serving `interop.Echo`; returns it and its port.
    pub(crate) async fn serve() -> (Peer, u16) {
        let mut peer = Peer::start(&["serve"]);
        let port = peer.line("PORT ").await;
        let port = port
            .parse()
            .unwrap_or_else(|_| panic!("bad port {port:?} from the Python peer"));
        (peer, port)
    }

    /// Runs a peer that calls `Say(message)` at `target` (host:port) once;
    /// returns it (for its spans) and the reply.
    pub(crate) async fn call(target: &str, message: &str) -> (Peer, String) {
        let mut peer = Peer::start(&["call", target, message]);
        let reply = peer.line("REPLY ").await;
        (peer, reply)
    }

    /// Every span exported so far.
    pub(crate) fn spans(&self) -> Vec<PySpan> {
        match std::fs::read_to_string(&self.spans) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(PySpan::parse)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The one span of `kind` (`SERVER`, `CLIENT`), once exported.
    pub(crate) async fn span(&self, kind: &str) -> PySpan {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let spans = self.spans();
            let of_kind: Vec<_> = spans.iter().filter(|s| s.kind == kind).collect();
            match of_kind.as_slice() {
                [span] => return (*span).clone(),
                [] if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                _ => panic!(
                    "expected one {kind} span from the Python peer, got {spans:#?}; stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
