//! The six services, and what the launcher tells each of them through its
//! environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::BoxError;

mod auth;
mod gateway;
mod notifications;
mod orders;
mod payments;
mod users;

pub(crate) use auth::{FAULT_HEADER, FLAKY_AUTH};
pub(crate) use gateway::TRACE_RESPONSE;
pub(crate) use payments::DECLINED_CARD;

/// One of the shop's services; each runs as its own OS process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Service {
    /// The public entry: `/api/login`, and `/api/orders` (a checkout:
    /// authenticated through auth, then placed with orders).
    Gateway,
    /// Issues session tokens after asking the user service who the user is.
    Auth,
    /// Users by e-mail: an in-process cache in front of the `users` table.
    Users,
    /// Places orders: stores them, charges the payment service (gRPC), publishes
    /// `order.created`, and takes the notification service's callback.
    Orders,
    /// Charges cards: the gRPC method `shop.Payments/Charge`.
    Payments,
    /// Consumes `order.created`, tells the customer, and calls back orders.
    Notifications,
}

impl Service {
    /// Every service, in start order.
    pub(crate) const ALL: [Service; 6] = [
        Service::Users,
        Service::Auth,
        Service::Payments,
        Service::Orders,
        Service::Notifications,
        Service::Gateway,
    ];

    /// The service's name: its `service.name`, its subcommand, its files.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Auth => "auth",
            Service::Users => "users",
            Service::Orders => "orders",
            Service::Payments => "payments",
            Service::Notifications => "notifications",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The variable holding this service's base URL, for its callers.
    pub(crate) fn url_variable(self) -> String {
        format!("SHOP_{}_URL", self.name().to_ascii_uppercase())
    }
}

/// The variables the launcher sets for every service.
pub(crate) mod env {
    /// `host:port` to listen on.
    pub(crate) const ADDR: &str = "SHOP_ADDR";
    /// Where `traces-<service>.jsonl` goes.
    pub(crate) const OUT_DIR: &str = "SHOP_OUT_DIR";
    /// `sqlite://…` or `postgres://…` (users and orders).
    pub(crate) const DATABASE_URL: &str = "SHOP_DATABASE_URL";
    /// Kafka bootstrap servers (orders and notifications).
    pub(crate) const KAFKA_BROKERS: &str = "SHOP_KAFKA_BROKERS";
    /// Users whose rows the user service loads into its cache at start.
    pub(crate) const HOT_USERS: &str = "SHOP_HOT_USERS";
    /// This run's id: notifications ignore events of other runs.
    pub(crate) const RUN_ID: &str = "SHOP_RUN_ID";
    /// `1`: shut down when standard input closes (how the launcher stops
    /// a service).
    pub(crate) const STOP_ON_EOF: &str = "SHOP_STOP_ON_STDIN_EOF";
}

/// A service's settings, from its environment.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) addr: SocketAddr,
    pub(crate) out_dir: PathBuf,
    pub(crate) run_id: String,
}

impl Config {
    fn from_env() -> Result<Config, BoxError> {
        let addr = optional(env::ADDR).unwrap_or_else(|| "127.0.0.1:0".to_owned());
        Ok(Config {
            addr: addr
                .parse()
                .map_err(|e| format!("{}={addr:?} is not host:port: {e}", env::ADDR))?,
            out_dir: optional(env::OUT_DIR).map_or_else(|| PathBuf::from("."), PathBuf::from),
            run_id: optional(env::RUN_ID).unwrap_or_default(),
        })
    }
}

/// The variable `name`, when set and not empty.
pub(crate) fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The variable `name`, or an error naming it.
pub(crate) fn required(name: &str) -> Result<String, BoxError> {
    optional(name).ok_or_else(|| format!("{name} is not set (the launcher sets it)").into())
}

/// The base URL of `peer`, from the environment.
pub(crate) fn peer_url(peer: Service) -> Result<String, BoxError> {
    let url = required(&peer.url_variable())?;
    Ok(url.trim_end_matches('/').to_owned())
}

/// Runs `service` until it is asked to stop, then flushes its spans and
/// writes what became of them (`export-<service>.json`).
pub(crate) fn run(service: Service) -> Result<(), BoxError> {
    let config = Config::from_env()?;
    let telemetry = crate::telemetry::init(service, &config.out_dir)?;
    let out_dir = config.out_dir.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let shutdown = crate::net::Shutdown::from_signals();
        match service {
            Service::Gateway => gateway::run(config, shutdown).await,
            Service::Auth => auth::run(config, shutdown).await,
            Service::Users => users::run(config, shutdown).await,
            Service::Orders => orders::run(config, shutdown).await,
            Service::Payments => payments::run(config, shutdown).await,
            Service::Notifications => notifications::run(config, shutdown).await,
        }
    });
    if let Err(error) = &result {
        tracing::error!(error = %error, "{} stopped on an error", service.name());
    } else {
        tracing::info!("{} stopped", service.name());
    }
    // Background tasks end with the runtime; then the guard delivers the
    // last spans, and the counts say how that went.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let written = telemetry.finish(service, &out_dir);
    result.and(written)
}

/// Serves `routes` behind the traced server layer, ready at once, until
/// `shutdown`; then closes `db`.
async fn serve_then_close(
    config: &Config,
    routes: axum::Router,
    db: crate::db::Db,
    shutdown: crate::net::Shutdown,
) -> Result<(), BoxError> {
    let served = crate::net::serve(
        config.addr,
        routes,
        tracewire_tower::TraceLayer::server(),
        crate::net::Ready::now(),
        shutdown,
    )
    .await;
    db.close().await;
    served
}
