//! The error every layer returns, and its one mapping to a gRPC status.

use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request value is wrong; `field` names it as the client wrote it (JSON names).
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// A shared resource is at its limit (e.g. concurrent regex searches); retry later.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The request's deadline ran out while the database worked on it.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The database cannot be reached (stopped, restarting, unreachable, no connection within
    /// the pool's acquire timeout): the request may succeed when retried.
    #[error("{0}")]
    Unavailable(String),
    /// Details stay in the server log; the client learns only that it was not its fault.
    #[error("database error: {0}")]
    Database(#[source] sea_orm::DbErr),
    /// A fault of the server that is not the database's: a blocking task (password hashing)
    /// that died, a secret or key that could not be made. Logged, and Internal to the client,
    /// like a database error.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A statement the database cancelled because the request's deadline ran out (see
/// `store::begin_snapshot`) is DeadlineExceeded, like a request the deadline layer stops; a
/// database that cannot be reached ([`database_unavailable`]) is Unavailable; every other
/// database error is Internal.
impl From<sea_orm::DbErr> for Error {
    fn from(error: sea_orm::DbErr) -> Self {
        if statement_timed_out(&error) {
            Self::DeadlineExceeded(
                "the database statement did not finish within the request deadline".into(),
            )
        } else if database_unavailable(&error) {
            // Not logged per request: during an outage every request fails this way, and the
            // health probe (`api::grpc::health`) logs the outage once, when it begins and ends.
            tracing::debug!(%error, "the database is unavailable");
            Self::Unavailable(UNAVAILABLE.into())
        } else {
            Self::Database(error)
        }
    }
}

/// What a client is told while the database cannot be reached.
pub const UNAVAILABLE: &str = "the directory's database is unavailable; retry later";

/// Whether `error` says the database cannot be reached rather than that a statement failed:
/// no connection within the pool's acquire timeout (sqlx retries a refused connection until
/// then), the pool closed, an I/O or TLS error on the connection (refused, reset, broken
/// pipe, end of file), or a PostgreSQL error of class 08 (connection exception), 57P01
/// (admin_shutdown: `pg_ctl stop` ended the session), 57P02 (crash_shutdown) or 57P03
/// (cannot_connect_now: starting up or shutting down). The one classification of outages:
/// `From<DbErr>` above, the gate's token lookup and the start-up wait (`store::connect_with`)
/// all ask it.
pub fn database_unavailable(error: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match error {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(error))
        | DbErr::Exec(RuntimeErr::SqlxError(error))
        | DbErr::Query(RuntimeErr::SqlxError(error)) => sqlx_unavailable(error),
        _ => false,
    }
}

fn sqlx_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// Whether PostgreSQL cancelled the statement (`query_canceled`, SQLSTATE 57014): the
/// `statement_timeout` of `store::begin_snapshot` ran out.
fn statement_timed_out(error: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match error {
        DbErr::Query(RuntimeErr::SqlxError(error)) | DbErr::Exec(RuntimeErr::SqlxError(error)) => {
            matches!(
                error.as_ref(),
                sqlx::Error::Database(db) if db.code().as_deref() == Some("57014")
            )
        }
        _ => false,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A database error, where a unique-constraint violation becomes `conflict` (AlreadyExists).
pub fn unique(error: sea_orm::DbErr, conflict: impl FnOnce() -> Error) -> Error {
    match error.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => conflict(),
        _ => Error::from(error),
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let code = match &error {
            Error::InvalidArgument { .. } => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::ResourceExhausted(_) => Code::ResourceExhausted,
            Error::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Database(source) => {
                tracing::error!(error = %source, "database error");
                return Status::internal("internal error");
            }
            Error::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                return Status::internal("internal error");
            }
        };
        Status::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;

    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};

    use super::*;

    /// A database error with a SQLSTATE, as PostgreSQL's driver reports one.
    #[derive(Debug)]
    struct Sqlstate(&'static str);

    impl std::fmt::Display for Sqlstate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Sqlstate {}

    impl sqlx::error::DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            "a test error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn query(error: sqlx::Error) -> DbErr {
        DbErr::Query(RuntimeErr::SqlxError(Arc::new(error)))
    }

    fn sqlstate(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Sqlstate(code)))
    }

    fn code_of(error: DbErr) -> Code {
        Status::from(Error::from(error)).code()
    }

    #[test]
    fn a_database_that_cannot_be_reached_is_unavailable() {
        use std::io::{Error as Io, ErrorKind};
        let gone = [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
            DbErr::Conn(RuntimeErr::SqlxError(Arc::new(sqlx::Error::PoolTimedOut))),
            DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sqlx::Error::PoolClosed))),
            query(sqlx::Error::Io(Io::from(ErrorKind::ConnectionRefused))),
            query(sqlx::Error::Io(Io::from(ErrorKind::ConnectionReset))),
            query(sqlx::Error::Io(Io::from(ErrorKind::UnexpectedEof))),
            query(sqlx::Error::Tls("handshake interrupted".into())),
            // admin_shutdown, crash_shutdown, cannot_connect_now
            query(sqlstate("57P01")),
            query(sqlstate("57P02")),
            query(sqlstate("57P03")),
            // connection_exception, connection_failure, ...
            query(sqlstate("08000")),
            query(sqlstate("08006")),
            DbErr::Conn(RuntimeErr::SqlxError(Arc::new(sqlstate("08001")))),
        ];
        for error in gone {
            let text = error.to_string();
            assert!(database_unavailable(&error), "{text}");
            let status = Status::from(Error::from(error));
            assert_eq!(status.code(), Code::Unavailable, "{text}");
            assert_eq!(status.message(), UNAVAILABLE, "{text}: no driver detail");
        }
    }

    #[test]
    fn failed_statements_keep_their_codes() {
        // query_canceled: the statement_timeout of the request's deadline.
        assert_eq!(code_of(query(sqlstate("57014"))), Code::DeadlineExceeded);
        for other in [
            query(sqlstate("23505")),
            query(sqlstate("42P01")),
            // 57 is operator intervention, but only the shutdowns mean the database is gone.
            query(sqlstate("57000")),
            query(sqlx::Error::RowNotFound),
            query(sqlx::Error::Protocol("unexpected message".into())),
            DbErr::Custom("a bug".into()),
            DbErr::RecordNotFound("x".into()),
        ] {
            let text = other.to_string();
            assert!(!database_unavailable(&other), "{text}");
            assert_eq!(code_of(other), Code::Internal, "{text}");
        }
    }
}
