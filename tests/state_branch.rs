//! The state branch written with the git data API and read through its tree
//! (docs/state-branch.md): one commit per batch, another run's commit met by applying this
//! batch again, reads that do not grow with the number of rollouts, and a branch of the
//! previous release read as it is and moved to the state-only layout by its first write.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flagramp::github::GitHub;
use flagramp::percent::Percent;
use flagramp::state::{encode, GitHubStateStore, RolloutState, StateError, StateStore, StateVersion, StateWrite};

use crate::support::github::{FakeGitHub, Recorded};
use crate::support::{git_blob_sha, pct};

const STATE_BRANCH: &str = "flagramp-state";
const REPO: &str = "octo-org/octo-repo";

fn state(rollout: &str) -> RolloutState {
    RolloutState::new(rollout, &format!("{rollout}-flag"), vec![pct(10), Percent::FULL])
}

fn paused(rollout: &str) -> RolloutState {
    let mut s = state(rollout);
    s.paused = true;
    s
}

fn client(fake: &FakeGitHub) -> Arc<GitHub> {
    Arc::new(
        GitHub::new(&fake.uri(), "ghs_stateBranchTests", REPO)
            .unwrap()
            .with_call_timeout(Duration::from_secs(20)),
    )
}

async fn store(fake: &FakeGitHub) -> GitHubStateStore {
    GitHubStateStore::open(client(fake), STATE_BRANCH, true).await.unwrap()
}

/// A state-only branch holding `names`' documents, seeded in one commit.
fn seed(fake: &FakeGitHub, names: &[String]) {
    let mut files = vec![("README.md".to_string(), b"# flagramp state\n".to_vec())];
    files.extend(
        names
            .iter()
            .map(|n| (format!("rollouts/{n}.json"), encode(&state(n)).unwrap())),
    );
    fake.put_files(STATE_BRANCH, &files);
}

fn count(requests: &[Recorded], method: &str, suffix: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .count()
}

fn version(fake: &FakeGitHub, rollout: &str) -> StateVersion {
    StateVersion(
        fake.file_sha(STATE_BRANCH, &format!("rollouts/{rollout}.json"))
            .unwrap(),
    )
}

#[tokio::test]
async fn one_batch_of_many_documents_is_one_commit() {
    let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
    let github = client(&fake);
    let store = GitHubStateStore::open(github.clone(), STATE_BRANCH, true)
        .await
        .unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("r{i:02}")).collect();
    let writes: Vec<StateWrite> = names
        .iter()
        .map(|n| StateWrite {
            state: state(n),
            expected: None,
        })
        .collect();
    let results = store.save_batch(&writes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let commits = fake.commits_on(STATE_BRANCH);
    assert_eq!(commits.len(), 1, "the first batch is the branch's first commit");
    assert_eq!(
        commits[0].parent, None,
        "a new state branch is no copy of the default branch"
    );
    assert_eq!(fake.tree_paths(STATE_BRANCH).len(), 41, "40 documents and the README");
    for (n, r) in names.iter().zip(&results) {
        assert_eq!(r.as_ref().unwrap(), &version(&fake, n), "the version is the blob sha");
    }

    // The second batch: every document on its own version, one commit on the first.
    let writes: Vec<StateWrite> = names
        .iter()
        .zip(&results)
        .map(|(n, r)| StateWrite {
            state: paused(n),
            expected: Some(r.as_ref().unwrap().clone()),
        })
        .collect();
    let before = fake.requests().len();
    let results = store.save_batch(&writes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let commits = fake.commits_on(STATE_BRANCH);
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[0].touched.len(), 40);
    let requests = fake.requests()[before..].to_vec();
    assert_eq!(
        requests.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["POST", "POST", "PATCH"],
        "a tree, a commit, the fast-forward: the head written last needs no read"
    );
    assert_eq!(requests[2].body.as_ref().unwrap()["force"], false);
    assert_eq!(github.api_use().commits, 2, "the client counts the commits that landed");
    fake.assert_conformant();
}

#[tokio::test]
async fn another_runs_commit_in_between_is_met_by_applying_untouched_documents_again() {
    let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    seed(&fake, &names);
    let store = store(&fake).await;
    store.prefetch(&names).await.unwrap();
    let a = store.load("a").await.unwrap().unwrap();
    let b = store.load("b").await.unwrap().unwrap();

    // Another run commits between this run's reads and its writes: it changes `c` (which this
    // run does not write) and `b` (which it does).
    fake.put_files(
        STATE_BRANCH,
        &[
            ("rollouts/c.json".into(), encode(&paused("c")).unwrap()),
            ("rollouts/b.json".into(), encode(&paused("b")).unwrap()),
        ],
    );
    let theirs = fake.head_of(STATE_BRANCH).unwrap();
    let mut mine_a = a.state.clone();
    mine_a.consecutive_failures = 1;
    let mut mine_b = b.state.clone();
    mine_b.consecutive_failures = 1;
    let before = fake.requests().len();
    let results = store
        .save_batch(&[
            StateWrite {
                state: mine_a.clone(),
                expected: Some(a.version.clone()),
            },
            StateWrite {
                state: mine_b,
                expected: Some(b.version.clone()),
            },
        ])
        .await;
    assert_eq!(results[0].as_ref().unwrap(), &version(&fake, "a"), "a is written");
    assert!(
        matches!(&results[1], Err(StateError::Conflict { rollout }) if rollout == "b"),
        "b changed under this run: {:?}",
        results[1]
    );
    // Both runs' changes are on the branch: theirs (b, c), then this run's (a) on top.
    let read = |name: &str| -> RolloutState {
        serde_json::from_slice(&fake.file(STATE_BRANCH, &format!("rollouts/{name}.json")).unwrap()).unwrap()
    };
    assert_eq!(read("a"), mine_a);
    assert!(read("b").paused && read("c").paused);
    let commits = fake.commits_on(STATE_BRANCH);
    assert_eq!(
        commits[0].parent.as_deref(),
        Some(theirs.as_str()),
        "a fast-forward of theirs"
    );
    assert_eq!(commits[0].touched, ["rollouts/a.json"]);
    let requests = fake.requests()[before..].to_vec();
    assert_eq!(
        count(&requests, "PATCH", "/git/refs/heads/flagramp-state"),
        2,
        "one more attempt"
    );
    assert_eq!(
        requests.iter().filter(|r| r.status == 422).count(),
        1,
        "not a fast forward"
    );
    // The store's view moved on: loads answer the versions on the branch.
    assert_eq!(store.load("b").await.unwrap().unwrap().version, version(&fake, "b"));
    fake.assert_conformant();
}

#[tokio::test]
async fn reading_a_thousand_rollouts_takes_a_few_requests() {
    let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
    let names: Vec<String> = (0..1000).map(|i| format!("rollout-{i:04}")).collect();
    seed(&fake, &names);
    let store = store(&fake).await;
    store.prefetch(&names).await.unwrap();
    for name in &names {
        let loaded = store.load(name).await.unwrap().unwrap();
        assert_eq!(loaded.state, state(name));
        assert_eq!(loaded.version, version(&fake, name));
    }
    assert_eq!(store.list().await.unwrap(), names);
    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        11,
        "one query for the tree, ten of 100 blobs each; not one per rollout"
    );
    assert_eq!(count(&requests, "GET", ".json"), 0);
    fake.assert_conformant();
}

#[tokio::test]
async fn a_document_graphql_gives_cut_short_is_read_from_the_contents_api() {
    let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
    let names: Vec<String> = vec!["small".into(), "big".into()];
    seed(&fake, &names);
    let mut big = state("big");
    big.flag = "f".repeat(600);
    fake.put_file(STATE_BRANCH, "rollouts/big.json", &encode(&big).unwrap());
    let limit = encode(&state("small")).unwrap().len();
    assert!(encode(&big).unwrap().len() > limit);
    fake.set_blob_text_limit(limit);
    let store = store(&fake).await;
    store.prefetch(&names).await.unwrap();
    assert_eq!(store.load("big").await.unwrap().unwrap().state, big);
    assert_eq!(store.load("small").await.unwrap().unwrap().state, state("small"));
    let requests = fake.requests();
    assert_eq!(count(&requests, "GET", "/contents/rollouts/big.json"), 1);
    let read = requests.iter().find(|r| r.path.ends_with("big.json")).unwrap();
    assert_eq!(
        read.query,
        [("ref".to_string(), fake.head_of(STATE_BRANCH).unwrap())],
        "at the commit the tree was read at"
    );
    fake.assert_conformant();
}

/// The committed copy of a state branch the previous release wrote
/// (`tests/fixtures/state/previous-release-branch/`, see its PROVENANCE).
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/state/previous-release-branch")
}

fn fixture_files() -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.file_name().unwrap() != "PROVENANCE" {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    let root = fixture_dir().join("tree");
    walk(&root, &root, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn a_previous_release_branch_is_read_then_moved_to_state_only() {
    let files = fixture_files();
    let documents: Vec<&(String, Vec<u8>)> = files.iter().filter(|(p, _)| p.starts_with("rollouts/")).collect();
    assert!(
        !documents.is_empty() && documents.len() < files.len(),
        "the fixture is a repository copy with state in it"
    );
    let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
    fake.put_files(STATE_BRANCH, &files);
    let old_head = fake.head_of(STATE_BRANCH).unwrap();

    // Read before any write: every document, at the contents API's sha.
    let store = store(&fake).await;
    let names: Vec<String> = documents
        .iter()
        .map(|(p, _)| p.trim_start_matches("rollouts/").trim_end_matches(".json").to_string())
        .collect();
    store.prefetch(&names).await.unwrap();
    assert_eq!(store.list().await.unwrap(), names);
    let mut loaded = Vec::new();
    for ((_, bytes), name) in documents.iter().zip(&names) {
        let stored = store.load(name).await.unwrap().unwrap();
        assert_eq!(
            stored.version.0,
            git_blob_sha(bytes),
            "{name}: the version is the file's sha"
        );
        loaded.push(stored);
    }
    // A reader that was never prefetched reads file by file, as the previous release did.
    let reader = GitHubStateStore::open(client(&fake), STATE_BRANCH, false)
        .await
        .unwrap();
    assert_eq!(reader.load(&names[0]).await.unwrap().unwrap(), loaded[0]);
    assert_eq!(fake.head_of(STATE_BRANCH).unwrap(), old_head, "reading wrote nothing");

    // The first write moves the branch to the state-only layout, as a fast-forward.
    let mut next = loaded[0].state.clone();
    next.consecutive_failures += 1;
    let v = store.save(&next, Some(&loaded[0].version)).await.unwrap();
    let commits = fake.commits_on(STATE_BRANCH);
    assert_eq!(
        commits[0].parent.as_deref(),
        Some(old_head.as_str()),
        "the history is kept"
    );
    assert!(
        commits[0].message.contains("Layout: state only"),
        "{}",
        commits[0].message
    );
    let mut expected: Vec<String> = vec!["README.md".into()];
    expected.extend(documents.iter().map(|(p, _)| p.clone()));
    assert_eq!(fake.tree_paths(STATE_BRANCH), expected);
    let readme = String::from_utf8(fake.file(STATE_BRANCH, "README.md").unwrap()).unwrap();
    assert!(
        readme.contains("flagramp") && readme.contains("rollouts/<rollout>.json"),
        "{readme}"
    );
    // The other documents are untouched, at their versions; the written one is at its new one.
    for ((path, bytes), stored) in documents.iter().zip(&loaded).skip(1) {
        assert_eq!(fake.file(STATE_BRANCH, path).unwrap(), *bytes);
        assert_eq!(store.load(&stored.state.rollout).await.unwrap().unwrap(), *stored);
    }
    assert_eq!(store.load(&names[0]).await.unwrap().unwrap().version, v);
    // The next write builds on the state-only tree.
    let mut again = next.clone();
    again.consecutive_failures += 1;
    store.save(&again, Some(&v)).await.unwrap();
    assert_eq!(fake.tree_paths(STATE_BRANCH), expected);
    fake.assert_conformant();
}

/// Makes `tests/fixtures/state/previous-release-branch/` with a previous release's binary:
/// `FLAGRAMP_PREVIOUS=/path/to/flagramp FLAGRAMP_PREVIOUS_COMMIT=<its commit> cargo test --test
/// tests -- --ignored make_previous_release_fixture`. Two Action runs (start, then advance) against the fake
/// GitHub; the state branch's files are written out as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "makes the committed fixture with a previous release's binary (FLAGRAMP_PREVIOUS)"]
async fn make_previous_release_fixture() {
    use crate::action::{fixture, flags_json, spec, Job, FLAGS};
    // Not a check but the fixture's recipe: the whole suite (`--include-ignored`) passes over it
    // unless a previous binary is named.
    let Some(binary) = std::env::var_os("FLAGRAMP_PREVIOUS").map(PathBuf::from) else {
        eprintln!("make_previous_release_fixture: FLAGRAMP_PREVIOUS is not set; the committed fixture stays");
        return;
    };
    let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
    fake.put_file("main", FLAGS, flags_json("DISABLED", None).as_bytes());
    fake.put_file("main", "README.md", b"# octo-repo\n\nThe application.\n");
    let job = Job::new(&spec("report: { pull_request: none }\n"));
    job.write(
        "repo/.github/rollouts/dark-mode.yml",
        &spec("report: { pull_request: none }\n")
            .replace("name: new-checkout", "name: dark-mode")
            .replace("key: new-checkout", "key: dark-mode"),
    );
    for _ in 0..2 {
        let out = job
            .run_binary(
                &binary,
                &fake,
                REPO,
                "schedule",
                &fixture("schedule.synthetic.json"),
                &[],
                &[],
            )
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    }
    let dir = fixture_dir();
    let _ = std::fs::remove_dir_all(&dir);
    for path in fake.tree_paths(STATE_BRANCH) {
        let target = dir.join("tree").join(&path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, fake.file(STATE_BRANCH, &path).unwrap()).unwrap();
    }
    let version = String::from_utf8(
        std::process::Command::new(&binary)
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let commits = fake.commits_on(STATE_BRANCH);
    let commit = std::env::var("FLAGRAMP_PREVIOUS_COMMIT").unwrap_or_else(|_| "unknown".into());
    let provenance = format!(
        "Written by the previous release's code path: `{}` built from commit {commit} (the last one\n\
         before the git data API state store), two scheduled Action runs (start, then advance) of two rollouts\n\
         against the fake GitHub (tests/support/github.rs), made by\n\
         `FLAGRAMP_PREVIOUS=<that binary> FLAGRAMP_PREVIOUS_COMMIT={commit} cargo test --test tests -- --ignored make_previous_release_fixture`.\n\
         That release created the state branch from the default branch (so `README.md` and `{FLAGS}`\n\
         are the default branch's files) and wrote each document with one contents-API commit:\n\
         the branch had {} commits. `tree/` holds the branch's files at its head, byte for byte.\n",
        version.trim(),
        commits.len()
    );
    std::fs::write(dir.join("PROVENANCE"), provenance).unwrap();
}
