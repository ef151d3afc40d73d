//! What differs between the databases: system name, dialect, connection
//! attributes, the error code recorded and which error codes are errors.

use std::borrow::Cow;

use futures_core::future::BoxFuture;
use sqlx::error::DatabaseError;
use sqlx::{Connection, Database};

use crate::sanitize::Dialect;

mod sealed {
    pub trait Sealed {}
}

/// The connection attributes recorded on every span of a pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// `db.namespace`: the database name (the file name for SQLite,
    /// `:memory:` for an in-memory database).
    pub namespace: Option<String>,
    /// `server.address`: host name, IP address or Unix socket path.
    pub address: Option<String>,
    /// `server.port`, only when it is not the database's default port.
    pub port: Option<u16>,
}

/// A sqlx database this crate can trace: [`sqlx::Postgres`] (feature
/// `postgres`), `sqlx::MySql` (feature `mysql`, MySQL and MariaDB) and
/// [`sqlx::Sqlite`] (feature `sqlite`). Sealed: its methods are this crate's
/// business.
pub trait TracedDatabase: Database + sealed::Sealed {
    /// `db.system.name` as far as it is known before connecting.
    const SYSTEM: &'static str;
    /// The lexical rules for sanitizing this database's SQL.
    const DIALECT: Dialect;

    /// The connection attributes of a pool's connect options.
    fn connection_info(options: &<Self::Connection as Connection>::Options) -> ConnectionInfo;

    /// `db.response.status_code` of an error the database returned: the
    /// driver's code (PostgreSQL: the SQLSTATE; SQLite: the extended result
    /// code). MySQL/MariaDB: the error number, not the SQLSTATE.
    fn status_code<'e>(error: &'e (dyn DatabaseError + 'static)) -> Option<Cow<'e, str>> {
        error.code()
    }

    /// Whether an error with this code (`db.response.status_code`) marks the
    /// span as failed.
    fn is_error_code(code: &str) -> bool {
        let _ = code;
        true
    }

    /// `db.system.name` for the server behind `conn` (MySQL's driver asks
    /// whether the server is MariaDB). Run once per pool.
    fn detect_system(conn: &mut Self::Connection) -> BoxFuture<'_, &'static str> {
        let _ = conn;
        Box::pin(std::future::ready(Self::SYSTEM))
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
fn server_info(
    database: Option<&str>,
    host: &str,
    port: u16,
    socket: Option<&std::path::Path>,
    default_port: u16,
) -> ConnectionInfo {
    let address = socket.map_or_else(|| host.to_owned(), |s| s.display().to_string());
    ConnectionInfo {
        namespace: database.map(str::to_owned),
        port: (socket.is_none() && port != default_port).then_some(port),
        address: Some(address),
    }
}

#[cfg(feature = "postgres")]
impl sealed::Sealed for sqlx::Postgres {}

#[cfg(feature = "postgres")]
impl TracedDatabase for sqlx::Postgres {
    const SYSTEM: &'static str = "postgresql";
    const DIALECT: Dialect = Dialect::Postgres;

    fn connection_info(options: &sqlx::postgres::PgConnectOptions) -> ConnectionInfo {
        // Without a database name, PostgreSQL connects to the user's.
        let database = options
            .get_database()
            .unwrap_or_else(|| options.get_username());
        server_info(
            Some(database),
            options.get_host(),
            options.get_port(),
            options.get_socket().map(std::path::PathBuf::as_path),
            5432,
        )
    }

    /// SQLSTATE classes 00 (success) and 01 (warning) are not errors.
    fn is_error_code(code: &str) -> bool {
        !(code.starts_with("00") || code.starts_with("01"))
    }
}

#[cfg(feature = "mysql")]
impl sealed::Sealed for sqlx::MySql {}

#[cfg(feature = "mysql")]
impl TracedDatabase for sqlx::MySql {
    const SYSTEM: &'static str = "mysql";
    const DIALECT: Dialect = Dialect::MySql;

    fn connection_info(options: &sqlx::mysql::MySqlConnectOptions) -> ConnectionInfo {
        server_info(
            options.get_database(),
            options.get_host(),
            options.get_port(),
            options.get_socket().map(std::path::PathBuf::as_path),
            3306,
        )
    }

    /// The error number (`1062` for a duplicate key), which says more than
    /// MySQL's SQLSTATE (`23000` for every integrity constraint).
    fn status_code<'e>(error: &'e (dyn DatabaseError + 'static)) -> Option<Cow<'e, str>> {
        match error.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
            Some(mysql) => Some(Cow::Owned(mysql.number().to_string())),
            None => error.code(),
        }
    }

    fn detect_system(conn: &mut sqlx::MySqlConnection) -> BoxFuture<'_, &'static str> {
        Box::pin(async move {
            let version: Result<String, _> = sqlx::query_scalar("SELECT VERSION()")
                .fetch_one(&mut *conn)
                .await;
            match version {
                Ok(v) if v.to_ascii_lowercase().contains("mariadb") => "mariadb",
                _ => "mysql",
            }
        })
    }
}

#[cfg(feature = "sqlite")]
impl sealed::Sealed for sqlx::Sqlite {}

#[cfg(feature = "sqlite")]
impl TracedDatabase for sqlx::Sqlite {
    const SYSTEM: &'static str = "sqlite";
    const DIALECT: Dialect = Dialect::Sqlite;

    fn connection_info(options: &sqlx::sqlite::SqliteConnectOptions) -> ConnectionInfo {
        let file = options.get_filename().to_string_lossy();
        // sqlx names in-memory databases `file:sqlx-in-memory-N`.
        let namespace = if file.starts_with("file:sqlx-in-memory-") {
            ":memory:".to_owned()
        } else {
            file.into_owned()
        };
        ConnectionInfo {
            namespace: Some(namespace),
            address: None,
            port: None,
        }
    }
}
