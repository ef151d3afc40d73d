//! `shop --ui` in a real browser: the shop runs with its embedded
//! collector and web viewer, and headless Chromium (Debian's `chromium`
//! and `chromium-driver`, driven over WebDriver) opens the links the
//! report prints. What the pages show is checked against the services'
//! own files, read with the CLI's code: the logins found by a search,
//! slowest first; the slow login's waterfall rows,
//! its critical path and bottleneck, its log lines from every service, the
//! comparison with a normal login, and the service map's edges. Structure
//! and counts only, never timings. Screenshots go to
//! `$CARGO_TARGET_TMPDIR/web-screenshots/shop-*.png`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};
use tracewire_cli::{Trace, Traces};

#[path = "../../../../tools/tracewire-cli/tests/web/browser.rs"]
mod browser;

use browser::Browser;

/// The shop, kept running by `--ui` after its report; killed on drop.
struct Running {
    child: Child,
    dir: tempfile::TempDir,
    /// The report's links, by what they show.
    links: BTreeMap<String, String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `shop --ui --ui-listen 127.0.0.1:0` and waits (bounded) for the
/// report's links.
fn start_shop() -> Running {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shop"))
        .args(["--requests", "20", "--users", "50000", "--quiet"])
        .args(["--ui-listen", "127.0.0.1:0", "--out"])
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("KAFKA_BROKERS")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the shop");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut links = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !links.contains_key("the service map") {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = received
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no viewer links from the shop; so far: {links:?}"));
        if let Some((what, url)) = line.trim().split_once(": http://") {
            links.insert(what.to_owned(), format!("http://{url}"));
        }
    }
    Running { child, dir, links }
}

impl Running {
    fn link(&self, what: &str) -> &str {
        self.links
            .get(what)
            .unwrap_or_else(|| panic!("no link {what:?} in {:?}", self.links))
    }

    /// The services' traces, as the files have them.
    fn traces(&self) -> Traces {
        let files: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("the run's directory")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("traces-") && n.ends_with(".jsonl"))
            })
            .collect();
        Traces::from_paths(&files).expect("the trace files")
    }

    /// The log lines of `trace_id` in the services' files, by service.
    fn log_lines(&self, trace_id: &str) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for entry in std::fs::read_dir(self.dir.path()).expect("the run's directory") {
            let path = entry.expect("an entry").path();
            let Some(service) = log_file_service(&path) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).expect("a logs file");
            let n = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|l| l["trace_id"] == trace_id)
                .count();
            if n > 0 {
                counts.insert(service, n);
            }
        }
        counts
    }
}

fn log_file_service(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    Some(
        name.strip_prefix("logs-")?
            .strip_suffix(".jsonl")?
            .to_owned(),
    )
}

/// The trace id at the end of a `#/trace/ID` link.
fn trace_id(link: &str) -> &str {
    link.rsplit('/').next().expect("an id")
}

/// Runs `script` in the page until it returns something other than null
/// or false (bounded).
async fn until(browser: &Browser, script: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = browser
            .client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        if !v.is_null() && v != json!(false) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {script}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens `url` afresh and waits until the page has rendered its hash.
async fn open(browser: &Browser, url: &str) {
    browser
        .client
        .goto("about:blank")
        .await
        .expect("a blank page");
    browser.client.goto(url).await.expect("the page loads");
    until(
        browser,
        "const v = document.getElementById('view'); return v && v.dataset.ready === (location.hash || '#/search') ? true : null;",
    )
    .await;
}

/// Callers and callees counted from the files: a span whose parent is in
/// another service is a call of that service.
fn calls_between_services(traces: &Traces) -> BTreeMap<(String, String), u64> {
    let mut calls = BTreeMap::new();
    for trace in traces.iter() {
        for (i, span) in trace.spans().iter().enumerate() {
            if let Some(parent) = trace.parent(i).map(|p| trace.span(p))
                && parent.service != span.service
            {
                *calls
                    .entry((parent.service.clone(), span.service.clone()))
                    .or_insert(0) += 1;
            }
        }
    }
    calls
}

fn find<'t>(traces: &'t Traces, id: &str) -> &'t Trace {
    traces.find(id).expect("the trace is in the files")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver (.ci/run installs them): cargo nextest run --run-ignored all"]
async fn the_shops_run_is_shown_in_the_web_viewer() {
    let shop = start_shop();
    let traces = shop.traces();
    let browser = Browser::start().await;

    // Search for the logins, slowest first: the same traces as in the
    // files, the slowest of them first.
    let base = shop
        .link("the service map")
        .split_once('#')
        .map(|(base, _)| base.to_owned())
        .expect("a page link");
    open(
        &browser,
        &format!("{base}#/search?service=gateway&operation=POST+%2Fapi%2Flogin&sort=slowest&limit=50&run=1"),
    )
    .await;
    let found = until(
        &browser,
        "const r = [...document.querySelectorAll('#results tr.result')]; return r.length ? r.map(x => x.dataset.traceId) : null;",
    )
    .await;
    let found: Vec<String> = serde_json::from_value(found).expect("trace ids");
    let logins: Vec<&Trace> = traces
        .iter()
        .filter(|t| {
            t.spans()
                .iter()
                .any(|s| s.service == "gateway" && s.name == "POST /api/login")
        })
        .collect();
    assert_eq!(found.len(), logins.len(), "{found:?}");
    let slowest = logins
        .iter()
        .max_by_key(|t| t.duration_nanos())
        .expect("logins");
    assert_eq!(found[0], slowest.id().to_hex().to_string());
    browser.screenshot("shop-search-logins").await;

    // The slowest cache miss (the report's link): its rows, its critical
    // path and bottleneck as the CLI computes them from the files, and its
    // log lines.
    let slow_link = shop.link("the slowest login").to_owned();
    let slow = find(&traces, trace_id(&slow_link));
    open(&browser, &slow_link).await;
    let rows = until(
        &browser,
        "const r = [...document.querySelectorAll('#span-rows .row')]; return r.length ? r.map(x => [x.dataset.service, x.dataset.name, x.dataset.critical === 'true', x.hasAttribute('data-bottleneck')]) : null;",
    )
    .await;
    let rows: Vec<(String, String, bool, bool)> = serde_json::from_value(rows).expect("rows");
    assert_eq!(rows.len(), slow.spans().len(), "{rows:?}");
    let path = tracewire_cli::critical_path(slow);
    let bottleneck = slow.span(path.bottleneck().span);
    let marked: Vec<_> = rows.iter().filter(|r| r.3).collect();
    assert_eq!(marked.len(), 1, "{rows:?}");
    assert_eq!(
        (marked[0].0.as_str(), marked[0].1.as_str()),
        (bottleneck.service.as_str(), bottleneck.name.as_str())
    );
    let on_path = rows.iter().filter(|r| r.2).count();
    assert_eq!(on_path, path.steps().len(), "{rows:?}");
    // A cache miss: the users query is on the critical path.
    assert!(
        rows.iter()
            .any(|r| r.0 == "users" && r.1 == "SELECT users" && r.2),
        "{rows:?}"
    );
    let logs = until(
        &browser,
        "const r = [...document.querySelectorAll('#logs tr.log-row')]; return r.length ? r.map(x => x.querySelector('.chip').textContent) : null;",
    )
    .await;
    let services: Vec<String> = serde_json::from_value(logs).expect("log rows");
    let mut shown = BTreeMap::new();
    for service in services {
        *shown.entry(service).or_insert(0) += 1;
    }
    let in_files = shop.log_lines(trace_id(&slow_link));
    assert_eq!(shown, in_files);
    assert!(
        in_files.len() >= 3,
        "log lines from several services: {in_files:?}"
    );
    browser.screenshot("shop-slow-login").await;

    // The comparison: the slower spans ranked as the CLI's diff ranks them.
    let compare_link = shop.link("compared with a normal one").to_owned();
    open(&browser, &compare_link).await;
    browser
        .client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("table.slower tbody tr"))
        .await
        .expect("the slower spans");
    let slower = browser
        .client
        .execute(
            "return [...document.querySelectorAll('table.slower tbody tr')].map(r => r.dataset.name);",
            Vec::new(),
        )
        .await
        .expect("names");
    let slower: Vec<String> = serde_json::from_value(slower).expect("names");
    let (a, b) = compare_link
        .split_once("a=")
        .and_then(|(_, rest)| rest.split_once("&b="))
        .expect("two ids");
    let diff = tracewire_cli::diff(find(&traces, a), find(&traces, b));
    let mut cli: Vec<(i64, String)> = diff
        .matched
        .iter()
        .filter(|m| m.delta_nanos() > 0)
        .map(|m| (m.delta_nanos(), m.key.part().name.clone()))
        .collect();
    cli.sort_by_key(|(delta, _)| std::cmp::Reverse(*delta));
    assert_eq!(
        slower.first(),
        cli.first().map(|(_, name)| name),
        "{slower:?} vs {cli:?}"
    );
    browser.screenshot("shop-compare").await;

    // The service map: every service-to-service call of the files, with
    // its count.
    open(&browser, shop.link("the service map")).await;
    let edges = until(
        &browser,
        "const e = [...document.querySelectorAll('svg.map g.edge')]; return e.length ? e.map(x => [x.dataset.caller, x.dataset.callee, x.dataset.protocol, Number(x.dataset.calls)]) : null;",
    )
    .await;
    let edges: Vec<(String, String, String, u64)> = serde_json::from_value(edges).expect("edges");
    let shown: BTreeMap<(String, String), (String, u64)> = edges
        .into_iter()
        .map(|(caller, callee, protocol, calls)| ((caller, callee), (protocol, calls)))
        .collect();
    for ((caller, callee), calls) in calls_between_services(&traces) {
        let (protocol, n) = shown
            .get(&(caller.clone(), callee.clone()))
            .unwrap_or_else(|| panic!("no edge {caller} → {callee} in {shown:?}"));
        assert_eq!(*n, calls, "{caller} → {callee}");
        let expected = match (caller.as_str(), callee.as_str()) {
            ("orders", "payments") => "grpc",
            ("orders", "notifications") => "kafka",
            _ => "http",
        };
        assert_eq!(protocol, expected, "{caller} → {callee}");
    }
    let database = shown
        .get(&("users".to_owned(), "sqlite".to_owned()))
        .expect("the users service's queries");
    assert_eq!(database.0, "sql");
    browser.screenshot("shop-service-map").await;
    browser.close().await;
}
