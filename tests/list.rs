//! Fan-out (`flagramp list`): rollouts that report to one pull request share a chunk, chunks are
//! balanced and deterministic, and `report.pull_request: auto` is resolved for every spec in one
//! GraphQL query against the fake GitHub, the token never printed.

use std::collections::BTreeMap;
use std::process::Output;

use proptest::prelude::*;
use serde_json::Value;

use flagramp::app::list::{chunk, groups, MAX_MATRIX_JOBS};
use flagramp::app::ReportTo;

use crate::support::github::{FakeGitHub, Recorded};

const TOKEN: &str = "ghs_listTokenNeverPrinted0123456789";

fn target() -> impl Strategy<Value = ReportTo> {
    prop_oneof![
        (1u64..6).prop_map(ReportTo::PullRequest),
        Just(ReportTo::Nowhere),
        Just(ReportTo::Unknown),
    ]
}

proptest! {
    /// Whatever the rollouts report to and however many jobs are allowed: every rollout is in
    /// exactly one chunk, one pull request's rollouts share one, no chunk is empty, there are as
    /// many chunks as jobs allow, spec order holds inside and across chunks, and the largest
    /// and smallest chunks differ by at most the largest group (the greedy bound).
    #[test]
    fn chunks_keep_pull_requests_together_and_stay_balanced(
        targets in proptest::collection::vec(target(), 1..60),
        max_jobs in 1usize..12,
    ) {
        let grouped = groups(&targets);
        let chunks = chunk(&grouped, max_jobs);
        prop_assert_eq!(chunks.len(), max_jobs.min(grouped.len()));
        prop_assert_eq!(chunks.clone(), chunk(&grouped, max_jobs), "deterministic");
        let mut seen: Vec<usize> = chunks.iter().flatten().copied().collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..targets.len()).collect::<Vec<_>>());
        let chunk_of = |i: usize| chunks.iter().position(|c| c.contains(&i)).unwrap();
        for (i, a) in targets.iter().enumerate() {
            for (j, b) in targets.iter().enumerate() {
                if matches!(a, ReportTo::PullRequest(_)) && a == b {
                    prop_assert_eq!(chunk_of(i), chunk_of(j), "one pull request, one chunk");
                }
            }
        }
        for c in &chunks {
            prop_assert!(!c.is_empty());
            prop_assert!(c.windows(2).all(|w| w[0] < w[1]), "spec order inside a chunk: {:?}", c);
        }
        prop_assert!(chunks.windows(2).all(|w| w[0][0] < w[1][0]), "chunks in spec order: {:?}", chunks);
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        let largest_group = grouped.iter().map(Vec::len).max().unwrap();
        prop_assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= largest_group,
            "balanced: {:?} with groups of at most {}", sizes, largest_group
        );
    }
}

#[test]
fn the_largest_group_goes_first_and_ties_go_to_spec_order() {
    // Rollouts 0..8: #7 three times, #12 twice, three alone.
    let t = |n| ReportTo::PullRequest(n);
    let targets = [
        t(12),
        t(7),
        ReportTo::Unknown,
        t(7),
        ReportTo::Nowhere,
        ReportTo::Unknown,
        t(12),
        t(7),
    ];
    let grouped = groups(&targets);
    assert_eq!(grouped, vec![vec![0, 6], vec![1, 3, 7], vec![2], vec![4], vec![5]]);
    assert_eq!(chunk(&grouped, 3), vec![vec![0, 5, 6], vec![1, 3, 7], vec![2, 4]]);
    assert_eq!(chunk(&grouped, 1), vec![(0..8).collect::<Vec<_>>()]);
    assert_eq!(chunk(&grouped, MAX_MATRIX_JOBS).len(), 5, "never an empty chunk");
    assert_eq!(chunk(&grouped, 0).len(), 1, "at least one job");
}

/// A repository of specs, each `(name, report.pull_request)`, under `.github/rollouts/`.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new(specs: &[(&str, &str)]) -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        let rollouts = repo.dir.path().join(".github/rollouts");
        std::fs::create_dir_all(&rollouts).unwrap();
        for (name, pull_request) in specs {
            std::fs::write(rollouts.join(format!("{name}.yml")), spec(name, pull_request)).unwrap();
        }
        repo
    }

    /// `flagramp list ARGS` here, with only `env` (and PATH) in its environment.
    async fn list(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flagramp"));
        cmd.arg("list")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .current_dir(self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

fn spec(name: &str, pull_request: &str) -> String {
    format!(
        "version: 1\nflag: {{ provider: flagd, key: {name}, flagd: {{ path: flags/flags.flagd.json }} }}\npolicy: {{ time_only: true }}\nchecks: []\nreport: {{ pull_request: {pull_request} }}\n"
    )
}

fn path(name: &str) -> String {
    format!(".github/rollouts/{name}.yml")
}

/// The fake's repository: every spec committed, then the changes of `pulls` (spec, pull
/// request) merged in that order, and one direct push.
async fn fake_with_history(specs: &[(&str, &str)], pulls: &[(&str, Option<u64>)]) -> FakeGitHub {
    let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
    for (name, pull_request) in specs {
        fake.put_file("main", &path(name), spec(name, pull_request).as_bytes());
    }
    for (i, (name, pr)) in pulls.iter().enumerate() {
        fake.add_commit(&path(name), &format!("{:040x}", 0xa000 + i), *pr);
    }
    fake
}

fn github_env(fake: &FakeGitHub) -> Vec<(&'static str, String)> {
    vec![
        ("GITHUB_TOKEN", TOKEN.to_string()),
        ("GITHUB_REPOSITORY", "octo-org/octo-repo".to_string()),
        ("GITHUB_API_URL", fake.uri()),
    ]
}

fn graphql_requests(fake: &FakeGitHub) -> Vec<Recorded> {
    fake.requests().into_iter().filter(|r| r.path == "/graphql").collect()
}

/// The matrix's chunks as `chunk → rollouts`.
fn matrix(out: &Output) -> BTreeMap<u64, String> {
    let matrix: Value = serde_json::from_slice(&out.stdout).unwrap();
    matrix["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            (
                job["chunk"].as_u64().unwrap(),
                job["rollouts"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SPECS: &[(&str, &str)] = &[
    ("banner", "auto"),    // last changed by #7
    ("cart", "7"),         // names #7
    ("checkout", "auto"),  // last changed by #9, after #5 before it
    ("dark-mode", "auto"), // last changed by #9
    ("emails", "auto"),    // last changed by a direct push: no pull request
    ("feed", "none"),
    ("gallery", "auto"), // only its seed commit: no pull request
    ("help", "9"),
    ("invoices", "auto"), // #11
    ("jobs", "11"),
    ("kiosk", "auto"), // #12
    ("ledger", "13"),
];

const PULLS: &[(&str, Option<u64>)] = &[
    ("checkout", Some(5)),
    ("banner", Some(7)),
    ("checkout", Some(9)),
    ("dark-mode", Some(9)),
    ("emails", None),
    ("invoices", Some(11)),
    ("kiosk", Some(12)),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_graphql_query_finds_every_auto_pull_request_and_chunks_follow_it() {
    let fake = fake_with_history(SPECS, PULLS).await;
    let repo = Repo::new(SPECS);
    let env = github_env(&fake);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = repo.list(&["--output", "matrix", "--max-jobs", "4"], &env).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN), "{stdout}\n{stderr}");
    assert_eq!(stderr, "", "every auto rollout was looked up");
    let chunks = matrix(&out);
    let together = |a: &str, b: &str| {
        chunks
            .values()
            .any(|c| c.split(',').any(|r| r == a) && c.split(',').any(|r| r == b))
    };
    assert!(together("banner", "cart"), "auto → #7 and 7: {chunks:?}");
    assert!(
        together("checkout", "dark-mode") && together("dark-mode", "help"),
        "#9: {chunks:?}"
    );
    assert!(together("invoices", "jobs"), "#11: {chunks:?}");
    // Groups: #9 ×3, #7 ×2, #11 ×2, then five alone; four jobs of three rollouts each.
    let sizes: Vec<usize> = chunks.values().map(|c| c.split(',').count()).collect();
    assert_eq!(sizes, vec![3, 3, 3, 3], "{chunks:?}");

    // Exactly one GraphQL request for the twelve specs, and no REST commit lookups.
    let queries = graphql_requests(&fake);
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert!(
        !fake.requests().iter().any(|r| r.path.contains("/commits")),
        "no REST commit lookups"
    );
    let body = queries[0].body.as_ref().unwrap();
    let query = body["query"].as_str().unwrap();
    for shape in [
        "repository(owner: $owner, name: $name)",
        "object(expression: $branch)",
        "... on Commit",
        "p0: history(path: $p0, first: 1)",
        "associatedPullRequests(first: 1) { nodes { number } }",
    ] {
        assert!(query.contains(shape), "{shape} in {query}");
    }
    let variables = &body["variables"];
    assert_eq!(variables["owner"], "octo-org");
    assert_eq!(variables["name"], "octo-repo");
    assert_eq!(variables["branch"], "refs/heads/main", "the default branch, qualified");
    let autos: Vec<&str> = SPECS.iter().filter(|(_, pr)| *pr == "auto").map(|(n, _)| *n).collect();
    for (i, name) in autos.iter().enumerate() {
        assert_eq!(variables[format!("p{i}")], path(name), "paths travel as variables");
    }
    assert!(variables.get(format!("p{}", autos.len())).is_none());
    fake.assert_conformant();

    // The JSON says where each one reports; the same answer, from a second query.
    let out = repo.list(&["--output", "json"], &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reports: BTreeMap<&str, Value> = listing["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["reports_to"].clone()))
        .collect();
    let expected = [
        ("banner", 7),
        ("cart", 7),
        ("checkout", 9),
        ("dark-mode", 9),
        ("help", 9),
        ("invoices", 11),
        ("jobs", 11),
        ("kiosk", 12),
        ("ledger", 13),
    ];
    for (name, pr) in expected {
        assert_eq!(reports[name], Value::from(pr), "{name}");
    }
    for name in ["emails", "feed", "gallery"] {
        assert_eq!(reports[name], Value::Null, "{name}");
    }
    assert_eq!(listing["note"], Value::Null);
    assert_eq!(graphql_requests(&fake).len(), 2);
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_and_fifty_auto_specs_take_two_queries() {
    let names: Vec<String> = (0..150).map(|i| format!("r{i:03}")).collect();
    let specs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "auto")).collect();
    let pulls: Vec<(&str, Option<u64>)> = names.iter().map(|n| (n.as_str(), Some(40))).collect();
    let fake = fake_with_history(&specs, &pulls).await;
    let repo = Repo::new(&specs);
    let env = github_env(&fake);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = repo.list(&["--output", "matrix"], &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(matrix(&out).len(), 1, "one pull request: one chunk");
    let queries = graphql_requests(&fake);
    assert_eq!(queries.len(), 2, "a hundred paths per query");
    assert_eq!(queries[1].body.as_ref().unwrap()["variables"]["p49"], path("r149"));
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_answer_auto_rollouts_are_chunked_by_spec_file_and_stderr_says_why() {
    let fake = fake_with_history(SPECS, PULLS).await;
    let repo = Repo::new(SPECS);
    // Every attempt at the query fails.
    fake.fail_next("POST", "/graphql", 502, 10);
    let env = github_env(&fake);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = repo.list(&["--output", "matrix", "--max-jobs", "256"], &env).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("could not ask GitHub which pull request last changed each spec")
            && stderr.contains("`auto` rollouts are grouped by spec file alone"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN));
    // No two specs name the same pull request, and each auto rollout is alone: twelve chunks.
    assert_eq!(matrix(&out).len(), 12, "{:?}", matrix(&out));

    // Without a token nothing is asked at all.
    let before = fake.requests().len();
    let out = repo.list(&["--output", "matrix"], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stderr),
        "flagramp: GITHUB_TOKEN is not set; `auto` rollouts are grouped by spec file alone\n"
    );
    assert_eq!(matrix(&out).len(), 8, "at most 8 jobs by default");
    assert_eq!(fake.requests().len(), before);
}
