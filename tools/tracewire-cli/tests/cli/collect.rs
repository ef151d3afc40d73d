//! `tracewire collect` as a process: it listens, answers, and on SIGTERM
//! stores what it received and exits 0.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// One request on a fresh connection; the status code.
fn post(addr: &str, content_type: &str, body: &[u8]) -> u16 {
    post_to(addr, "/v1/traces", content_type, body)
}

/// One request to `path` on a fresh connection; the status code.
fn post_to(addr: &str, path: &str, content_type: &str, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

/// `tracewire collect` with `args`, its stderr banner line read.
fn start(args: &[&str], data: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracewire"))
        .arg("collect")
        .args(args)
        .arg("--data")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    (child, banner)
}

/// The `host:port` after `prefix` in the banner, up to `end`.
fn address_after(banner: &str, prefix: &str, end: char) -> String {
    banner
        .split(prefix)
        .nth(1)
        .and_then(|rest| rest.split(end).next())
        .unwrap_or_else(|| panic!("no {prefix:?} in {banner:?}"))
        .to_owned()
}

/// Sends SIGTERM and waits: the process exits 0; its stdout.
#[cfg(unix)]
fn stop(child: std::process::Child) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[cfg(unix)]
#[test]
fn collect_answers_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (child, banner) = start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
            "--ui-listen",
            "off",
            "--max-logs",
            "2",
        ],
        dir.path(),
    );
    let addr = address_after(&banner, "http://", '/');
    // The OTLP/gRPC listener is up too; no Zipkin listener unless
    // configured.
    let grpc = address_after(&banner, "OTLP/gRPC on http://", ',');
    assert!(!banner.contains("Zipkin"), "{banner}");
    TcpStream::connect(&grpc).expect("the gRPC listener accepts");

    assert_eq!(
        post(&addr, "application/x-protobuf", b"\xff\xff garbage"),
        400
    );
    assert_eq!(post(&addr, "text/plain", b"x"), 415);
    assert_eq!(
        post(&addr, "application/json", br#"{"resourceSpans":[]}"#),
        200
    );
    // Three log records of no trace, one request each; --max-logs 2 keeps
    // the latest two.
    for time in 1..=3 {
        let body = format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"timeUnixNano":"{time}","body":{{"stringValue":"r{time}"}}}}]}}]}}]}}"#
        );
        assert_eq!(
            post_to(&addr, "/v1/logs", "application/json", body.as_bytes()),
            200
        );
    }

    let stdout = stop(child);
    assert!(
        stdout.starts_with("stored 0 spans") && stdout.contains("3 log records"),
        "{stdout}"
    );
    let usage = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = tracewire_collect::Store::open(dir.path()).await.unwrap();
        store.usage().await.unwrap()
    });
    assert_eq!((usage.traces, usage.logs), (0, 2));
}

/// A configured `zipkin` receiver is announced, and what it receives is
/// stored.
#[cfg(unix)]
#[test]
fn a_configured_zipkin_receiver_is_announced_and_stores() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.yaml");
    std::fs::write(
        &config,
        "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:0\n  \
         zipkin:\n    endpoint: 127.0.0.1:0\n\
         exporters:\n  tracewire_store: {}\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp, zipkin]\n      exporters: [tracewire_store]\n",
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let (child, banner) = start(
        &["--config", &config, "--ui-listen", "off"],
        &dir.path().join("data"),
    );
    let zipkin = address_after(&banner, "Zipkin on http://", '/');
    let span = br#"[{"traceId":"463ac35c9f6413ad48485a3953bb6124","id":"a2fb4a1d1a96d312",
        "name":"get /api","kind":"SERVER","timestamp":1700000000000000,"duration":2000,
        "localEndpoint":{"serviceName":"frontend"}}]"#;
    assert_eq!(
        post_to(&zipkin, "/api/v2/spans", "application/json", span),
        202
    );
    let stdout = stop(child);
    assert!(stdout.starts_with("stored 1 spans"), "{stdout}");
}

#[test]
fn a_config_with_an_unknown_component_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.yaml");
    std::fs::write(
        &config,
        "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:0\n\
         processors:\n  groupbytrace: {}\n\
         exporters:\n  tracewire_store: {}\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [groupbytrace]\n      exporters: [tracewire_store]\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tracewire"))
        .args(["collect", "--data"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("groupbytrace"), "{stderr}");
}
