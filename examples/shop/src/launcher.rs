//! The launcher: prepares the database and the Kafka peer, starts each
//! service as its own process, waits until all answer `/health`, sends the
//! traffic, waits for the last notifications, stops the services (closing
//! their standard input, so that they flush their spans and write their
//! export counts), and prints the report.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::BoxError;
use crate::db::{self, Db};
use crate::kafka::Broker;
use crate::services::{Service, env, optional};
use crate::telemetry::{export_file, logs_file, traces_file};
use crate::traffic::{self, Outcome};
use crate::ui::Ui;

/// Users whose rows the user service caches at start.
const HOT_USERS: u32 = 100;
/// The fewest users a run may seed (cache misses need users beyond the
/// cached ones).
pub(crate) const MIN_USERS: u32 = 1_000;
/// How long the services may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a service may take to stop once asked.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait for the notifications of paid orders.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);

/// The launcher's options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub(crate) requests: u32,
    pub(crate) users: u32,
    pub(crate) out: PathBuf,
    pub(crate) quiet: bool,
    /// `--ui`: where the web viewer listens (it keeps running after the
    /// report).
    pub(crate) ui: Option<SocketAddr>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            requests: 40,
            users: 200_000,
            out: PathBuf::from("target").join("shop-run"),
            quiet: false,
            ui: None,
        }
    }
}

/// Progress lines, unless `--quiet`.
#[derive(Debug, Clone, Copy)]
struct Progress {
    quiet: bool,
}

impl Progress {
    fn say(self, what: &str, detail: impl std::fmt::Display) {
        if !self.quiet {
            println!("  {what:<10} {detail}");
        }
    }

    fn item(self, detail: impl std::fmt::Display) {
        if !self.quiet {
            println!("    {detail}");
        }
    }
}

/// Runs the whole shop once.
pub(crate) fn run(options: &Options) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(launch(options))
}

async fn launch(options: &Options) -> Result<(), BoxError> {
    let progress = Progress {
        quiet: options.quiet,
    };
    let user_database = optional("DATABASE_URL");
    if let Some(url) = &user_database {
        db::check_url(url)?;
    }
    let out = prepare_out_dir(&options.out)?;
    let run_id = format!("{:08x}", fastrand::u32(..));
    println!(
        "shop: {} services, {} requests; spans and logs go to {}",
        Service::ALL.len(),
        options.requests,
        out.display()
    );

    let started = Instant::now();
    let (database_url, database) = match user_database {
        Some(url) => {
            let what = if url.starts_with("sqlite:") {
                "SQLite (DATABASE_URL)"
            } else {
                "PostgreSQL (DATABASE_URL), schema shop"
            };
            (url, what.to_owned())
        }
        None => {
            let path = out.join("shop.db");
            (db::sqlite_url(&path), format!("SQLite {}", path.display()))
        }
    };
    Db::create(&database_url, options.users).await?;
    progress.say(
        "database",
        format!(
            "{database}: {} users, no index on email ({:.1} s)",
            options.users,
            started.elapsed().as_secs_f64()
        ),
    );

    let broker = Broker::start(optional("KAFKA_BROKERS")).await?;
    progress.say("kafka", broker.describe());

    let ui = match options.ui {
        Some(listen) => {
            let ui = Ui::start(&out, listen).await?;
            progress.say(
                "collector",
                format!(
                    "tracewire collect at {} (store {}), the viewer at {}",
                    ui.otlp_endpoint(),
                    out.join("collect").display(),
                    ui.url()
                ),
            );
            Some(ui)
        }
        None => None,
    };
    let otlp = ui.as_ref().map(Ui::otlp_endpoint);

    let started = Instant::now();
    let mut fleet = Fleet::start(
        &out,
        &database_url,
        broker.servers(),
        &run_id,
        otlp.as_deref(),
    )?;
    if let Err(error) = fleet.wait_ready().await {
        fleet.stop().await;
        return Err(error);
    }
    progress.say(
        "services",
        format!(
            "{} ready in {:.1} s",
            fleet
                .members
                .iter()
                .map(|m| format!("{} :{}", m.service.name(), m.addr.port()))
                .collect::<Vec<_>>()
                .join(", "),
            started.elapsed().as_secs_f64()
        ),
    );

    let gateway = format!("http://{}", fleet.addr(Service::Gateway));
    let plan = traffic::plan(options.requests, options.users, HOT_USERS);
    let total = plan.len();
    let width = total.to_string().len();
    let mut done = 0;
    let started = Instant::now();
    progress.say("traffic", format!("{total} requests to {gateway}"));
    let outcomes = traffic::run(&gateway, plan, |outcome| {
        done += 1;
        progress.item(progress_line(done, total, width, outcome));
    })
    .await;
    let outcomes = match outcomes {
        Ok(outcomes) => outcomes,
        Err(error) => {
            fleet.stop().await;
            return Err(error);
        }
    };
    progress.item(format!("done in {:.1} s", started.elapsed().as_secs_f64()));
    let written = traffic::write_outcomes(&out.join("requests.jsonl"), &outcomes);

    let waited = wait_for_notifications(&database_url).await;
    match &waited {
        Ok(elapsed) => progress.say(
            "kafka",
            format!(
                "every paid order notified through {} ({:.1} s)",
                crate::kafka::TOPIC,
                elapsed.as_secs_f64()
            ),
        ),
        Err(error) => println!("  warning: {error}"),
    }

    let stopped = fleet.stop().await;
    progress.say("stopped", stopped);
    drop(broker);
    written?;

    let picked = crate::report::print(&out, &outcomes)?;
    let unexpected = outcomes.iter().filter(|o| !o.as_expected()).count();
    if unexpected > 0 {
        return Err(format!(
            "{unexpected} of {} requests did not get the answer their scenario expects (see {})",
            outcomes.len(),
            out.join("requests.jsonl").display()
        )
        .into());
    }
    waited?;
    if let Some(ui) = ui {
        let records = ui.send_logs(&out).await?;
        println!(
            "\nThe web viewer ({records} log lines sent to the collector as OTLP logs; Ctrl-C stops it):"
        );
        println!("  {}", ui.url());
        if let Some(slow) = &picked.slow {
            println!("  the slowest login: {}", ui.trace_url(slow));
        }
        if let (Some(normal), Some(slow)) = (&picked.normal, &picked.slow) {
            println!(
                "  compared with a normal one: {}#/compare?a={normal}&b={slow}",
                ui.url()
            );
        }
        if let Some(checkout) = &picked.checkout {
            println!(
                "  a checkout across six services: {}",
                ui.trace_url(checkout)
            );
        }
        println!("  the service map: {}#/map", ui.url());
        ui.serve_until_stopped().await;
    }
    Ok(())
}

fn progress_line(done: usize, total: usize, width: usize, outcome: &Outcome) -> String {
    let status = outcome
        .status
        .map_or_else(|| "---".to_owned(), |s| s.to_string());
    let mark = if outcome.as_expected() {
        ""
    } else {
        "  unexpected!"
    };
    format!(
        "[{done:>width$}/{total}] {:<22} {status} {:>8.1} ms  trace {}{mark}",
        outcome.scenario.label(),
        outcome.duration_ms,
        outcome.trace_id.as_deref().unwrap_or("?"),
    )
}

/// Creates `out` and removes what an earlier run left there (the
/// exporters append).
fn prepare_out_dir(out: &Path) -> Result<PathBuf, BoxError> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut stale: Vec<PathBuf> = Service::ALL
        .iter()
        .flat_map(|&s| [traces_file(out, s), logs_file(out, s), export_file(out, s)])
        .collect();
    stale.extend(
        ["requests.jsonl", "shop.db", "shop.db-wal", "shop.db-shm"]
            .iter()
            .map(|name| out.join(name)),
    );
    for path in stale {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display()).into()),
        }
    }
    Ok(out.canonicalize().unwrap_or_else(|_| out.to_owned()))
}

/// Free loopback ports, one per service (held together while choosing so
/// that no two are the same).
fn free_addrs(count: usize) -> Result<Vec<SocketAddr>, BoxError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot find a free loopback port: {e}"))?;
    Ok(listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<Result<_, _>>()?)
}

/// A running service.
#[derive(Debug)]
struct Member {
    service: Service,
    addr: SocketAddr,
    child: Child,
}

/// The running services.
#[derive(Debug)]
struct Fleet {
    members: Vec<Member>,
    out: PathBuf,
}

impl Fleet {
    /// Starts every service: `<this program> service <name>`, with its
    /// address, its peers' URLs and where to write, in its environment;
    /// its log lines (standard output) go to `logs-<name>.jsonl`. With
    /// `otlp`, the services also export their spans to that endpoint.
    fn start(
        out: &Path,
        database_url: &str,
        brokers: &str,
        run_id: &str,
        otlp: Option<&str>,
    ) -> Result<Fleet, BoxError> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find this program to start the services: {e}"))?;
        let addrs = free_addrs(Service::ALL.len())?;
        let peers: Vec<(String, String)> = Service::ALL
            .iter()
            .zip(&addrs)
            .map(|(service, addr)| (service.url_variable(), format!("http://{addr}")))
            .collect();
        let mut fleet = Fleet {
            members: Vec::new(),
            out: out.to_owned(),
        };
        for (&service, &addr) in Service::ALL.iter().zip(&addrs) {
            let logs = std::fs::File::create(logs_file(out, service))?;
            let mut command = Command::new(&exe);
            if let Some(endpoint) = otlp {
                command
                    .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
                    .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
            }
            let spawned = command
                .args(["service", service.name()])
                .env("OTEL_SERVICE_NAME", service.name())
                .env(env::ADDR, addr.to_string())
                .env(env::OUT_DIR, out)
                .env(env::DATABASE_URL, database_url)
                .env(env::KAFKA_BROKERS, brokers)
                .env(env::HOT_USERS, HOT_USERS.to_string())
                .env(env::RUN_ID, run_id)
                .env(env::STOP_ON_EOF, "1")
                .envs(peers.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::piped())
                .stdout(logs)
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn();
            match spawned {
                Ok(child) => fleet.members.push(Member {
                    service,
                    addr,
                    child,
                }),
                Err(error) => {
                    return Err(
                        format!("cannot start the {} service: {error}", service.name()).into(),
                    );
                }
            }
        }
        Ok(fleet)
    }

    fn addr(&self, service: Service) -> SocketAddr {
        self.members
            .iter()
            .find(|m| m.service == service)
            .map(|m| m.addr)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Waits until every service answers `GET /health`.
    async fn wait_ready(&mut self) -> Result<(), BoxError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        for member in &mut self.members {
            let url = format!("http://{}/health", member.addr);
            loop {
                if let Some(status) = member.child.try_wait()? {
                    return Err(format!(
                        "the {} service exited during start-up ({status}); see its log lines in {}",
                        member.service.name(),
                        logs_file(&self.out, member.service).display()
                    )
                    .into());
                }
                if client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "the {} service did not become ready in {} s",
                        member.service.name(),
                        READY_TIMEOUT.as_secs()
                    )
                    .into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Asks every service to stop (closing its standard input), waits for
    /// each to flush and exit, and kills those that do not in time. Says
    /// how it went (whether the spans reached their exporters is the
    /// report's business: the services' export counts).
    async fn stop(mut self) -> String {
        for member in &mut self.members {
            drop(member.child.stdin.take());
        }
        let waits = self.members.iter_mut().map(|member| async move {
            let name = member.service.name();
            match tokio::time::timeout(STOP_TIMEOUT, member.child.wait()).await {
                Ok(Ok(status)) if status.success() => None,
                Ok(Ok(status)) => Some(format!("{name} exited with {status}")),
                Ok(Err(error)) => Some(format!("{name}: {error}")),
                Err(_) => {
                    let _ = member.child.kill().await;
                    Some(format!("{name} killed after {} s", STOP_TIMEOUT.as_secs()))
                }
            }
        });
        let problems: Vec<String> = futures_util::future::join_all(waits)
            .await
            .into_iter()
            .flatten()
            .collect();
        if problems.is_empty() {
            format!("{} services exited cleanly", self.members.len())
        } else {
            format!("with problems: {}", problems.join("; "))
        }
    }
}

/// Waits until every paid order has been notified (the notification
/// service's callback sets `notified`).
async fn wait_for_notifications(database_url: &str) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let db = Db::connect(database_url, 1).await?;
    let result = loop {
        match db.unnotified_orders().await {
            Ok(0) => break Ok(started.elapsed()),
            Ok(left) if started.elapsed() > NOTIFY_TIMEOUT => {
                break Err(format!(
                    "{left} paid orders were still not notified after {} s",
                    NOTIFY_TIMEOUT.as_secs()
                )
                .into());
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(error) => break Err(format!("cannot count notified orders: {error}").into()),
        }
    };
    db.close().await;
    result
}
