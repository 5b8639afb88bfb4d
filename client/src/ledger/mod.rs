//! The site's privacy ledger: an append-only, hash-chained table in SQLite (DESIGN
//! section 5).
//!
//! One row per release: which job and task, which dataset, the mechanism with its
//! parameters and sensitivity, the guarantee in words, the privacy events the accountants
//! compose (`Vec<Composition>` as JSON), ε of this release and the composed spend after
//! it (both at the dataset's δ), the time, and the previous row's hash. Each row's hash
//! covers all of its fields and the previous hash ([`entry_hash`] states the byte
//! encoding), so editing, deleting or reordering any past row breaks the chain from that
//! row on, and [`Ledger::verify`] names it.
//!
//! Durability (DESIGN section 2, rule 2): the database runs in WAL mode with
//! `synchronous = FULL`, so [`Ledger::charge`] has fsynced the row when it returns; the
//! executor charges before it adds noise, so a crash can waste budget but never leak an
//! unrecorded release.
//!
//! Append-only: this module has no UPDATE or DELETE statement, and SQLite triggers abort
//! any update or delete that someone attempts by hand. The triggers do not stop someone
//! with write access to the file (they can drop them); the hash chain makes such edits
//! detectable, and the coordinator keeps its own copy of every charge to compare heads.

mod hash;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use silo_common::privacy::{AccountantKind, Composition, PrivacyError, PrivacyEvent};

pub use hash::{GENESIS_HASH, entry_hash};

/// The accountants whose *minimum* is reported as a dataset's spend.
///
/// Each accountant's ε is a valid upper bound on the true privacy loss of the composed
/// history at δ (the accountants are safe by contract, see
/// [`silo_common::privacy::Accountant`]); if the mechanism is (ε₁, δ)-DP and (ε₂, δ)-DP it
/// is (min(ε₁, ε₂), δ)-DP, so the minimum is a valid bound too, and never looser than
/// either. PLD is usually the tighter; RDP can win for long pure-DP histories.
pub const SPEND_ACCOUNTANTS: [AccountantKind; 2] = [AccountantKind::Pld, AccountantKind::Rdp];

/// Current schema version (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ledger (
    seq           INTEGER PRIMARY KEY,
    job_id        TEXT NOT NULL,
    task_id       TEXT NOT NULL UNIQUE,
    dataset       TEXT NOT NULL,
    mechanism     TEXT NOT NULL,
    parameters    TEXT NOT NULL,
    sensitivity   TEXT NOT NULL,
    guarantee     TEXT NOT NULL,
    events        TEXT NOT NULL,
    epsilon       REAL NOT NULL,
    delta         REAL NOT NULL,
    epsilon_spent REAL NOT NULL,
    recorded_at   TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_dataset ON ledger(dataset);
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the privacy ledger is append-only: rows cannot be updated');
END;
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the privacy ledger is append-only: rows cannot be deleted');
END;
";

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite failed (file unreadable, disk full, locked...).
    #[error("ledger database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A task id is already in the ledger: its release was charged once and is never
    /// charged (or released) again.
    #[error("already executed: task {task_id} was charged as ledger entry {seq}")]
    AlreadyCharged {
        /// The task id.
        task_id: String,
        /// The entry that holds it.
        seq: u64,
    },
    /// The charge would take the dataset past its cap; nothing was written.
    #[error(
        "budget exhausted on dataset {dataset}: spent {spent:.4} of {budget} (delta {delta:e}); \
         this release needs {needed:.4}, which would bring it to {after:.4}"
    )]
    BudgetExceeded {
        /// The dataset.
        dataset: String,
        /// Composed spend before this charge.
        spent: f64,
        /// ε of this release alone.
        needed: f64,
        /// Composed spend with this charge.
        after: f64,
        /// The cap.
        budget: f64,
        /// The dataset δ.
        delta: f64,
    },
    /// The charge itself is malformed (non-finite ε, bad events, bad δ).
    #[error("invalid charge: {0}")]
    Invalid(String),
    /// The accountants could not compose the history.
    #[error("privacy accounting failed: {0}")]
    Accounting(#[from] PrivacyError),
    /// A stored row does not parse (events JSON); `verify` will say more.
    #[error("ledger entry {seq} is corrupt: {reason}")]
    Corrupt {
        /// The entry.
        seq: u64,
        /// What does not parse.
        reason: String,
    },
}

/// A release to charge: everything the ledger records about it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCharge {
    /// The job.
    pub job_id: String,
    /// The task (unique; a task id is charged at most once).
    pub task_id: String,
    /// The dataset whose budget pays.
    pub dataset: String,
    /// Mechanism name (`laplace`, `gaussian`, `laplace+discrete_laplace`, ...).
    pub mechanism: String,
    /// Mechanism parameters (noise scales, bounds, ...).
    pub parameters: serde_json::Value,
    /// The sensitivity bounds the noise was calibrated to, and why.
    pub sensitivity: serde_json::Value,
    /// The guarantee in words (`(0.5, 0)-DP, add/remove one person_id`).
    pub guarantee: String,
    /// The privacy events the accountants compose.
    pub events: Vec<Composition>,
    /// The dataset's δ, at which ε and spend are recorded.
    pub delta: f64,
    /// The dataset's cap, re-checked inside the write transaction (fail closed even if
    /// two tasks passed the policy check at the same time).
    pub epsilon_budget: f64,
}

/// One row of the ledger.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LedgerEntry {
    /// Position in the chain, from 1, contiguous.
    pub seq: u64,
    /// The job.
    pub job_id: String,
    /// The task.
    pub task_id: String,
    /// The dataset charged.
    pub dataset: String,
    /// Mechanism name.
    pub mechanism: String,
    /// Parameters, JSON text as stored (hashed byte for byte).
    pub parameters: String,
    /// Sensitivity, JSON text as stored.
    pub sensitivity: String,
    /// The guarantee in words.
    pub guarantee: String,
    /// Privacy events, JSON text of `Vec<Composition>` as stored.
    pub events: String,
    /// ε of this release alone at `delta`.
    pub epsilon: f64,
    /// The dataset δ at the time of the charge.
    pub delta: f64,
    /// Composed spend on the dataset after this charge, at `delta`.
    pub epsilon_spent: f64,
    /// When the charge was committed (RFC 3339, UTC).
    pub recorded_at: String,
    /// Hash of the previous entry ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) of this entry's canonical serialisation.
    pub hash: String,
}

impl LedgerEntry {
    /// The privacy events of this entry.
    pub fn compositions(&self) -> Result<Vec<Composition>, LedgerError> {
        parse_events(self.seq, &self.events)
    }

    /// The entry as the wire's `Charge`, sent with the result it paid for.
    pub fn to_charge(&self) -> silo_proto::Charge {
        let mechanism_json = serde_json::json!({
            "mechanism": self.mechanism,
            "parameters": serde_json::from_str::<serde_json::Value>(&self.parameters).unwrap_or_default(),
            "sensitivity": serde_json::from_str::<serde_json::Value>(&self.sensitivity).unwrap_or_default(),
            "guarantee": self.guarantee,
            "events": serde_json::from_str::<serde_json::Value>(&self.events).unwrap_or_default(),
        });
        silo_proto::Charge {
            seq: self.seq,
            dataset: self.dataset.clone(),
            job_id: self.job_id.clone(),
            task_id: self.task_id.clone(),
            mechanism_json: mechanism_json.to_string(),
            epsilon: self.epsilon,
            delta: self.delta,
            epsilon_spent: self.epsilon_spent,
            recorded_at: self.recorded_at.clone(),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        }
    }
}

/// The newest entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Head {
    /// Its sequence number (= the number of entries).
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// The outcome of [`Ledger::verify`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Entries read.
    pub entries: u64,
    /// The newest entry's hash, as stored.
    pub head: Option<String>,
    /// The first entry that breaks the chain, if any.
    pub first_bad: Option<BadEntry>,
}

impl VerifyReport {
    /// Whether the whole chain holds.
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Where and why the chain breaks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BadEntry {
    /// The sequence number of the first bad entry.
    pub seq: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// The ledger database.
///
/// Holds one SQLite connection: `Send` but not `Sync`, so share it behind a mutex.
pub struct Ledger {
    conn: Connection,
    path: String,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `path`, in WAL mode with full fsync.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let shown = path.display().to_string();
        let err = |source| LedgerError::Sqlite {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(ledger = %shown, mode, "the ledger could not switch to WAL mode");
        }
        // FULL: every commit fsyncs the WAL before returning (charge before release).
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(LedgerError::Invalid(format!(
                "{shown} has ledger schema version {version}; this silo-site understands up to {SCHEMA_VERSION}"
            )));
        }
        conn.execute_batch(SCHEMA).map_err(err)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(err)?;
        Ok(Ledger { conn, path: shown })
    }

    fn sql(&self, source: rusqlite::Error) -> LedgerError {
        LedgerError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends a charge and commits it durably (fsync) before returning the `Charge`.
    ///
    /// Inside one write transaction: refuses a task id already in the ledger
    /// ([`LedgerError::AlreadyCharged`]), composes the dataset's history with the new
    /// events and refuses when that exceeds `epsilon_budget`
    /// ([`LedgerError::BudgetExceeded`]); otherwise links the row to the head and commits.
    /// A refused charge writes nothing.
    pub fn charge(&mut self, new: &NewCharge) -> Result<silo_proto::Charge, LedgerError> {
        Ok(self.charge_entry(new)?.to_charge())
    }

    /// [`Ledger::charge`], returning the full entry.
    pub fn charge_entry(&mut self, new: &NewCharge) -> Result<LedgerEntry, LedgerError> {
        validate_new(new)?;
        let path = self.path.clone();
        let err = |source| LedgerError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        if let Some(seq) = tx
            .query_row(
                "SELECT seq FROM ledger WHERE task_id = ?1",
                [&new.task_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(err)?
        {
            return Err(LedgerError::AlreadyCharged {
                task_id: new.task_id.clone(),
                seq: seq as u64,
            });
        }
        let history = dataset_events(&tx, &new.dataset).map_err(|e| match e {
            Either::Sql(s) => err(s),
            Either::Ledger(l) => l,
        })?;
        let spent = composed_epsilon(&history, new.delta, &SPEND_ACCOUNTANTS)?;
        let needed = composed_epsilon(&new.events, new.delta, &SPEND_ACCOUNTANTS)?;
        let mut all = history;
        all.extend_from_slice(&new.events);
        let after = composed_epsilon(&all, new.delta, &SPEND_ACCOUNTANTS)?;
        if !within_budget(after, new.epsilon_budget) {
            return Err(LedgerError::BudgetExceeded {
                dataset: new.dataset.clone(),
                spent,
                needed,
                after,
                budget: new.epsilon_budget,
                delta: new.delta,
            });
        }
        let (prev_seq, prev_hash) = tx
            .query_row(
                "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(err)?
            .unwrap_or((0, GENESIS_HASH.to_string()));
        let mut entry = LedgerEntry {
            seq: prev_seq as u64 + 1,
            job_id: new.job_id.clone(),
            task_id: new.task_id.clone(),
            dataset: new.dataset.clone(),
            mechanism: new.mechanism.clone(),
            parameters: new.parameters.to_string(),
            sensitivity: new.sensitivity.to_string(),
            guarantee: new.guarantee.clone(),
            events: serde_json::to_string(&new.events)
                .map_err(|e| LedgerError::Invalid(e.to_string()))?,
            epsilon: needed,
            delta: new.delta,
            epsilon_spent: after,
            recorded_at: now_rfc3339(),
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry_hash(&entry);
        tx.execute(
            "INSERT INTO ledger (seq, job_id, task_id, dataset, mechanism, parameters, sensitivity, guarantee,
                                 events, epsilon, delta, epsilon_spent, recorded_at, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                entry.seq as i64,
                entry.job_id,
                entry.task_id,
                entry.dataset,
                entry.mechanism,
                entry.parameters,
                entry.sensitivity,
                entry.guarantee,
                entry.events,
                entry.epsilon,
                entry.delta,
                entry.epsilon_spent,
                entry.recorded_at,
                entry.prev_hash,
                entry.hash,
            ],
        )
        .map_err(err)?;
        // WAL + synchronous=FULL: the commit returns after the WAL is fsynced.
        tx.commit().map_err(err)?;
        Ok(entry)
    }

    /// All entries, oldest first; only `dataset`'s when given.
    pub fn entries(&self, dataset: Option<&str>) -> Result<Vec<LedgerEntry>, LedgerError> {
        let sql = "SELECT seq, job_id, task_id, dataset, mechanism, parameters, sensitivity, guarantee, events,
                          epsilon, delta, epsilon_spent, recorded_at, prev_hash, hash
                   FROM ledger WHERE (?1 IS NULL OR dataset = ?1) ORDER BY seq";
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([dataset], row_to_entry)
            .map_err(|e| self.sql(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql(e))?;
        Ok(rows)
    }

    /// Whether `task_id` has been charged (and so must never be executed again).
    pub fn charged_task(&self, task_id: &str) -> Result<Option<u64>, LedgerError> {
        self.conn
            .query_row(
                "SELECT seq FROM ledger WHERE task_id = ?1",
                [task_id],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|s| s.map(|s| s as u64))
            .map_err(|e| self.sql(e))
    }

    /// The privacy events of every entry charged to `dataset`, oldest first.
    pub fn events(&self, dataset: &str) -> Result<Vec<Composition>, LedgerError> {
        dataset_events(&self.conn, dataset).map_err(|e| match e {
            Either::Sql(s) => self.sql(s),
            Either::Ledger(l) => l,
        })
    }

    /// Composed ε of all of `dataset`'s events at `delta`: the minimum over `accountants`
    /// (see [`SPEND_ACCOUNTANTS`] for why the minimum is a valid bound).
    pub fn spent(
        &self,
        dataset: &str,
        delta: f64,
        accountants: &[AccountantKind],
    ) -> Result<f64, LedgerError> {
        self.spent_with(dataset, delta, &[], accountants)
    }

    /// Composed ε of `dataset`'s events plus `extra` (a release being considered).
    pub fn spent_with(
        &self,
        dataset: &str,
        delta: f64,
        extra: &[Composition],
        accountants: &[AccountantKind],
    ) -> Result<f64, LedgerError> {
        let mut history = self.events(dataset)?;
        history.extend_from_slice(extra);
        Ok(composed_epsilon(&history, delta, accountants)?)
    }

    /// The newest entry, `None` when the ledger is empty.
    pub fn head(&self) -> Result<Option<Head>, LedgerError> {
        self.conn
            .query_row(
                "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1",
                [],
                |r| {
                    Ok(Head {
                        seq: r.get::<_, i64>(0)? as u64,
                        hash: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Number of entries.
    pub fn len(&self) -> Result<u64, LedgerError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM ledger", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.sql(e))
    }

    /// Whether the ledger has no entries.
    pub fn is_empty(&self) -> Result<bool, LedgerError> {
        Ok(self.len()? == 0)
    }

    /// Recomputes the chain from the first entry: contiguous sequence numbers, each
    /// `prev_hash` equal to the previous entry's hash, each hash equal to the hash of the
    /// stored fields, and parseable events. Reports the first entry that fails.
    pub fn verify(&self) -> Result<VerifyReport, LedgerError> {
        let entries = self.entries(None)?;
        let mut prev = GENESIS_HASH.to_string();
        let mut first_bad = None;
        for (i, e) in entries.iter().enumerate() {
            let expected_seq = i as u64 + 1;
            let problem = if e.seq != expected_seq {
                Some(format!(
                    "sequence number {} where {expected_seq} was expected (an entry is missing)",
                    e.seq
                ))
            } else if e.prev_hash != prev {
                Some(format!(
                    "prev_hash {} does not match the previous entry's hash {prev}",
                    short(&e.prev_hash)
                ))
            } else if entry_hash(e) != e.hash {
                Some(format!(
                    "stored hash {} does not match its contents (recomputed {}): the entry was altered",
                    short(&e.hash),
                    short(&entry_hash(e))
                ))
            } else {
                parse_events(e.seq, &e.events)
                    .err()
                    .map(|err| err.to_string())
            };
            if let Some(reason) = problem {
                first_bad = Some(BadEntry { seq: e.seq, reason });
                break;
            }
            prev = e.hash.clone();
        }
        Ok(VerifyReport {
            entries: entries.len() as u64,
            head: entries.last().map(|e| e.hash.clone()),
            first_bad,
        })
    }

    /// The raw connection, for tests that tamper with the file.
    #[cfg(test)]
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Relative slack allowed when comparing a composed spend with a cap.
///
/// Privacy arithmetic rounds upward at every step (STYLE rule 10), so a job of ε = 1 on a
/// fresh dataset with a cap of 1 composes to 1 + a few ulps. Refusing it would make caps
/// unreachable; 1e-9 of the cap absorbs the rounding and is far below any meaningful
/// privacy difference. It is never applied to the recorded numbers, only to the check.
pub const BUDGET_SLACK: f64 = 1e-9;

/// Whether a composed spend `after` stays within `budget` (see [`BUDGET_SLACK`]).
pub fn within_budget(after: f64, budget: f64) -> bool {
    after <= budget * (1.0 + BUDGET_SLACK)
}

/// Composed ε of `history` at `delta`: the minimum over `accountants` that succeed, and,
/// when every event is pure DP, over basic composition (Σ εᵢ, which is (Σ εᵢ, 0)-DP and so
/// (Σ εᵢ, δ)-DP for every δ; Dwork & Roth 2014, Thm 3.16). Each is a valid upper bound,
/// so their minimum is too. Fails only if every accountant fails.
pub fn composed_epsilon(
    history: &[Composition],
    delta: f64,
    accountants: &[AccountantKind],
) -> Result<f64, PrivacyError> {
    if history.iter().all(|c| c.count == 0) {
        return Ok(0.0);
    }
    let mut best: Option<f64> = pure_composition(history);
    let mut last_err = None;
    for kind in accountants {
        match kind.build().epsilon(history, delta) {
            Ok(eps) if !eps.is_nan() => best = Some(best.map_or(eps, |b| b.min(eps))),
            Ok(_) => {
                last_err = Some(PrivacyError::Numerical(format!(
                    "{} accountant returned NaN",
                    kind.as_str()
                )))
            }
            Err(e) => {
                tracing::debug!(accountant = kind.as_str(), error = %e, "accountant failed");
                last_err = Some(e);
            }
        }
    }
    match (best, last_err) {
        (Some(eps), _) => Ok(eps),
        (None, Some(e)) => Err(e),
        (None, None) => Err(PrivacyError::Numerical("no accountant was given".into())),
    }
}

/// Σ count·ε over a history of pure-DP events (Laplace: ε = 1/multiplier), rounded up;
/// `None` if any event is not pure DP.
fn pure_composition(history: &[Composition]) -> Option<f64> {
    let mut sum = 0.0;
    let mut terms = 0u64;
    for c in history.iter().filter(|c| c.count > 0) {
        let eps = match c.event {
            PrivacyEvent::Laplace { noise_multiplier } => 1.0 / noise_multiplier,
            PrivacyEvent::PureDp { epsilon } => epsilon,
            _ => return None,
        };
        sum += eps * c.count as f64;
        terms += 2;
    }
    // Each division, product and addition errs by at most half an ulp.
    Some(sum * (1.0 + (terms + 2) as f64 * f64::EPSILON))
}

fn validate_new(new: &NewCharge) -> Result<(), LedgerError> {
    let bad = |m: String| Err(LedgerError::Invalid(m));
    if new.task_id.is_empty() || new.dataset.is_empty() || new.job_id.is_empty() {
        return bad("job id, task id and dataset must be non-empty".into());
    }
    if !(new.delta > 0.0 && new.delta < 1.0) {
        return bad(format!("delta {}: expected a number in (0, 1)", new.delta));
    }
    if !(new.epsilon_budget.is_finite() && new.epsilon_budget > 0.0) {
        return bad(format!(
            "epsilon budget {}: expected a finite number > 0",
            new.epsilon_budget
        ));
    }
    if new.events.is_empty() {
        return bad("a release must carry at least one privacy event".into());
    }
    for c in &new.events {
        c.event
            .validate()
            .map_err(|e| LedgerError::Invalid(e.to_string()))?;
    }
    Ok(())
}

enum Either {
    Sql(rusqlite::Error),
    Ledger(LedgerError),
}

fn dataset_events(conn: &Connection, dataset: &str) -> Result<Vec<Composition>, Either> {
    let mut stmt = conn
        .prepare("SELECT seq, events FROM ledger WHERE dataset = ?1 ORDER BY seq")
        .map_err(Either::Sql)?;
    let rows = stmt
        .query_map([dataset], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
        })
        .map_err(Either::Sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, json) = row.map_err(Either::Sql)?;
        out.extend(parse_events(seq, &json).map_err(Either::Ledger)?);
    }
    Ok(out)
}

fn parse_events(seq: u64, json: &str) -> Result<Vec<Composition>, LedgerError> {
    let events: Vec<Composition> =
        serde_json::from_str(json).map_err(|e| LedgerError::Corrupt {
            seq,
            reason: format!("events do not parse: {e}"),
        })?;
    for c in &events {
        c.event.validate().map_err(|e| LedgerError::Corrupt {
            seq,
            reason: format!("invalid event: {e}"),
        })?;
    }
    Ok(events)
}

fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerEntry> {
    Ok(LedgerEntry {
        seq: r.get::<_, i64>(0)? as u64,
        job_id: r.get(1)?,
        task_id: r.get(2)?,
        dataset: r.get(3)?,
        mechanism: r.get(4)?,
        parameters: r.get(5)?,
        sensitivity: r.get(6)?,
        guarantee: r.get(7)?,
        events: r.get(8)?,
        epsilon: r.get(9)?,
        delta: r.get(10)?,
        epsilon_spent: r.get(11)?,
        recorded_at: r.get(12)?,
        prev_hash: r.get(13)?,
        hash: r.get(14)?,
    })
}

/// Now, RFC 3339 in UTC.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}

#[cfg(test)]
mod tests;
