//! The seed's shop as real services, traced end to end.
//!
//! `shop` with no arguments is the launcher: it prepares a database (SQLite
//! in the output directory, or PostgreSQL from `DATABASE_URL`) and a Kafka
//! peer (librdkafka's mock cluster, or `KAFKA_BROKERS`), starts every
//! service as its own OS process (`shop service <name>`), sends a mix of
//! traffic through the gateway, stops everything cleanly and prints what
//! the traces show: waterfalls, the bottleneck, a slow trace compared with
//! a normal one, the slow trace's log lines from every service, and a
//! checkout as one trace across all six services.
//!
//! ```text
//! gateway ──HTTP──▶ auth ──HTTP──▶ users (cache, then SQL)
//!    └────HTTP──▶ orders ──gRPC──▶ payments      (a checkout: auth, then orders)
//!                   └─Kafka order.created─▶ notifications ──HTTP──▶ orders
//! ```

mod db;
mod kafka;
mod launcher;
mod net;
mod report;
mod services;
mod telemetry;
mod traffic;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use services::Service;

/// Errors of this program: each carries a message a user can act on.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "\
The shop: six traced services, a load, and what the traces show.

USAGE:
    shop [OPTIONS]              run the whole shop (the launcher)
    shop service <NAME>         run one service (the launcher does this)

OPTIONS:
    --requests <N>   requests to send through the gateway [default: 40]
    --users <N>      rows in the users table [default: 200000]
    --out <DIR>      where traces, logs and the database go [default: target/shop-run]
    --quiet          no progress lines while the traffic runs
    --ui             also send the traces and log lines to an embedded
                     `tracewire collect` and keep its web viewer running
                     after the report (Ctrl-C stops it)
    --ui-listen <ADDR>  where the viewer listens [default: 127.0.0.1:16686]
    -h, --help       this text

SERVICES: gateway, auth, users, orders, payments, notifications

ENVIRONMENT:
    DATABASE_URL                  postgres://… to use PostgreSQL instead of SQLite
    KAFKA_BROKERS                 host:port,… to use a Kafka cluster instead of the mock one
    OTEL_EXPORTER_OTLP_ENDPOINT   also send spans over OTLP (Jaeger, Tempo, a Collector);
                                  with --ui the services send to the embedded collector
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Launch(launcher::Options),
    Service(Service),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut options = launcher::Options::default();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "service" => {
                let name = value("service")?;
                return Service::from_name(&name)
                    .map(Command::Service)
                    .ok_or_else(|| format!("unknown service {name:?}"));
            }
            "--requests" => options.requests = parse_count("--requests", &value("--requests")?)?,
            "--users" => {
                options.users = parse_count("--users", &value("--users")?)?;
                if options.users < launcher::MIN_USERS {
                    return Err(format!("--users must be at least {}", launcher::MIN_USERS));
                }
            }
            "--out" => options.out = PathBuf::from(value("--out")?),
            "--quiet" => options.quiet = true,
            "--ui" => {
                if options.ui.is_none() {
                    options.ui = Some(tracewire_cli::web::DEFAULT_LISTEN);
                }
            }
            "--ui-listen" => options.ui = Some(parse_addr(&value("--ui-listen")?)?),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Command::Launch(options))
}

fn parse_addr(value: &str) -> Result<std::net::SocketAddr, String> {
    value
        .parse()
        .map_err(|_| format!("--ui-listen takes HOST:PORT (an IP address), not {value:?}"))
}

fn parse_count(name: &str, value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "{name} takes a positive whole number, not {value:?}"
        )),
    }
}

#[allow(
    clippy::print_stderr,
    reason = "a command-line program reports its errors on stderr"
)]
fn main() -> ExitCode {
    let command = match parse_args(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("shop: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Command::Service(service) => services::run(service),
        Command::Launch(options) => launcher::run(&options),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shop: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn no_arguments_launch_with_the_defaults() {
        assert_eq!(
            parse(&[]),
            Ok(Command::Launch(launcher::Options::default()))
        );
    }

    #[test]
    fn launcher_options_are_read() {
        let Ok(Command::Launch(options)) = parse(&[
            "--requests",
            "12",
            "--out",
            "/tmp/x",
            "--quiet",
            "--users",
            "5000",
        ]) else {
            panic!("not a launch");
        };
        assert_eq!(options.requests, 12);
        assert_eq!(options.users, 5000);
        assert_eq!(options.out, PathBuf::from("/tmp/x"));
        assert!(options.quiet);
        assert_eq!(options.ui, None);
    }

    #[test]
    fn the_viewer_listens_where_asked() {
        let Ok(Command::Launch(options)) = parse(&["--ui"]) else {
            panic!("not a launch");
        };
        assert_eq!(options.ui, Some("127.0.0.1:16686".parse().unwrap()));
        let Ok(Command::Launch(options)) = parse(&["--ui-listen", "127.0.0.1:0", "--ui"]) else {
            panic!("not a launch");
        };
        assert_eq!(options.ui, Some("127.0.0.1:0".parse().unwrap()));
        assert!(parse(&["--ui-listen", "localhost"]).is_err());
    }

    #[test]
    fn a_service_is_named() {
        assert_eq!(
            parse(&["service", "payments"]),
            Ok(Command::Service(Service::Payments))
        );
        assert!(parse(&["service", "billing"]).is_err());
        assert!(parse(&["service"]).is_err());
    }

    #[test]
    fn bad_numbers_and_unknown_flags_are_errors_not_panics() {
        for args in [
            &["--requests", "0"][..],
            &["--requests", "-3"],
            &["--requests", "lots"],
            &["--requests"],
            &["--users", "1e6"],
            &["--users", "10"],
            &["--verbose"],
            &["--ui-listen"],
        ] {
            assert!(parse(args).is_err(), "{args:?} accepted");
        }
    }
}
