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
/// `store::begin_snapshot`) is DeadlineExceeded, like a request the deadline layer stops;
/// every other database error is Internal.
impl From<sea_orm::DbErr> for Error {
    fn from(error: sea_orm::DbErr) -> Self {
        if statement_timed_out(&error) {
            Self::DeadlineExceeded(
                "the database statement did not finish within the request deadline".into(),
            )
        } else {
            Self::Database(error)
        }
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
