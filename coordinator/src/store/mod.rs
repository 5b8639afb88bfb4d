//! The coordinator's durable state, behind the [`Store`] trait (STYLE rule 4).
//!
//! What is kept (DESIGN sections 5 and 6): registered sites with their declared datasets and
//! reported ledger head; jobs with their spec, state and summary; one row per task sent to
//! a site; every round result a site delivered (small ones inline, large ones as files);
//! the audit copy of every privacy [`ChargeRecord`] sites report; and the files of each
//! job's result. [`SqliteStore`] is the embedded implementation; a PostgreSQL backend for a
//! highly available coordinator would implement the same trait.
//!
//! Every method is synchronous and durable on return (SQLite in WAL mode with
//! `synchronous = FULL`, files fsynced before they are referenced): the scheduler only
//! acts on, and reports, what has been written. Async callers run store calls through
//! [`blocking`].

mod files;
mod records;
mod sqlite;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use records::{
    ChargeRecord, DatasetRecord, JobRecord, JobState, ResultFileInfo, RoundResult, SiteRecord,
    TaskRecord, TaskState,
};
pub use sqlite::SqliteStore;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file under the data directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A stored JSON column does not parse (the database was edited or is corrupt).
    #[error("corrupt {what} in the database: {message}")]
    Corrupt {
        /// Which column.
        what: String,
        /// The parse error.
        message: String,
    },
    /// The named job, task or file does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A name that cannot be used as a file name (contains `/`, `..`, ...).
    #[error("invalid name {0:?}: expected letters, digits, '.', '_' or '-'")]
    BadName(String),
    /// A job with this id already exists.
    #[error("job {0} already exists")]
    Duplicate(String),
    /// The blocking worker running the operation panicked or was cancelled.
    #[error("store worker failed: {0}")]
    Worker(String),
}

/// Durable state of the coordinator. See the module docs for what each table holds.
pub trait Store: Send + Sync + 'static {
    // --- sites ---------------------------------------------------------------------

    /// Records a site's registration (replacing its previous datasets, head and version).
    fn upsert_site(&self, site: &SiteRecord) -> Result<(), StoreError>;
    /// Updates a site's `last_seen` time (RFC 3339).
    fn touch_site(&self, name: &str, at: &str) -> Result<(), StoreError>;
    /// Every site that ever registered, by name.
    fn sites(&self) -> Result<Vec<SiteRecord>, StoreError>;

    // --- charges (audit copy of the site ledgers) ----------------------------------

    /// Stores the charges a site reported (duplicates, by hash, are ignored) and returns
    /// how many were new. The site's known ledger head follows the stored charges that
    /// chain onto it (`prev_hash` = the head; an empty head matches a genesis `prev_hash`
    /// of zeros), in any arrival order; a dataset's reported spend is raised to the
    /// charge's `epsilon_spent`.
    fn record_charges(&self, site: &str, charges: &[ChargeRecord]) -> Result<usize, StoreError>;
    /// Charges, oldest first (by site, then ledger sequence), optionally filtered.
    fn charges(
        &self,
        site: Option<&str>,
        dataset: Option<&str>,
    ) -> Result<Vec<ChargeRecord>, StoreError>;
    /// Charges a job caused, at every site.
    fn job_charges(&self, job_id: &str) -> Result<Vec<ChargeRecord>, StoreError>;

    // --- jobs ----------------------------------------------------------------------

    /// Stores a new job.
    fn insert_job(&self, job: &JobRecord) -> Result<(), StoreError>;
    /// One job.
    fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    /// Every job, oldest first.
    fn jobs(&self) -> Result<Vec<JobRecord>, StoreError>;
    /// Replaces a job's mutable fields (state, reason, round, completed_rounds, summary,
    /// updated_at) with those of `job`.
    fn update_job(&self, job: &JobRecord) -> Result<(), StoreError>;

    // --- tasks ---------------------------------------------------------------------

    /// Stores a task before it is sent.
    fn insert_task(&self, task: &TaskRecord) -> Result<(), StoreError>;
    /// Replaces a task's state, reason, progress and updated_at.
    fn update_task(&self, task: &TaskRecord) -> Result<(), StoreError>;
    /// Every task of a job, in the order they were created.
    fn tasks(&self, job_id: &str) -> Result<Vec<TaskRecord>, StoreError>;

    // --- round results -------------------------------------------------------------

    /// Stores one site's result of one attempt of a round (durable on return).
    fn save_round_result(&self, result: &RoundResult) -> Result<(), StoreError>;
    /// The results of one attempt of a round, by site.
    fn round_results(
        &self,
        job_id: &str,
        round: u32,
        attempt: u32,
    ) -> Result<Vec<RoundResult>, StoreError>;

    // --- job result files ----------------------------------------------------------

    /// Writes (atomically replaces) a file of a job's result.
    fn write_result_file(&self, job_id: &str, name: &str, data: &[u8]) -> Result<(), StoreError>;
    /// The files of a job's result, by name.
    fn result_files(&self, job_id: &str) -> Result<Vec<ResultFileInfo>, StoreError>;
    /// Up to `max_len` bytes of a result file from `offset` (empty at the end).
    fn read_result_file(
        &self,
        job_id: &str,
        name: &str,
        offset: u64,
        max_len: usize,
    ) -> Result<Vec<u8>, StoreError>;
}

/// Runs a store operation on tokio's blocking pool: SQLite commits fsync, which must not
/// stall the async workers that carry every site's stream.
pub async fn blocking<T, F>(store: &Arc<dyn Store>, f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
}

/// The current time as RFC 3339 (UTC), the format of every timestamp the store keeps.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// Whether `name` is safe as one path component under the data directory.
pub(crate) fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
