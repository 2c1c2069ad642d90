//! One conformance suite for the [`StateStore`] trait, run on the trait itself (no runner), against
//! every store: the local directory (writing, and read-only over what it wrote), the GitHub state
//! branch (against the fake GitHub) and the in-memory store.

use std::sync::Arc;
use std::time::Duration;

use flagramp::github::GitHub;
use flagramp::percent::Percent;
use flagramp::record::{DecisionKind, DecisionRecord};
use flagramp::state::{
    encode, FlagValue, GitHubStateStore, LocalStateStore, MemoryStateStore, RolloutState, StateError, StateStore,
    StateVersion, HISTORY_CAP, STATE_SIZE_CAP,
};

use crate::support::bench::at_minute as at;
use crate::support::github::FakeGitHub;
use crate::support::pct;

const STATE_BRANCH: &str = "flagramp-state";

fn state(rollout: &str) -> RolloutState {
    RolloutState::new(
        rollout,
        &format!("{rollout}-flag"),
        vec![pct(10), pct(50), Percent::FULL],
    )
}

/// A decision of about 20 KB, so a full history is far over [`STATE_SIZE_CAP`].
fn bulky_record(rollout: &str, i: usize) -> DecisionRecord {
    let reason = format!("decision {i:03}: {}", "r".repeat(20_000));
    DecisionRecord {
        from_percent: pct(10),
        to_percent: pct(10),
        stage: Some(0),
        ..DecisionRecord::bare(
            rollout,
            &format!("{rollout}-flag"),
            DecisionKind::Hold,
            at(i as i64),
            "flagramp",
            reason,
        )
    }
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StateError>, name: &str, context: &str) {
    match result {
        Err(StateError::Conflict { rollout }) => assert!(!rollout.is_empty(), "{name}: {context}"),
        other => panic!("{name}: {context}: expected a conflict, got {other:?}"),
    }
}

async fn version_of(store: &dyn StateStore, rollout: &str, name: &str) -> StateVersion {
    store
        .load(rollout)
        .await
        .unwrap_or_else(|e| panic!("{name}: load {rollout}: {e}"))
        .unwrap_or_else(|| panic!("{name}: {rollout} has no state"))
        .version
}

/// Every scenario, in order, on an empty store.
pub async fn suite(store: &dyn StateStore, name: &str) {
    // An empty store.
    assert!(
        store.load("alpha").await.unwrap().is_none(),
        "{name}: empty store loads None"
    );
    assert!(
        store.list().await.unwrap().is_empty(),
        "{name}: empty store lists nothing"
    );

    // Create, read back, list.
    let first = state("alpha");
    let v1 = store
        .save(&first, None)
        .await
        .unwrap_or_else(|e| panic!("{name}: create: {e}"));
    let loaded = store.load("alpha").await.unwrap().expect("saved state loads");
    assert_eq!(loaded.state, first, "{name}: load returns what was saved");
    assert_eq!(loaded.version, v1, "{name}: load returns the version the save returned");
    assert_eq!(store.list().await.unwrap(), vec!["alpha".to_string()], "{name}: list");

    // Creating again conflicts, and leaves the document alone.
    let mut other = state("alpha");
    other.paused = true;
    assert_conflict(store.save(&other, None).await, name, "create over existing state");
    assert_eq!(
        store.load("alpha").await.unwrap().unwrap().state,
        first,
        "{name}: conflict wrote nothing"
    );

    // Compare-and-swap: the current version succeeds with a new version; a stale one conflicts.
    let mut second = state("alpha");
    second.last_set = Some(FlagValue::on(pct(10)));
    second.started_at = Some(at(0));
    second.stage_entered_at = Some(at(0));
    second.push_history(bulky_record("alpha", 0));
    let v2 = store
        .save(&second, Some(&v1))
        .await
        .unwrap_or_else(|e| panic!("{name}: save at the current version: {e}"));
    assert_ne!(v2, v1, "{name}: a write yields a new version");
    let loaded = store.load("alpha").await.unwrap().unwrap();
    assert_eq!(
        (&loaded.state, &loaded.version),
        (&second, &v2),
        "{name}: reads the second write"
    );
    assert_conflict(store.save(&other, Some(&v1)).await, name, "save at a stale version");
    assert_conflict(
        store.save(&other, Some(&StateVersion("never-issued".into()))).await,
        name,
        "save at a version never issued",
    );
    assert_eq!(
        version_of(store, "alpha", name).await,
        v2,
        "{name}: conflicts wrote nothing"
    );

    // Two rollouts are independent.
    assert_conflict(
        store.save(&state("beta"), Some(&v2)).await,
        name,
        "another rollout's version",
    );
    let b1 = store
        .save(&state("beta"), None)
        .await
        .unwrap_or_else(|e| panic!("{name}: create beta: {e}"));
    assert_eq!(
        store.list().await.unwrap(),
        vec!["alpha".to_string(), "beta".to_string()],
        "{name}: list names both, sorted"
    );
    assert_eq!(
        version_of(store, "alpha", name).await,
        v2,
        "{name}: writing beta left alpha's version"
    );
    assert_eq!(store.load("alpha").await.unwrap().unwrap().state, second);
    assert_conflict(
        store.save(&state("alpha"), Some(&b1)).await,
        name,
        "beta's version for alpha",
    );
    let mut third = second.clone();
    third.consecutive_failures = 1;
    let v3 = store.save(&third, Some(&v2)).await.unwrap();
    assert_ne!(v3, v2);
    assert_eq!(
        version_of(store, "beta", name).await,
        b1,
        "{name}: writing alpha left beta's version"
    );
    assert_eq!(store.load("beta").await.unwrap().unwrap().state, state("beta"));

    // A state with a large history still loads: the store keeps it under the size cap by dropping
    // the oldest decisions, as `encode` does.
    let mut big = state("gamma");
    for i in 0..HISTORY_CAP {
        big.push_history(bulky_record("gamma", i));
    }
    assert!(serde_json::to_vec_pretty(&big).unwrap().len() > 2 * STATE_SIZE_CAP);
    let g1 = store
        .save(&big, None)
        .await
        .unwrap_or_else(|e| panic!("{name}: save a large state: {e}"));
    let loaded = store
        .load("gamma")
        .await
        .unwrap_or_else(|e| panic!("{name}: a large state loads: {e}"))
        .unwrap();
    let expected: RolloutState = serde_json::from_slice(&encode(&big).unwrap()).unwrap();
    assert_eq!(
        loaded.state, expected,
        "{name}: the large state is stored as `encode` trims it"
    );
    assert!(
        !loaded.state.history.is_empty() && loaded.state.history.len() < big.history.len(),
        "{name}: {} of {} decisions kept",
        loaded.state.history.len(),
        big.history.len()
    );
    assert_eq!(
        loaded.state.history.last(),
        big.history.last(),
        "{name}: the newest decision stays"
    );
    assert_eq!(loaded.version, g1);
    // And it can be written again from what was read.
    let mut next = loaded.state.clone();
    next.push_history(bulky_record("gamma", HISTORY_CAP));
    store
        .save(&next, Some(&loaded.version))
        .await
        .unwrap_or_else(|e| panic!("{name}: rewrite a large state: {e}"));
    assert_eq!(
        store.load("gamma").await.unwrap().unwrap().state.history.last(),
        next.history.last()
    );
}

/// A second view of the same store (read-only local directory, a GitHub store opened without
/// creating the branch, a clone of the memory store) reads what `writer` wrote, at the same
/// versions.
pub async fn reader_agrees(writer: &dyn StateStore, reader: &dyn StateStore, name: &str) {
    let names = writer.list().await.unwrap();
    assert!(!names.is_empty(), "{name}: run the suite first");
    assert_eq!(
        reader.list().await.unwrap(),
        names,
        "{name}: the reader lists the same rollouts"
    );
    for rollout in &names {
        assert_eq!(
            reader.load(rollout).await.unwrap(),
            writer.load(rollout).await.unwrap(),
            "{name}: the reader loads {rollout} as the writer does"
        );
    }
    assert!(
        reader.load("missing").await.unwrap().is_none(),
        "{name}: missing loads None"
    );
    assert!(!reader.excludes_other_runs(), "{name}: a reader keeps no run out");
}

#[tokio::test]
async fn local_directory_store() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    // Read-only over a directory that does not exist yet: nothing there, nothing created.
    let reader = LocalStateStore::read_only(&state_dir);
    assert!(reader.load("alpha").await.unwrap().is_none());
    assert!(reader.list().await.unwrap().is_empty());
    assert!(!reader.excludes_other_runs());
    assert!(!state_dir.exists(), "a read-only store creates nothing");

    let writer = LocalStateStore::for_writing(&state_dir, Duration::from_secs(10)).unwrap();
    assert!(writer.excludes_other_runs(), "the writer holds the directory's lock");
    suite(&writer, "local").await;
    reader_agrees(&writer, &reader, "local read-only").await;
}

#[tokio::test]
async fn github_branch_store() {
    let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
    let github = Arc::new(
        GitHub::new(&fake.uri(), "ghs_conformance", "octo-org/octo-repo")
            .unwrap()
            .with_call_timeout(Duration::from_secs(10)),
    );
    let writer = GitHubStateStore::open(github.clone(), STATE_BRANCH, true)
        .await
        .unwrap();
    assert!(
        !fake.branch_exists(STATE_BRANCH),
        "opening reads and writes nothing: the first write creates the state branch"
    );
    assert!(!writer.excludes_other_runs());
    suite(&writer, "github").await;
    // The branch holds state only, from a first commit without a parent (docs/state-branch.md).
    let commits = fake.commits_on(STATE_BRANCH);
    assert_eq!(
        commits.last().unwrap().parent,
        None,
        "the state branch starts on its own"
    );
    assert_eq!(
        fake.tree_paths(STATE_BRANCH),
        [
            "README.md",
            "rollouts/alpha.json",
            "rollouts/beta.json",
            "rollouts/gamma.json"
        ]
    );
    let reader = GitHubStateStore::open(github, STATE_BRANCH, false).await.unwrap();
    reader_agrees(&writer, &reader, "github read-only").await;
    // The documents are the encoded states, under `rollouts/`.
    let stored = fake.file(STATE_BRANCH, "rollouts/beta.json").unwrap();
    assert_eq!(stored, encode(&state("beta")).unwrap());
    fake.assert_conformant();
}

#[tokio::test]
async fn memory_store() {
    let store = MemoryStateStore::new();
    assert!(!store.excludes_other_runs());
    suite(&store, "memory").await;
    let reader = store.clone();
    reader_agrees(&store, &reader, "memory clone").await;
    assert_eq!(store.raw("beta").unwrap(), encode(&state("beta")).unwrap());
}

#[tokio::test]
async fn exclusive_memory_store() {
    let store = MemoryStateStore::exclusive();
    assert!(store.excludes_other_runs());
    suite(&store, "memory (exclusive)").await;
}
