//! The real runner and engine over local state in a temporary repository, without the binary:
//! one builder of [`Runner`]s, and a [`Bench`] that runs one spec on a clock of its own with a
//! check script whose verdict the test controls.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use flagramp::provider::FlagFiles;
use flagramp::record::DecisionRecord;
use flagramp::runner::{Mode, Runner};
use flagramp::secrets::Secrets;
use flagramp::spec::{parse_spec, RolloutSpec};
use flagramp::state::{LocalStateStore, StateError, StateStore};

use super::repo::TempRepo;

/// When a bench's clock starts.
pub const START: &str = "2026-11-24T09:00:00Z";

/// `minutes` after [`START`].
pub fn at_minute(minutes: i64) -> DateTime<Utc> {
    START.parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(minutes)
}

/// A scheduled run acting as `flagramp` at `now` over `store`, in the repository at `root` whose
/// flag files are relative to `files`.
pub fn runner(root: &Path, files: &Path, now: DateTime<Utc>, store: Box<dyn StateStore>) -> Runner {
    Runner {
        store,
        repo_root: root.to_path_buf(),
        flag_files: FlagFiles::Local(files.to_path_buf()),
        now,
        actor: "flagramp".into(),
        secrets: Secrets::new(),
        budget: None,
        concurrency: flagramp::runner::DEFAULT_CONCURRENCY,
        pool: std::sync::Arc::new(flagramp::metrics::SourcePool::new()),
        flag_reads: flagramp::provider::SharedReads::default(),
    }
}

/// Takes the lock of the local state in `dir`, waiting up to 5 s while it is busy: a child
/// process another test thread is spawning holds a copy of the previous run's lock until it execs.
pub async fn lock_state(dir: &Path) -> LocalStateStore {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match LocalStateStore::for_writing(dir, Duration::from_secs(10)) {
            Ok(store) => return store,
            Err(StateError::Locked(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Parses the rollout `name` for `flag_block` (a YAML flow mapping) with `stages` and one check,
/// `./check.sh`, that passes when it prints 1.
pub fn check_spec(name: &str, flag_block: &str, stages: &str) -> RolloutSpec {
    let text = format!(
        "version: 1\nname: {name}\nflag: {flag_block}\nstages: {stages}\nchecks:\n  - {{ name: ok, command: [\"./check.sh\"], pass: \"== 1\" }}\n"
    );
    let (spec, _, diags) = parse_spec(Path::new(&format!("{name}.yml")), &text);
    assert!(diags.is_empty(), "{diags:?}\n{text}");
    spec.unwrap()
}

/// Runs of one spec in a temporary repository with local state, `minutes` apart on the bench's
/// own clock. Its `check.sh` notes each run in `checks.log` and prints 1 while healthy.
pub struct Bench {
    pub repo: TempRepo,
    pub spec: RolloutSpec,
    files_root: Option<PathBuf>,
    minutes: i64,
}

impl Bench {
    pub fn new(spec: RolloutSpec) -> Bench {
        let bench = Bench {
            repo: TempRepo::new(),
            spec,
            files_root: None,
            minutes: 0,
        };
        bench.healthy(true);
        bench
    }

    /// Flag files relative to `root` instead of the bench's own directory.
    pub fn with_files_root(mut self, root: Option<PathBuf>) -> Bench {
        self.files_root = root;
        self
    }

    pub fn root(&self) -> &Path {
        self.repo.root()
    }

    /// Makes the check pass (`ok`) or fail from the next run on.
    pub fn healthy(&self, ok: bool) {
        self.repo
            .script("check.sh", &format!("echo run >> checks.log\necho {}", u8::from(ok)));
    }

    /// How many times the check has run.
    pub fn checks_run(&self) -> usize {
        std::fs::read_to_string(self.root().join("checks.log"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// One scheduled run at `minute` on the bench's clock.
    pub async fn run_at(&mut self, minute: i64) -> DecisionRecord {
        self.minutes = minute;
        let store = lock_state(&self.repo.state_dir()).await;
        let files = self.files_root.clone().unwrap_or_else(|| self.root().to_path_buf());
        runner(self.root(), &files, at_minute(minute), Box::new(store))
            .decide(&self.spec, &Mode::Run)
            .await
            .record
    }

    /// One scheduled run, `minutes` after the previous one.
    pub async fn run_after(&mut self, minutes: i64) -> DecisionRecord {
        self.run_at(self.minutes + minutes).await
    }
}
