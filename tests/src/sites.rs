//! Site folders (a visit table, `site.toml`, the site certificate) and site daemons running
//! from them.
//!
//! A site folder is `<deployment>/sites/<folder>/` with `visits.csv` (synthetic, seeded,
//! so the tests know the truth a DP estimate should approach), `site.toml` and the
//! daemon's data directory `state/` (the privacy ledger). Restarting a site means starting
//! a daemon from the same folder again: the ledger persists like a hospital's disk.

use std::path::{Path, PathBuf};

use silo_client::config::SiteConfig;
use silo_client::daemon::{self, DaemonEvent};
use silo_client::ledger::{Ledger, LedgerEntry, SPEND_ACCOUNTANTS};
use silo_common::synth::visits;
use silo_proto::tls::Role;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::WAIT;
use crate::pki::Pki;

/// Seed of the synthetic visit tables (noise is never seeded).
pub const DATA_SEED: u64 = 20_261_127;
/// The dataset every test site serves.
pub const DATASET: &str = "visits";
/// δ of the dataset (spend is composed at this δ).
pub const DATASET_DELTA: f64 = 1e-6;

/// What a site looks like.
#[derive(Clone, Debug)]
pub struct SiteSetup {
    /// The name in `site.toml` (and, unless [`cert`](Self::cert) says otherwise, in its
    /// certificate).
    pub name: String,
    /// The CN of the site certificate the config points at.
    pub cert: String,
    /// The folder under `<deployment>/sites/`.
    pub folder: String,
    /// Which synthetic population (sites differ in age mix).
    pub index: usize,
    /// Patients in the visit table (each has 1-4 visits).
    pub patients: usize,
    /// `epsilon_budget` of the dataset.
    pub epsilon_budget: f64,
    /// `[policy] max_epsilon_per_job`.
    pub max_epsilon_per_job: f64,
    /// Patients of an EHR dataset [`EHR_DATASET`] (synthetic, seeded by [`DATA_SEED`]
    /// and `index`), served as OMOP CSV or FHIR NDJSON; `None`: no EHR dataset.
    pub ehr: Option<(usize, EhrFormat)>,
    /// Image–text pairs of a dataset [`PAIRS_DATASET`] (synthetic, from
    /// [`pairs_generator`] with site number `index`); `None`: no pairs dataset.
    pub pairs: Option<usize>,
}

/// The image–text dataset's name.
pub const PAIRS_DATASET: &str = "pairs";

/// The synthetic image–text generator every test site draws from (one ground truth).
pub fn pairs_generator() -> silo_common::synth::pairs::Generator {
    silo_common::synth::pairs::Generator::new(silo_common::synth::pairs::PairsConfig {
        seed: DATA_SEED,
        ..Default::default()
    })
    .expect("the default pairs config is valid")
}

/// How a test site keeps its EHR data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EhrFormat {
    /// OMOP CDM CSV tables.
    Omop,
    /// FHIR R4 NDJSON with a note dictionary.
    Fhir,
}

/// The EHR dataset's name.
pub const EHR_DATASET: &str = "ehr";

/// The synthetic EHR generator every test site draws from (one shared vocabulary).
pub fn ehr_generator() -> silo_common::synth::ehr::Generator {
    silo_common::synth::ehr::Generator::new(silo_common::synth::ehr::EhrConfig {
        seed: DATA_SEED,
        ..Default::default()
    })
}

impl SiteSetup {
    /// Site `name` with population `index`: 200 patients, budget 4.0, cap 2.0 per job.
    pub fn new(name: &str, index: usize) -> SiteSetup {
        SiteSetup {
            name: name.into(),
            cert: name.into(),
            folder: name.into(),
            index,
            patients: 200,
            epsilon_budget: 4.0,
            max_epsilon_per_job: 2.0,
            ehr: None,
            pairs: None,
        }
    }

    /// Also serving `pairs` image–text pairs (and half as many unpaired rows of each).
    pub fn pairs(mut self, pairs: usize) -> Self {
        self.pairs = Some(pairs);
        self
    }

    /// Also serving an EHR dataset of `patients` patients in `format`.
    pub fn ehr(mut self, patients: usize, format: EhrFormat) -> Self {
        self.ehr = Some((patients, format));
        self
    }

    /// With another lifetime budget.
    pub fn budget(mut self, epsilon_budget: f64) -> Self {
        self.epsilon_budget = epsilon_budget;
        self
    }

    /// With another number of patients.
    pub fn patients(mut self, patients: usize) -> Self {
        self.patients = patients;
        self
    }

    /// Presenting the certificate of `cert` (and living in folder `folder`): a config whose
    /// `name` does not match its certificate.
    pub fn with_cert_of(mut self, cert: &str, folder: &str) -> Self {
        self.cert = cert.into();
        self.folder = folder.into();
        self
    }
}

/// A site's files on disk, and the truth behind its data.
#[derive(Clone, Debug)]
pub struct SiteFiles {
    /// The site name (as in `site.toml`).
    pub name: String,
    /// `site.toml`.
    pub config_path: PathBuf,
    /// The site's visit table.
    pub csv: PathBuf,
    /// One age per patient: the unit-level values a DP mean or sum estimates.
    pub ages: Vec<f64>,
}

impl SiteFiles {
    /// The validated `site.toml` (the process environment is ignored: tests set none).
    pub fn config(&self) -> SiteConfig {
        SiteConfig::load_with_env(&self.config_path, |_| None)
            .unwrap_or_else(|e| panic!("{} is invalid: {e}", self.config_path.display()))
    }

    /// Opens the site's privacy ledger (a second connection: the daemon may be running).
    pub fn ledger(&self) -> Ledger {
        let path = self.config().ledger_path();
        Ledger::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
    }

    /// Every ledger entry, oldest first.
    pub fn ledger_entries(&self) -> Vec<LedgerEntry> {
        self.ledger().entries(None).expect("ledger entries")
    }

    /// Composed spend on the dataset at its δ, as the site reports it.
    pub fn spent(&self) -> f64 {
        self.ledger()
            .spent(DATASET, DATASET_DELTA, &SPEND_ACCOUNTANTS)
            .expect("ledger spend")
    }
}

/// Writes the site folder of `setup` under `root/sites/` and issues its certificate.
pub(crate) fn write_site(root: &Path, pki: &Pki, coordinator: &str, setup: SiteSetup) -> SiteFiles {
    let dir = root.join("sites").join(&setup.folder);
    std::fs::create_dir_all(&dir).expect("site folder");
    let tls = pki.issue(Role::Site, &setup.cert);

    let rows = visits::site_visits(setup.index, setup.patients, DATA_SEED);
    let csv = dir.join("visits.csv");
    std::fs::write(&csv, visits::to_csv(&rows)).expect("visit table");
    let mut seen = std::collections::HashSet::new();
    let ages = rows
        .iter()
        .filter(|r| seen.insert(r.person_id))
        .map(|r| r.age)
        .collect();

    let ehr = setup
        .ehr
        .map(|(patients, format)| {
            write_ehr(&dir, setup.index, patients, format, setup.epsilon_budget)
        })
        .unwrap_or_default();
    let pairs = setup
        .pairs
        .map(|n| write_pairs(&dir, setup.index, n, setup.epsilon_budget))
        .unwrap_or_default();
    let config = format!(
        "name = \"{name}\"\n\
         coordinator = \"{coordinator}\"\n\
         data_dir = \"state\"\n\
         [tls]\n\
         ca = \"{ca}\"\n\
         cert = \"{cert}\"\n\
         key = \"{key}\"\n\
         [policy]\n\
         allowed_kinds = [\"dp_stats\", \"pmi_svd\", \"contrastive_svd\"]\n\
         max_epsilon_per_job = {cap:?}\n\
         [[datasets]]\n\
         name = \"{DATASET}\"\n\
         kind = \"csv\"\n\
         path = \"visits.csv\"\n\
         privacy_unit = \"person_id\"\n\
         epsilon_budget = {budget:?}\n\
         delta = {DATASET_DELTA:e}\n\
         columns = [\"person_id\", \"age\", \"length_of_stay\"]\n{ehr}{pairs}",
        name = setup.name,
        ca = tls.ca.display(),
        cert = tls.cert.display(),
        key = tls.key.display(),
        cap = setup.max_epsilon_per_job,
        budget = setup.epsilon_budget,
    );
    let config_path = dir.join("site.toml");
    std::fs::write(&config_path, config).expect("site.toml");
    let files = SiteFiles {
        name: setup.name,
        config_path,
        csv,
        ages,
    };
    files.config(); // fail here, not in the daemon, if the harness wrote a bad config
    files
}

/// Writes the site's synthetic EHR data under `dir/ehr/` and returns its `[[datasets]]`
/// entry.
fn write_ehr(dir: &Path, index: usize, patients: usize, format: EhrFormat, budget: f64) -> String {
    let generator = ehr_generator();
    let site = generator.site(index, patients);
    let folder = dir.join("ehr");
    std::fs::create_dir_all(&folder).expect("ehr folder");
    let (kind, files, extra) = match format {
        EhrFormat::Omop => (
            "omop",
            silo_common::synth::ehr::omop::tables(generator.vocabulary(), &site),
            String::new(),
        ),
        EhrFormat::Fhir => {
            let dictionary = dir.join("dictionary.csv");
            std::fs::write(&dictionary, generator.vocabulary().dictionary_csv())
                .expect("dictionary");
            (
                "fhir",
                silo_common::synth::ehr::fhir::ndjson(generator.vocabulary(), &site),
                "dictionary = \"dictionary.csv\"\n".to_string(),
            )
        }
    };
    for (name, text) in files {
        std::fs::write(folder.join(name), text).expect("ehr table");
    }
    let unit = if format == EhrFormat::Omop {
        "person_id"
    } else {
        "Patient"
    };
    format!(
        "[[datasets]]\n\
         name = \"{EHR_DATASET}\"\n\
         kind = \"{kind}\"\n\
         path = \"ehr\"\n\
         {extra}\
         privacy_unit = \"{unit}\"\n\
         epsilon_budget = {budget:?}\n\
         delta = {DATASET_DELTA:e}\n"
    )
}

/// Writes the site's synthetic pairs to `dir/pairs.safetensors` and returns its
/// `[[datasets]]` entry.
fn write_pairs(dir: &Path, index: usize, pairs: usize, budget: f64) -> String {
    let site = pairs_generator().site(index, pairs, pairs / 2);
    std::fs::write(
        dir.join("pairs.safetensors"),
        silo_common::synth::pairs::to_safetensors(&site),
    )
    .expect("pairs file");
    format!(
        "[[datasets]]\n\
         name = \"{PAIRS_DATASET}\"\n\
         kind = \"pairs\"\n\
         path = \"pairs.safetensors\"\n\
         privacy_unit = \"pair\"\n\
         epsilon_budget = {budget:?}\n\
         delta = 1e-5\n"
    )
}

/// A site daemon (`silo_client::daemon`) running as a task of the test.
pub struct RunningSite {
    /// The site's files.
    pub files: SiteFiles,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    events: mpsc::UnboundedReceiver<DaemonEvent>,
}

impl RunningSite {
    /// Starts the daemon of `files` (returns at once; see [`wait_registered`](Self::wait_registered)).
    pub fn spawn(files: &SiteFiles) -> RunningSite {
        let config = files.config();
        let (stop, mut stopped) = watch::channel(false);
        let (tx, events) = mpsc::unbounded_channel();
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let task = tokio::spawn(daemon::run_with_events(config, shutdown, Some(tx)));
        RunningSite {
            files: files.clone(),
            stop,
            task: Some(task),
            events,
        }
    }

    /// The site name.
    pub fn name(&self) -> &str {
        &self.files.name
    }

    /// The daemon's next event.
    pub async fn next_event(&mut self) -> DaemonEvent {
        match tokio::time::timeout(WAIT, self.events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => {
                let result = match self.task.take() {
                    Some(task) => format!("{:?}", task.await),
                    None => "stopped".into(),
                };
                panic!("site daemon {} ended: {result}", self.name())
            }
            Err(_) => panic!(
                "site daemon {} reported nothing within {WAIT:?}",
                self.name()
            ),
        }
    }

    /// Waits for the next successful registration (past failed attempts).
    pub async fn wait_registered(&mut self) {
        let mut last = None;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = tokio::time::timeout(left, self.next_event())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{} did not register within {WAIT:?}; last disconnect: {last:?}",
                        self.name()
                    )
                });
            match event {
                DaemonEvent::Registered { .. } => return,
                DaemonEvent::Disconnected { reason } => last = Some(reason),
                DaemonEvent::TaskFinished { .. } => {}
            }
        }
    }

    /// The events reported so far and not yet read (does not wait).
    pub fn pending_events(&mut self) -> Vec<DaemonEvent> {
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push(event);
        }
        events
    }

    /// Waits for the next disconnection; its reason.
    pub async fn wait_disconnected(&mut self) -> String {
        loop {
            if let DaemonEvent::Disconnected { reason } = self.next_event().await {
                return reason;
            }
        }
    }

    /// Stops the daemon the way SIGTERM does (running tasks get their grace period).
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        let task = self.task.take().expect("running");
        match tokio::time::timeout(WAIT, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("site daemon {} failed: {e:#}", self.files.name),
            Ok(Err(e)) => panic!("site daemon {} panicked: {e}", self.files.name),
            Err(_) => panic!(
                "site daemon {} did not stop within {WAIT:?}",
                self.files.name
            ),
        }
    }
}

impl Drop for RunningSite {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
