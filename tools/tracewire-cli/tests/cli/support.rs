//! Running the built binary.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The shop's files, one per service.
pub(crate) const SHOP: [&str; 5] = [
    "gateway.jsonl",
    "auth.jsonl",
    "orders.jsonl",
    "payments.jsonl",
    "notifications.jsonl",
];

/// Trace A of the shop files.
pub(crate) const A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// Trace B of the shop files.
pub(crate) const B: &str = "5a1c3b0d2e9f4a8b9c7d6e5f4a3b2c1d";

/// What a run of the binary printed.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Asserts the run succeeded and printed nothing on stderr; its stdout.
    pub(crate) fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "{self:#?}");
        assert_eq!(self.stderr, "", "{self:#?}");
        self.stdout
    }

    /// Asserts the run failed with exit code 1 and printed nothing on
    /// stdout; its stderr.
    pub(crate) fn failed(self) -> String {
        assert_eq!(self.code, Some(1), "{self:#?}");
        assert_eq!(self.stdout, "", "{self:#?}");
        self.stderr
    }

    /// Stdout parsed as JSON.
    pub(crate) fn json(self) -> serde_json::Value {
        let stdout = self.ok();
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

pub(crate) fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Runs `tracewire args…` in `tests/data`, with `stdin` as standard input.
pub(crate) fn tracewire_with_stdin(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracewire"))
        .args(args)
        .current_dir(data_dir())
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tracewire binary runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    // A binary that does not read its input closes the pipe early; what it
    // printed is checked by the caller.
    let _ = input.write_all(stdin);
    drop(input);
    let out = child.wait_with_output().expect("the tracewire binary ends");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `tracewire args…` in `tests/data` with an empty standard input.
pub(crate) fn tracewire(args: &[&str]) -> Run {
    tracewire_with_stdin(args, b"")
}

/// `args` followed by the shop files.
pub(crate) fn with_shop<'a>(args: &[&'a str]) -> Vec<&'a str> {
    args.iter().copied().chain(SHOP).collect()
}
