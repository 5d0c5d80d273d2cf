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
    /// A shared resource of the server is busy (password hashing); the client may retry.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Details stay in the server log; the client learns only that it was not its fault.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
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
        _ => Error::Database(error),
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
            Error::Database(source) => {
                tracing::error!(error = %source, "database error");
                return Status::internal("internal error");
            }
        };
        Status::new(code, error.to_string())
    }
}
