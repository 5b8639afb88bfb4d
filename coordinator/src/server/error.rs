//! The one place where coordinator errors become gRPC statuses (STYLE rule 6).
//!
//! Handlers return [`ApiError`]; the conversion below decides the status code and what a
//! caller may read. Store failures are logged in full and reported as `Internal` without
//! file paths or SQL.

use tonic::Status;

use crate::jobs::SchedulerError;
use crate::store::StoreError;

/// What went wrong serving a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No usable client identity.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's role or name does not allow this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The request is malformed (bad spec, bad registration, protocol violation).
    #[error("{0}")]
    InvalidArgument(String),
    /// The named job does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the job's state (results of a running job, ...).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller was too slow (no `Register` in time).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The coordinator is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The scheduler refused or is gone.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        match err {
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            ApiError::InvalidArgument(m) => Status::invalid_argument(m),
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::DeadlineExceeded(m) => Status::deadline_exceeded(m),
            ApiError::Unavailable(m) => Status::unavailable(m),
            ApiError::Store(StoreError::NotFound(what)) => {
                Status::not_found(format!("{what} not found"))
            }
            ApiError::Store(e) => {
                tracing::error!("store error: {e}");
                Status::internal("the coordinator's store failed; see its log")
            }
            ApiError::Scheduler(SchedulerError::NotFound(id)) => {
                Status::not_found(format!("job {id} not found"))
            }
            ApiError::Scheduler(e @ SchedulerError::AlreadyEnded { .. }) => {
                Status::failed_precondition(e.to_string())
            }
            ApiError::Scheduler(SchedulerError::Stopped) => {
                Status::unavailable("the coordinator is shutting down")
            }
            ApiError::Scheduler(SchedulerError::Store(e)) => {
                tracing::error!("store error: {e}");
                Status::internal("the coordinator's store failed; see its log")
            }
        }
    }
}

impl From<Status> for ApiError {
    /// Statuses produced by `silo_proto::tls` (identity checks).
    fn from(status: Status) -> ApiError {
        match status.code() {
            tonic::Code::PermissionDenied => ApiError::PermissionDenied(status.message().into()),
            _ => ApiError::Unauthenticated(status.message().into()),
        }
    }
}
