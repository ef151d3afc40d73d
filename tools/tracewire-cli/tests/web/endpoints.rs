//! The viewer's answers without a browser (these run everywhere): the
//! embedded page, the CLI's analyses over the store, the collector's API
//! passed through, errors; and `tracewire collect` serving the viewer.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Command, Stdio};

use http_body_util::BodyExt as _;
use hyper::Method;
use serde_json::Value;

use super::{LOGIN_ROWS, LOGINS, SLOW_LOGIN, otlp::Running, shop};

/// One request answered in-process: status, content type, body.
async fn respond(running: &Running, method: Method, target: &str) -> (u16, String, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let reply = tracewire_cli::web::respond(running.collector.store(), &method, path, query).await;
    let status = reply.status().as_u16();
    let content_type = reply
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = reply.into_body().collect().await.map(|c| c.to_bytes());
    let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
    (status, content_type, body)
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_answers_with_the_page_the_clis_analyses_and_the_api() {
    let running = Running::start().await;
    let (spans, logs) = shop();
    running.send_spans(&spans).await;
    running.send_logs(&logs).await;

    // The page and its parts, embedded.
    let (status, content_type, body) = respond(&running, Method::GET, "/").await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    assert!(
        body.contains(r#"<script src="/app.js"></script>"#),
        "{body}"
    );
    for (path, kind) in [("/app.js", "text/javascript"), ("/app.css", "text/css")] {
        let (status, content_type, body) = respond(&running, Method::GET, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert!(!body.is_empty());
    }

    // The critical path, as `tracewire critical-path --json`.
    let (status, _, body) = respond(
        &running,
        Method::GET,
        &format!("/api/traces/{SLOW_LOGIN}/critical-path"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let path = json(&body);
    assert_eq!(path["bottleneck"]["name"], "SELECT users");
    assert!(path["bottleneck"]["share"].as_f64() > Some(0.9), "{path}");

    // The waterfall's rows, as `tracewire view --json`.
    let (status, _, body) = respond(
        &running,
        Method::GET,
        &format!("/api/traces/{SLOW_LOGIN}/view"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let view = json(&body);
    let rows: Vec<(String, String, u64, bool)> = view["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap_or_default().to_owned(),
                s["name"].as_str().unwrap_or_default().to_owned(),
                s["depth"].as_u64().unwrap_or_default(),
                s["bottleneck"] == true,
            )
        })
        .collect();
    let expected: Vec<(String, String, u64, bool)> = LOGIN_ROWS
        .iter()
        .map(|(s, n, d)| {
            (
                (*s).to_owned(),
                (*n).to_owned(),
                *d as u64,
                *n == "SELECT users",
            )
        })
        .collect();
    assert_eq!(rows, expected);

    // The comparison, as `tracewire diff A B --json`.
    let (status, _, body) = respond(
        &running,
        Method::GET,
        &format!("/api/compare?a={}&b={SLOW_LOGIN}", LOGINS[0]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let diff = json(&body);
    assert_eq!(diff["slower"][0]["name"], "SELECT users");
    assert_eq!(diff["slower"][0]["delta_ns"], 414_000_000);

    // The collector's API, passed through: the trace with its logs.
    let (status, _, body) =
        respond(&running, Method::GET, &format!("/api/traces/{SLOW_LOGIN}")).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["logs"].as_array().map(Vec::len), Some(4));

    // Errors, as the API writes them.
    for (method, target, want) in [
        (Method::GET, "/api/traces/xyz/view".to_owned(), 400),
        (
            Method::GET,
            format!("/api/traces/{}/critical-path", "ab".repeat(16)),
            404,
        ),
        (Method::GET, format!("/api/compare?a={}", LOGINS[0]), 400),
        (
            Method::GET,
            format!("/api/compare?a={0}&b={0}&c=1", LOGINS[0]),
            400,
        ),
        (Method::GET, "/nope".to_owned(), 404),
        (Method::POST, "/".to_owned(), 405),
    ] {
        let (status, content_type, body) = respond(&running, method, &target).await;
        assert_eq!(status, want, "{target}: {body}");
        assert_eq!(content_type, "application/json", "{target}");
        assert!(json(&body)["error"].is_string(), "{target}: {body}");
    }

    // And over HTTP, on the viewer's own port.
    let addr = running.web.local_addr();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("the viewer accepts");
        write!(
            stream,
            "GET / HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
        )
        .expect("sent");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .expect("answered");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-security-policy: default-src 'self'")
    );
    running.stop().await;
}

#[cfg(unix)]
#[test]
fn tracewire_collect_serves_the_viewer_where_asked() {
    let dir = tempfile::tempdir().expect("a directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracewire"))
        .args([
            "collect",
            "--listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
            "--ui-listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tracewire runs");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut url = None;
    for _ in 0..10 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(rest) = line
            .trim()
            .strip_prefix("tracewire collect: trace viewer on ")
        {
            url = Some(rest.to_owned());
            break;
        }
    }
    let url = url.expect("the viewer's URL is printed");
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).expect("the viewer accepts");
    write!(
        stream,
        "GET / HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .expect("sent");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("<title>tracewire</title>"),
        "{answer}"
    );

    // SIGTERM once the collector listens for it (before, it would kill).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !catches_sigterm(child.id()) {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGTERM is never caught"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let output = child.wait_with_output().expect("it exits");
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn a_bad_ui_listen_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_tracewire"))
        .args(["collect", "--ui-listen", "localhost"])
        .output()
        .expect("tracewire runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`off`"), "{stderr}");
}

/// Whether process `pid` has a handler for SIGTERM (Linux: `SigCgt` in
/// `/proc/PID/status`; elsewhere, assumed after a moment).
#[cfg(unix)]
fn catches_sigterm(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (15 - 1)) != 0),
        Err(_) => {
            std::thread::sleep(std::time::Duration::from_millis(500));
            true
        }
    }
}
