//! [`Store`] on SQLite (`DATA_DIR/coordinator.db`) plus files under `DATA_DIR/jobs/<id>/`.
//!
//! The database runs in WAL mode with `synchronous = FULL`: a commit is on disk when the
//! call returns. Round results up to [`INLINE_RESULT_BYTES`] live in the database; bigger
//! ones are written (and fsynced) to `jobs/<id>/rounds/` before their row is committed.
//! Result files live in `jobs/<id>/result/` and are indexed in `result_files`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::files;
use super::{
    ChargeRecord, JobRecord, JobState, ResultFileInfo, RoundResult, SiteRecord, Store, StoreError,
    TaskRecord, TaskState, is_safe_name,
};

/// Round results up to this size are stored in the database; larger ones as files.
pub const INLINE_RESULT_BYTES: usize = 256 * 1024;

/// Schema version stored in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sites (
    name TEXT PRIMARY KEY,
    datasets_json TEXT NOT NULL,
    ledger_head TEXT NOT NULL,
    ledger_entries INTEGER NOT NULL,
    version TEXT NOT NULL,
    allowed_kinds_json TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    round INTEGER NOT NULL,
    rounds INTEGER NOT NULL,
    completed_rounds INTEGER NOT NULL,
    completed_attempts_json TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    summary_json TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    site TEXT NOT NULL,
    round INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    progress REAL NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_job ON tasks(job_id);
CREATE TABLE IF NOT EXISTS round_results (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    round INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    site TEXT NOT NULL,
    task_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB,
    file TEXT,
    PRIMARY KEY (job_id, round, attempt, site)
);
CREATE TABLE IF NOT EXISTS charges (
    site TEXT NOT NULL,
    seq INTEGER NOT NULL,
    dataset TEXT NOT NULL,
    job_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    mechanism_json TEXT NOT NULL,
    epsilon REAL NOT NULL,
    delta REAL NOT NULL,
    epsilon_spent REAL NOT NULL,
    recorded_at TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (site, hash)
);
CREATE INDEX IF NOT EXISTS charges_by_job ON charges(job_id);
CREATE TABLE IF NOT EXISTS result_files (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);
";

/// The SQLite-backed store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    data_dir: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/coordinator.db`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        files::create_dir(data_dir)?;
        let conn = Connection::open(data_dir.join("coordinator.db"))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt {
                what: "schema".into(),
                message: format!(
                    "database schema version {version} is newer than this coordinator's \
                     ({SCHEMA_VERSION}); upgrade the coordinator"
                ),
            });
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Worker("store lock poisoned by a panic".into()))
    }

    fn job_dir(&self, job_id: &str) -> Result<PathBuf, StoreError> {
        if !is_safe_name(job_id) {
            return Err(StoreError::BadName(job_id.to_string()));
        }
        Ok(self.data_dir.join("jobs").join(job_id))
    }

    fn result_path(&self, job_id: &str, name: &str) -> Result<PathBuf, StoreError> {
        if !is_safe_name(name) {
            return Err(StoreError::BadName(name.to_string()));
        }
        Ok(self.job_dir(job_id)?.join("result").join(name))
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain records always serialise")
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: what.to_string(),
        message: e.to_string(),
    })
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        message: format!("unknown value {value:?}"),
    }
}

const SITE_COLUMNS: &str = "name, datasets_json, ledger_head, ledger_entries, version, \
     allowed_kinds_json, registered_at, last_seen";

fn site_from_row(row: &Row<'_>) -> rusqlite::Result<(SiteRecord, String, String)> {
    Ok((
        SiteRecord {
            name: row.get(0)?,
            datasets: Vec::new(),
            ledger_head: row.get(2)?,
            ledger_entries: row.get::<_, i64>(3)? as u64,
            version: row.get(4)?,
            allowed_kinds: Vec::new(),
            registered_at: row.get(6)?,
            last_seen: row.get(7)?,
        },
        row.get(1)?,
        row.get(5)?,
    ))
}

fn finish_site(
    (mut site, datasets, kinds): (SiteRecord, String, String),
) -> Result<SiteRecord, StoreError> {
    site.datasets = parse_json("sites.datasets_json", &datasets)?;
    site.allowed_kinds = parse_json("sites.allowed_kinds_json", &kinds)?;
    Ok(site)
}

const CHARGE_COLUMNS: &str = "site, seq, dataset, job_id, task_id, mechanism_json, epsilon, \
     delta, epsilon_spent, recorded_at, prev_hash, hash";

fn charge_from_row(row: &Row<'_>) -> rusqlite::Result<ChargeRecord> {
    Ok(ChargeRecord {
        site: row.get(0)?,
        seq: row.get::<_, i64>(1)? as u64,
        dataset: row.get(2)?,
        job_id: row.get(3)?,
        task_id: row.get(4)?,
        mechanism_json: row.get(5)?,
        epsilon: row.get(6)?,
        delta: row.get(7)?,
        epsilon_spent: row.get(8)?,
        recorded_at: row.get(9)?,
        prev_hash: row.get(10)?,
        hash: row.get(11)?,
    })
}

const JOB_COLUMNS: &str = "id, name, kind, spec_json, state, reason, round, rounds, \
     completed_rounds, completed_attempts_json, submitted_by, created_at, updated_at, summary_json";

fn job_from_row(row: &Row<'_>) -> rusqlite::Result<(JobRecord, String, String)> {
    Ok((
        JobRecord {
            id: row.get(0)?,
            name: row.get(1)?,
            kind: row.get(2)?,
            spec_json: row.get(3)?,
            state: JobState::Queued,
            reason: row.get(5)?,
            round: row.get(6)?,
            rounds: row.get(7)?,
            completed_rounds: row.get(8)?,
            completed_attempts: Vec::new(),
            submitted_by: row.get(10)?,
            created_at: row.get(11)?,
            updated_at: row.get(12)?,
            summary_json: row.get(13)?,
        },
        row.get(4)?,
        row.get(9)?,
    ))
}

fn finish_job(
    (mut job, state, attempts): (JobRecord, String, String),
) -> Result<JobRecord, StoreError> {
    job.state = JobState::parse(&state).ok_or_else(|| corrupt("jobs.state", &state))?;
    job.completed_attempts = parse_json("jobs.completed_attempts_json", &attempts)?;
    Ok(job)
}

const TASK_COLUMNS: &str =
    "task_id, job_id, site, round, attempt, state, reason, progress, created_at, updated_at";

fn task_from_row(row: &Row<'_>) -> rusqlite::Result<(TaskRecord, String)> {
    Ok((
        TaskRecord {
            task_id: row.get(0)?,
            job_id: row.get(1)?,
            site: row.get(2)?,
            round: row.get(3)?,
            attempt: row.get(4)?,
            state: TaskState::Sent,
            reason: row.get(6)?,
            progress: row.get(7)?,
            created_at: row.get(8)?,
            updated_at: row.get(9)?,
        },
        row.get(5)?,
    ))
}

fn finish_task((mut task, state): (TaskRecord, String)) -> Result<TaskRecord, StoreError> {
    task.state = TaskState::parse(&state).ok_or_else(|| corrupt("tasks.state", &state))?;
    Ok(task)
}

/// Whether `prev_hash` is how a site's first ledger entry points at "nothing": empty, or
/// all zeros (the site ledger's genesis hash). Sites report an empty ledger as head `""`.
fn is_genesis(prev_hash: &str) -> bool {
    prev_hash.bytes().all(|b| b == b'0')
}

/// Advances `head` along the stored charges of `site` for as long as one of them names it
/// as its predecessor: the site's chain verifiably grew by those entries, whatever order
/// they arrived in. A charge that does not chain onto the known head moves nothing, so a
/// gap (entries the coordinator never received) shows as a head mismatch in the audit.
fn follow_chain(conn: &Connection, site: &str, head: &str) -> Result<String, StoreError> {
    let mut head = head.to_string();
    let total: i64 = conn.query_row(
        "SELECT COUNT(*) FROM charges WHERE site = ?1",
        [site],
        |r| r.get(0),
    )?;
    let mut next =
        conn.prepare("SELECT hash, prev_hash FROM charges WHERE site = ?1 ORDER BY seq, rowid")?;
    let links: Vec<(String, String)> = next
        .query_map([site], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    // At most one step per stored charge: a (corrupt) cycle cannot loop forever.
    for _ in 0..total {
        let step = links.iter().find(|(hash, prev)| {
            hash != &head && (prev == &head || (head.is_empty() && is_genesis(prev)))
        });
        match step {
            Some((hash, _)) => head = hash.clone(),
            None => break,
        }
    }
    Ok(head)
}

impl Store for SqliteStore {
    fn upsert_site(&self, site: &SiteRecord) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO sites (name, datasets_json, ledger_head, ledger_entries, version, \
                 allowed_kinds_json, registered_at, last_seen) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT(name) DO UPDATE SET datasets_json = excluded.datasets_json, \
                 ledger_head = excluded.ledger_head, ledger_entries = excluded.ledger_entries, \
                 version = excluded.version, allowed_kinds_json = excluded.allowed_kinds_json, \
                 registered_at = excluded.registered_at, last_seen = excluded.last_seen",
            params![
                site.name,
                json(&site.datasets),
                site.ledger_head,
                site.ledger_entries as i64,
                site.version,
                json(&site.allowed_kinds),
                site.registered_at,
                site.last_seen,
            ],
        )?;
        Ok(())
    }

    fn touch_site(&self, name: &str, at: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "UPDATE sites SET last_seen = ?2 WHERE name = ?1",
            params![name, at],
        )?;
        Ok(())
    }

    fn sites(&self) -> Result<Vec<SiteRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {SITE_COLUMNS} FROM sites ORDER BY name"))?;
        let rows = stmt.query_map([], site_from_row)?;
        rows.map(|r| finish_site(r?)).collect()
    }

    fn record_charges(&self, site: &str, charges: &[ChargeRecord]) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let received_at = super::now_rfc3339();
        let mut new = 0;
        for c in charges {
            new += tx.execute(
                "INSERT OR IGNORE INTO charges (site, seq, dataset, job_id, task_id, \
                     mechanism_json, epsilon, delta, epsilon_spent, recorded_at, prev_hash, \
                     hash, received_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    site,
                    c.seq as i64,
                    c.dataset,
                    c.job_id,
                    c.task_id,
                    c.mechanism_json,
                    c.epsilon,
                    c.delta,
                    c.epsilon_spent,
                    c.recorded_at,
                    c.prev_hash,
                    c.hash,
                    received_at,
                ],
            )?;
        }
        let known = tx
            .query_row(
                &format!("SELECT {SITE_COLUMNS} FROM sites WHERE name = ?1"),
                [site],
                site_from_row,
            )
            .optional()?;
        if let Some(known) = known {
            let mut record = finish_site(known)?;
            for c in charges {
                if let Some(d) = record.datasets.iter_mut().find(|d| d.name == c.dataset)
                    && c.epsilon_spent > d.epsilon_spent
                {
                    d.epsilon_spent = c.epsilon_spent;
                }
            }
            record.ledger_head = follow_chain(&tx, site, &record.ledger_head)?;
            tx.execute(
                "UPDATE sites SET ledger_head = ?2, datasets_json = ?3 WHERE name = ?1",
                params![site, record.ledger_head, json(&record.datasets)],
            )?;
        }
        tx.commit()?;
        Ok(new)
    }

    fn charges(
        &self,
        site: Option<&str>,
        dataset: Option<&str>,
    ) -> Result<Vec<ChargeRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {CHARGE_COLUMNS} FROM charges \
             WHERE (?1 IS NULL OR site = ?1) AND (?2 IS NULL OR dataset = ?2) \
             ORDER BY site, seq, rowid"
        ))?;
        let rows = stmt.query_map(params![site, dataset], charge_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn job_charges(&self, job_id: &str) -> Result<Vec<ChargeRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {CHARGE_COLUMNS} FROM charges WHERE job_id = ?1 ORDER BY site, seq, rowid"
        ))?;
        let rows = stmt.query_map([job_id], charge_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn insert_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        if !is_safe_name(&job.id) {
            return Err(StoreError::BadName(job.id.clone()));
        }
        let conn = self.conn()?;
        let result = conn.execute(
            &format!(
                "INSERT INTO jobs ({JOB_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            ),
            params![
                job.id,
                job.name,
                job.kind,
                job.spec_json,
                job.state.as_str(),
                job.reason,
                job.round,
                job.rounds,
                job.completed_rounds,
                json(&job.completed_attempts),
                job.submitted_by,
                job.created_at,
                job.updated_at,
                job.summary_json,
            ],
        );
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::Duplicate(job.id.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                job_from_row,
            )
            .optional()?;
        row.map(finish_job).transpose()
    }

    fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY rowid"))?;
        let rows = stmt.query_map([], job_from_row)?;
        rows.map(|r| finish_job(r?)).collect()
    }

    fn update_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let changed = self.conn()?.execute(
            "UPDATE jobs SET state = ?2, reason = ?3, round = ?4, completed_rounds = ?5, \
                 completed_attempts_json = ?6, updated_at = ?7, summary_json = ?8 \
             WHERE id = ?1",
            params![
                job.id,
                job.state.as_str(),
                job.reason,
                job.round,
                job.completed_rounds,
                json(&job.completed_attempts),
                job.updated_at,
                job.summary_json,
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("job {}", job.id)));
        }
        Ok(())
    }

    fn insert_task(&self, task: &TaskRecord) -> Result<(), StoreError> {
        self.conn()?.execute(
            &format!("INSERT INTO tasks ({TASK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
            params![
                task.task_id,
                task.job_id,
                task.site,
                task.round,
                task.attempt,
                task.state.as_str(),
                task.reason,
                task.progress,
                task.created_at,
                task.updated_at,
            ],
        )?;
        Ok(())
    }

    fn update_task(&self, task: &TaskRecord) -> Result<(), StoreError> {
        let changed = self.conn()?.execute(
            "UPDATE tasks SET state = ?2, reason = ?3, progress = ?4, updated_at = ?5 \
             WHERE task_id = ?1",
            params![
                task.task_id,
                task.state.as_str(),
                task.reason,
                task.progress,
                task.updated_at,
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("task {}", task.task_id)));
        }
        Ok(())
    }

    fn tasks(&self, job_id: &str) -> Result<Vec<TaskRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE job_id = ?1 ORDER BY rowid"
        ))?;
        let rows = stmt.query_map([job_id], task_from_row)?;
        rows.map(|r| finish_task(r?)).collect()
    }

    fn save_round_result(&self, r: &RoundResult) -> Result<(), StoreError> {
        if !is_safe_name(&r.site) {
            return Err(StoreError::BadName(r.site.clone()));
        }
        let (data, file) = if r.data.len() <= INLINE_RESULT_BYTES {
            (Some(r.data.as_slice()), None)
        } else {
            // The file is durable before the row that points to it is committed.
            let name = format!("r{}-a{}-{}.bin", r.round, r.attempt, r.site);
            let path = self.job_dir(&r.job_id)?.join("rounds").join(&name);
            files::write_durable(&path, &r.data)?;
            (None, Some(name))
        };
        self.conn()?.execute(
            "INSERT OR REPLACE INTO round_results (job_id, round, attempt, site, task_id, size, \
                 data, file) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                r.job_id,
                r.round,
                r.attempt,
                r.site,
                r.task_id,
                r.data.len() as i64,
                data,
                file,
            ],
        )?;
        Ok(())
    }

    fn round_results(
        &self,
        job_id: &str,
        round: u32,
        attempt: u32,
    ) -> Result<Vec<RoundResult>, StoreError> {
        type Row = (String, String, Option<Vec<u8>>, Option<String>);
        let rows: Vec<Row> = {
            let conn = self.conn()?;
            let mut stmt = conn.prepare(
                "SELECT site, task_id, data, file FROM round_results \
                 WHERE job_id = ?1 AND round = ?2 AND attempt = ?3 ORDER BY site",
            )?;
            let rows = stmt.query_map(params![job_id, round, attempt], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let rounds_dir = self.job_dir(job_id)?.join("rounds");
        rows.into_iter()
            .map(|(site, task_id, data, file)| {
                let data = match (data, file) {
                    (Some(d), _) => d,
                    (None, Some(f)) => files::read_all(&rounds_dir.join(f))?,
                    (None, None) => Vec::new(),
                };
                Ok(RoundResult {
                    job_id: job_id.to_string(),
                    round,
                    attempt,
                    site,
                    task_id,
                    data,
                })
            })
            .collect()
    }

    fn write_result_file(&self, job_id: &str, name: &str, data: &[u8]) -> Result<(), StoreError> {
        let path = self.result_path(job_id, name)?;
        files::write_durable(&path, data)?;
        self.conn()?.execute(
            "INSERT OR REPLACE INTO result_files (job_id, name, size) VALUES (?1, ?2, ?3)",
            params![job_id, name, data.len() as i64],
        )?;
        Ok(())
    }

    fn result_files(&self, job_id: &str) -> Result<Vec<ResultFileInfo>, StoreError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare("SELECT name, size FROM result_files WHERE job_id = ?1 ORDER BY name")?;
        let rows = stmt.query_map([job_id], |row| {
            Ok(ResultFileInfo {
                name: row.get(0)?,
                size: row.get::<_, i64>(1)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn read_result_file(
        &self,
        job_id: &str,
        name: &str,
        offset: u64,
        max_len: usize,
    ) -> Result<Vec<u8>, StoreError> {
        let path = self.result_path(job_id, name)?;
        if !path.exists() {
            return Err(StoreError::NotFound(format!(
                "result file {name} of job {job_id}"
            )));
        }
        files::read_range(&path, offset, max_len)
    }
}
