//! The Action as the runner invokes a container action: `INPUT_*` variables with action.yml's
//! defaults, an event payload file, temporary summary and output files, and `GITHUB_API_URL`
//! pointing at a stateful local fake of GitHub whose every request and answer is checked
//! against GitHub's OpenAPI description.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

use serde_json::{json, Value};

use crate::support::github::FakeGitHub;

pub(crate) const TOKEN: &str = "ghs_fakeTokenForTests0123456789";
pub(crate) const FLAGS: &str = "flags/flags.flagd.json";
pub(crate) const STATE_BRANCH: &str = "flagramp-state";

pub(crate) fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/github/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `action.yml`'s input defaults, as the runner would pass them (`${{ github.token }}` becomes a token).
fn action_defaults() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(format!("{}/action.yml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let root = marked_yaml::parse_yaml(0, &text).unwrap();
    let inputs = root.as_mapping().unwrap().get_mapping("inputs").unwrap();
    inputs
        .iter()
        .map(|(name, def)| {
            let default = def
                .as_mapping()
                .and_then(|m| m.get_scalar("default"))
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            let value = if default == "${{ github.token }}" {
                TOKEN.to_string()
            } else {
                default
            };
            (name.as_str().to_string(), value)
        })
        .collect()
}

pub(crate) fn flags_json(state: &str, on: Option<u32>) -> String {
    let mut flag = json!({ "state": state, "variants": { "on": true, "off": false }, "defaultVariant": "off" });
    if let Some(on) = on {
        flag["targeting"] = json!({ "fractional": [["on", on], ["off", 100_000 - on]] });
    }
    serde_json::to_string_pretty(&json!({ "flags": { "new-checkout": flag, "dark-mode": { "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "on" } } })).unwrap()
}

pub(crate) fn spec(extra: &str) -> String {
    format!(
        "version: 1\nname: new-checkout\nflag: {{ provider: flagd, key: new-checkout, flagd: {{ path: {FLAGS} }} }}\nstages: [{{ percent: 10, bake: 0s }}, {{ percent: 50, bake: 0s }}, {{ percent: 100, bake: 1h }}]\nchecks:\n  - {{ name: smoke, command: [\"./check.sh\"], pass: \"== 1\" }}\n{extra}"
    )
}

/// A checked-out workspace plus the runner's files.
pub(crate) struct Job {
    dir: tempfile::TempDir,
}

impl Job {
    pub(crate) fn new(spec_text: &str) -> Job {
        let job = Job {
            dir: tempfile::tempdir().unwrap(),
        };
        job.write("repo/.github/rollouts/new-checkout.yml", spec_text);
        job.write("repo/check.sh", "#!/bin/sh\necho 1\n");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(job.path("repo/check.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        // A stale workspace copy: flagramp must read the flag from the branch, never from here.
        job.write(&format!("repo/{FLAGS}"), &flags_json("ENABLED", Some(77_000)));
        job
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub(crate) fn summary(&self) -> String {
        std::fs::read_to_string(self.path("summary.md")).unwrap_or_default()
    }

    /// Parses `$GITHUB_OUTPUT`'s heredocs.
    pub(crate) fn outputs(&self) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(self.path("output.txt")).unwrap_or_default();
        let mut out = BTreeMap::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let (name, delimiter) = line.split_once("<<").expect("heredoc output");
            assert!(
                delimiter.starts_with("ghadelimiter_") && delimiter.len() > 20,
                "random delimiter: {delimiter}"
            );
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_string(), value.join("\n"));
        }
        out
    }

    pub(crate) async fn run(
        &self,
        fake: &FakeGitHub,
        repository: &str,
        event_name: &str,
        event: &Value,
        inputs: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Output {
        let binary = std::path::Path::new(env!("CARGO_BIN_EXE_flagramp"));
        self.run_binary(binary, fake, repository, event_name, event, inputs, env)
            .await
    }

    /// [`Job::run`] with another `flagramp` binary (a previous release's).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_binary(
        &self,
        binary: &std::path::Path,
        fake: &FakeGitHub,
        repository: &str,
        event_name: &str,
        event: &Value,
        inputs: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Output {
        let event_path = self.path(&format!("event-{}.json", rand::random::<u32>()));
        std::fs::write(&event_path, serde_json::to_string(event).unwrap()).unwrap();
        let mut values = action_defaults();
        for (k, v) in inputs {
            values.insert(k.to_string(), v.to_string());
        }
        let mut cmd = std::process::Command::new(binary);
        cmd.arg("action")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .current_dir(self.dir.path());
        for (name, value) in &values {
            // The runner upper-cases the name and keeps underscores.
            cmd.env(format!("INPUT_{}", name.to_ascii_uppercase()), value);
        }
        cmd.env("GITHUB_EVENT_NAME", event_name)
            .env("GITHUB_EVENT_PATH", &event_path)
            .env("GITHUB_REPOSITORY", repository)
            .env("GITHUB_API_URL", fake.uri())
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_RUN_ID", "4242")
            .env("GITHUB_SHA", "ffac537e6cbbf934b08745a378932722df287a53")
            .env("GITHUB_ACTOR", "octocat")
            .env("GITHUB_WORKSPACE", self.path("repo"))
            .env("GITHUB_STEP_SUMMARY", self.path("summary.md"))
            .env("GITHUB_OUTPUT", self.path("output.txt"));
        for (k, v) in env {
            if *k == CLOSED_STDOUT {
                // The process writes its log into a pipe whose reader is gone.
                let (reader, writer) = std::io::pipe().unwrap();
                drop(reader);
                cmd.stdout(writer);
                continue;
            }
            cmd.env(k, v);
        }
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

/// An `env` entry for [`Job::run`] that is not an environment variable: run with stdout closed.
const CLOSED_STDOUT: &str = "<closed stdout>";

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn flag_on_branch(fake: &FakeGitHub, branch: &str) -> Value {
    let bytes = fake.file(branch, FLAGS).expect("flag file on the branch");
    serde_json::from_slice::<Value>(&bytes).unwrap()["flags"]["new-checkout"].clone()
}

pub(crate) fn state_on_branch(fake: &FakeGitHub) -> Value {
    let bytes = fake
        .file(STATE_BRANCH, "rollouts/new-checkout.json")
        .expect("state file on the state branch");
    serde_json::from_slice(&bytes).unwrap()
}

pub(crate) async fn octo_repo() -> FakeGitHub {
    let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
    fake.put_file("main", FLAGS, flags_json("DISABLED", None).as_bytes());
    fake
}

/// The Action reads the repository's `.github/flagramp.yml` from the workspace; a hook that
/// answers 500 changes nothing of the run (its decision, exit code and outputs) and shows as a
/// warning in the step log and under the rollout in the job summary (docs/rules.md §5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_notification_is_a_warning_in_the_log_and_the_summary() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("hook is down"))
        .expect(1)
        .mount(&hook)
        .await;
    let fake = octo_repo().await;
    let job = Job::new(&spec("report: { pull_request: none }\n"));
    job.write(
        "repo/.github/flagramp.yml",
        &format!(
            "notify:\n  events: [start]\n  to:\n    - webhook: {{ url: \"{}/hook\", secret_env: ROLLOUT_HOOK_SECRET }}\n",
            hook.uri()
        ),
    );
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[],
            &[("ROLLOUT_HOOK_SECRET", "action-hook-key-abcdefghij")],
        )
        .await;
    let log = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains("::warning title=flagramp%3A new-checkout::notification to webhook 127.0.0.1 not sent: answered HTTP 500: hook is down; the decision stands"),
        "{log}"
    );
    assert!(
        log.contains("::add-mask::action-hook-key-abcdefghij\n"),
        "the key is masked before anything could print it: {log}"
    );
    assert!(
        !log.lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .any(|l| l.contains("action-hook-key-abcdefghij")),
        "{log}"
    );
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    assert_eq!(decisions[0]["decision"], "start");
    let summary = job.summary();
    assert!(
        summary.contains("> [!WARNING]\n> notification to webhook 127.0.0.1 not sent: answered HTTP 500"),
        "{summary}"
    );
    assert!(state_on_branch(&fake).get("last_notified").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_starts_the_rollout_on_the_branch_and_reports_everywhere() {
    let fake = octo_repo().await;
    fake.add_commit(
        ".github/rollouts/new-checkout.yml",
        "1111111111111111111111111111111111111111",
        Some(7),
    );
    let job = Job::new(&spec(""));
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[],
            &[],
        )
        .await;
    let log = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{log}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        log.starts_with(&format!("::add-mask::{TOKEN}\n")),
        "the token is masked before anything else: {log}"
    );
    assert!(
        log.contains("::group::new-checkout (start)") && log.contains("::endgroup::"),
        "{log}"
    );

    // The flag changed on the default branch; the stale workspace copy was neither read nor written.
    let flag = flag_on_branch(&fake, "main");
    assert_eq!(flag["state"], "ENABLED");
    assert_eq!(flag["targeting"]["fractional"], json!([["on", 10000], ["off", 90000]]));
    assert!(std::fs::read_to_string(job.path(&format!("repo/{FLAGS}")))
        .unwrap()
        .contains("77000"));
    // State was created on its own branch, through the contents API.
    assert!(fake.branch_exists(STATE_BRANCH));
    let state = state_on_branch(&fake);
    assert_eq!(state["last_set"], json!({ "enabled": true, "percent": 10 }));
    assert!(state["pending"].is_null());

    let outputs = job.outputs();
    let decisions: Value = serde_json::from_str(&outputs["decisions"]).unwrap();
    assert_eq!(decisions[0]["decision"], "start");
    let counts: Value = serde_json::from_str(&outputs["counts"]).unwrap();
    assert_eq!(counts["start"], 1);
    assert_eq!(counts["error"], 0);
    assert_eq!(outputs["advanced"], "1");
    assert_eq!(outputs["rolled_back"], "0");
    assert_eq!(outputs["held"], "0");

    let summary = job.summary();
    assert!(
        summary.starts_with("**flagramp** · 1 rollout · 1 advanced"),
        "{summary}"
    );
    assert!(summary.contains("**10%** → 50% → 100%"), "{summary}");
    assert!(
        summary.contains("https://github.com/octo-org/octo-repo/actions/runs/4242"),
        "{summary}"
    );
    // The event's cron fires every 15 minutes: the run belongs to the latest slot before it,
    // which is less than the shortest bake (1h) ago.
    let lag_line = summary
        .lines()
        .find(|l| l.starts_with("This scheduled run started "))
        .unwrap_or_else(|| panic!("no schedule line: {summary}"));
    assert!(
        lag_line.ends_with(" UTC (cron <code>*/15 * * * *</code>): at least that late."),
        "{lag_line}"
    );
    assert!(!summary.contains("shortest bake"), "{summary}");
    assert!(!log.contains("started late"), "{log}");

    // The state changed, so the pull request that last changed the spec hears about it.
    let comments = fake.comments(7);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("<!-- flagramp:report -->") && comments[0].body.contains("Started"),
        "{}",
        comments[0].body
    );
    fake.assert_conformant();
    // Each thing is read once per run: the repository, the state file, the flag file.
    let requests = fake.requests();
    let gets = |suffix: &str| {
        requests
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(suffix))
            .count()
    };
    assert_eq!(gets("/repos/octo-org/octo-repo"), 1);
    assert_eq!(
        gets("/contents/rollouts/new-checkout.json"),
        0,
        "state is read from the state branch's tree (docs/state-branch.md), not file by file"
    );
    assert_eq!(
        gets(&format!("/contents/{FLAGS}")),
        2,
        "read to decide; read again to edit under its sha (the edit is verified before it is written, not read back)"
    );
    // The summary ends with the run's API use, as the fake saw it: every request was made
    // before the summary was written; the claim, the flag file and the record are 3 commits.
    let queries = requests.iter().filter(|r| r.path == "/graphql").count();
    assert_eq!(
        queries, 2,
        "the state branch's tree (it has no state yet, so no blobs); the specs' pull requests"
    );
    let last = summary.trim_end().lines().last().unwrap();
    assert_eq!(
        last.split("; rate limit:").next().unwrap(),
        format!(
            "GitHub API use: {} requests ({} REST, {queries} GraphQL), 3 commits",
            requests.len(),
            requests.len() - queries
        ),
        "{summary}"
    );
    assert!(
        last.contains(&format!(
            "{} left of 5000 (core, resets ",
            5000 - (requests.len() - queries)
        )) && last.contains(&format!("{} left of 5000 (graphql", 5000 - queries)),
        "{last}"
    );

    // The next run advances (bake 0s) and edits the same comment.
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        flag_on_branch(&fake, "main")["targeting"]["fractional"],
        json!([["on", 50000], ["off", 50000]])
    );
    let comments = fake.comments(7);
    assert_eq!(comments.len(), 1, "edited in place, not duplicated");
    assert!(comments[0].body.contains("Advanced"), "{}", comments[0].body);
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_dispatch_runs_the_command_in_its_inputs_with_the_actor() {
    let fake = octo_repo().await;
    let job = Job::new(&spec("report: { pull_request: none }\n"));
    let mut event = fixture("workflow_dispatch.json");
    event["inputs"] = json!({ "command": "advance", "rollout": "new-checkout", "reason": "ship it" });
    let out = job
        .run(&fake, "octo-org/octo-repo", "workflow_dispatch", &event, &[], &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    assert_eq!(decisions[0]["decision"], "start");
    assert_eq!(decisions[0]["actor"], "octocat");
    assert!(decisions[0]["reason"].as_str().unwrap().contains("ship it"));
    // An explicit `command` input overrides the event: a dry-run rollback only plans.
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "workflow_dispatch",
            &event,
            &[
                ("command", "rollback"),
                ("rollout", "new-checkout"),
                ("dry_run", "true"),
            ],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        flag_on_branch(&fake, "main")["targeting"]["fractional"][0],
        json!(["on", 10000]),
        "dry run changed nothing"
    );
    assert_eq!(fake.comments(7).len(), 0);
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_and_unknown_rollouts_fail_with_an_error_annotation() {
    let fake = octo_repo().await;
    let job = Job::new(&spec(""));
    for (inputs, words) in [
        (vec![("fail_on", "sometimes")], "input `fail_on` is `sometimes`"),
        (vec![("command", "deploy")], "input `command` is `deploy`"),
        (vec![("command", "advance")], "needs a rollout"),
        (vec![("command", "plan"), ("rollout", "nope")], "unknown rollout `nope`"),
        (vec![("github_token", "")], "`github_token` is empty"),
    ] {
        let out = job
            .run(
                &fake,
                "octo-org/octo-repo",
                "schedule",
                &fixture("schedule.synthetic.json"),
                &inputs,
                &[],
            )
            .await;
        assert_eq!(out.status.code(), Some(1), "{inputs:?}");
        let log = stdout(&out);
        assert!(
            log.contains("::error title=") && log.contains(words),
            "{inputs:?}: {log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_are_annotated_on_the_right_line_with_repo_relative_paths() {
    let fake = octo_repo().await;
    let job = Job::new(&spec("policy: { failures_to_rollbak: 2 }\n"));
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    let log = stdout(&out);
    assert!(
        log.contains("::error file=.github/rollouts/new-checkout.yml,line=7,col=11,title=flagramp%3A invalid rollout spec::unknown field `failures_to_rollbak` in `policy`"),
        "{log}"
    );
    assert!(
        job.summary().contains("1 problem in rollout specs"),
        "{}",
        job.summary()
    );
    assert_eq!(flag_on_branch(&fake, "main")["state"], "DISABLED", "nothing is changed");
    assert!(!fake.branch_exists(STATE_BRANCH));
    // fail_on: never keeps the step green while still reporting.
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[("fail_on", "never")],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_secrets_are_masked_before_anything_else_and_never_printed() {
    let fake = octo_repo().await;
    let spec_text = spec("").replace(
        "checks:\n",
        "sources:\n  prom:\n    provider: prometheus\n    url: http://127.0.0.1:9\n    token_env: PROM_TOKEN\nchecks:\n  - { name: leak, command: [\"./leak.sh\"], env: [PROM_TOKEN], pass: \">= 1\" }\n",
    );
    let job = Job::new(&spec_text);
    job.write("repo/leak.sh", "#!/bin/sh\necho \"token=$PROM_TOKEN\" >&2\nexit 1\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(job.path("repo/leak.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = "prom-secret-value-123";
    // Start first, so the next run queries the checks.
    job.run(
        &fake,
        "octo-org/octo-repo",
        "schedule",
        &fixture("schedule.synthetic.json"),
        &[],
        &[("PROM_TOKEN", secret)],
    )
    .await;
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[("comment", "always")],
            &[("PROM_TOKEN", secret)],
        )
        .await;
    let log = stdout(&out);
    let lines: Vec<&str> = log.lines().collect();
    // Every form of every secret (percent-encoded ones too) is masked first, the token first of all.
    let masks = lines.iter().take_while(|l| l.starts_with("::add-mask::")).count();
    assert_eq!(lines[0], format!("::add-mask::{TOKEN}"));
    assert!(
        lines[..masks].contains(&format!("::add-mask::{secret}").as_str()),
        "{log}"
    );
    let after_masks = lines[masks..].join("\n");
    assert!(!after_masks.contains(secret) && !after_masks.contains(TOKEN), "{log}");
    assert!(
        after_masks.contains("token=***"),
        "the command's stderr is redacted: {log}"
    );
    assert!(!job.summary().contains(secret) && !job.outputs()["decisions"].contains(secret));
    for (branch, path) in [(STATE_BRANCH, "rollouts/new-checkout.json"), ("main", FLAGS)] {
        assert!(!String::from_utf8_lossy(&fake.file(branch, path).unwrap()).contains(secret));
    }
    for r in fake.requests() {
        assert!(
            !r.body.map(|b| b.to_string()).unwrap_or_default().contains(secret),
            "{} {}",
            r.method,
            r.path
        );
    }
}

pub(crate) async fn hello_world() -> FakeGitHub {
    let fake = FakeGitHub::start("Codertocat", "Hello-World", "main").await;
    fake.put_file("main", FLAGS, flags_json("DISABLED", None).as_bytes());
    fake
}

pub(crate) const PR: u64 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_gets_a_plan_for_the_specs_it_changes_and_nothing_is_changed() {
    let fake = hello_world().await;
    fake.set_pr_files(
        PR,
        &[
            (".github/rollouts/new-checkout.yml", "modified"),
            ("README.md", "modified"),
        ],
    );
    let job = Job::new(&spec(""));
    job.write(
        "repo/.github/rollouts/other.yml",
        &spec("").replace("name: new-checkout", "name: other"),
    );
    let event = fixture("pull_request.opened.json");
    let out = job
        .run(&fake, "Codertocat/Hello-World", "pull_request", &event, &[], &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    assert_eq!(
        decisions.as_array().unwrap().len(),
        1,
        "only the changed spec is planned: {decisions}"
    );
    assert_eq!(decisions[0]["rollout"], "new-checkout");
    assert_eq!(decisions[0]["decision"], "start", "what the next run would do");
    assert_eq!(flag_on_branch(&fake, "main")["state"], "DISABLED");
    assert!(!fake.branch_exists(STATE_BRANCH), "a plan creates nothing");
    assert_eq!(fake.applied_writes(), 1, "the one write is the comment");
    let comments = fake.comments(PR);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("flagramp plan for this pull request")
            && comments[0].body.contains("<code>new-checkout</code>"),
        "{}",
        comments[0].body
    );
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_with_an_invalid_spec_gets_annotations_and_the_problems_in_its_comment() {
    let fake = hello_world().await;
    fake.set_pr_files(PR, &[(".github/rollouts/new-checkout.yml", "modified")]);
    let job = Job::new(&spec("").replace("pass: \"== 1\"", "pass: \"=> 1\""));
    let out = job
        .run(
            &fake,
            "Codertocat/Hello-World",
            "pull_request",
            &fixture("pull_request.opened.json"),
            &[],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("::error file=.github/rollouts/new-checkout.yml,line=6"),
        "{}",
        stdout(&out)
    );
    let body = &fake.comments(PR)[0].body;
    assert!(
        body.contains("1 problem in rollout specs") && body.contains("=> 1"),
        "{body}"
    );
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sticky_comment_is_created_then_edited_and_an_unchanged_body_writes_nothing() {
    let fake = hello_world().await;
    fake.set_pr_files(PR, &[(".github/rollouts/new-checkout.yml", "added")]);
    // 150 comments before ours, over two pages; one of them carries the marker but is someone else's.
    for i in 0..150 {
        let body = if i == 3 {
            "<!-- flagramp:report --> quoted by a person".to_string()
        } else {
            format!("comment {i}")
        };
        fake.add_comment(PR, if i == 3 { "octocat" } else { "someone" }, &body);
    }
    let job = Job::new(&spec(""));
    let event = fixture("pull_request.opened.json");
    job.run(&fake, "Codertocat/Hello-World", "pull_request", &event, &[], &[])
        .await;
    let ours: Vec<_> = fake
        .comments(PR)
        .into_iter()
        .filter(|c| c.author == "github-actions[bot]")
        .collect();
    assert_eq!(ours.len(), 1, "created");
    let first = ours[0].clone();
    assert!(
        fake.comments(PR)
            .iter()
            .any(|c| c.author == "octocat" && c.body == "<!-- flagramp:report --> quoted by a person"),
        "another author's comment is left alone"
    );

    // The same plan again renders the same body, so nothing is written.
    let writes = fake.applied_writes();
    job.run(&fake, "Codertocat/Hello-World", "pull_request", &event, &[], &[])
        .await;
    assert_eq!(fake.applied_writes(), writes, "an unchanged body makes no write");

    // The spec changes: the same comment is edited.
    job.write(
        "repo/.github/rollouts/new-checkout.yml",
        &spec("").replace("percent: 10, bake: 0s", "percent: 5, bake: 0s"),
    );
    job.run(&fake, "Codertocat/Hello-World", "pull_request", &event, &[], &[])
        .await;
    let ours: Vec<_> = fake
        .comments(PR)
        .into_iter()
        .filter(|c| c.author == "github-actions[bot]")
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].id, first.id);
    assert_ne!(ours[0].body, first.body);
    let pages: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/issues/2/comments"))
        .collect();
    assert!(
        pages
            .iter()
            .any(|r| r.query.iter().any(|(k, v)| k == "page" && v == "2")),
        "all pages were searched"
    );
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_create_failure_never_duplicates_the_comment() {
    let fake = hello_world().await;
    fake.set_pr_files(PR, &[(".github/rollouts/new-checkout.yml", "added")]);
    fake.fail_once_after_applying("POST", "/issues/2/comments", 502);
    let job = Job::new(&spec(""));
    let out = job
        .run(
            &fake,
            "Codertocat/Hello-World",
            "pull_request",
            &fixture("pull_request.opened.json"),
            &[],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        fake.comments(PR).len(),
        1,
        "searched again and found the comment the failed create made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_gets_a_warning_the_summary_and_success() {
    let fake = hello_world().await;
    fake.set_pr_files(PR, &[(".github/rollouts/new-checkout.yml", "added")]);
    fake.set_read_only(true);
    let job = Job::new(&spec(""));
    let out = job
        .run(
            &fake,
            "Codertocat/Hello-World",
            "pull_request",
            &fixture("pull_request.opened.json"),
            &[],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("::warning title=flagramp%3A cannot comment::"),
        "{}",
        stdout(&out)
    );
    assert!(job.summary().contains("<code>new-checkout</code>"));
    assert!(fake.comments(PR).is_empty());
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refused_by_branch_protection_is_an_error_with_a_hint_not_a_conflict() {
    let fake = octo_repo().await;
    fake.protect_branch("main");
    let job = Job::new(&spec("report: { pull_request: none }\n"));
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    assert_eq!(decisions[0]["decision"], "error");
    let reason = decisions[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("Repository rule violations") && reason.contains("flag.flagd.branch"),
        "{reason}"
    );
    assert!(!reason.contains("decides again"), "{reason}");
    assert_eq!(flag_on_branch(&fake, "main")["state"], "DISABLED");
    fake.assert_conformant();
}

mod concurrency {
    use std::path::Path;
    use std::sync::Arc;

    use flagramp::github::GitHub;
    use flagramp::provider::FlagFiles;
    use flagramp::record::DecisionKind;
    use flagramp::runner::{Mode, Runner};
    use flagramp::state::GitHubStateStore;

    use crate::support::bench;

    use super::*;

    fn ramp_spec() -> flagramp::spec::RolloutSpec {
        // The second stage bakes for an hour, so a run that loses the race holds instead of
        // legitimately advancing once more.
        let text = format!(
            "version: 1\nname: new-checkout\nflag: {{ provider: flagd, key: new-checkout, flagd: {{ path: {FLAGS} }} }}\nstages: [{{ percent: 10, bake: 0s }}, {{ percent: 50, bake: 1h }}, 100]\nchecks:\n  - {{ name: ok, command: [\"true\"], pass: \"== 1\" }}\n"
        );
        let (spec, _, diags) = flagramp::spec::parse_spec(Path::new(".github/rollouts/new-checkout.yml"), &text);
        assert!(diags.is_empty(), "{diags:?}");
        let mut spec = spec.unwrap();
        // `true` prints nothing; a check that prints 1 keeps the test free of files.
        let flagramp::spec::CheckTest::Threshold(test) = &mut spec.checks[0].test else {
            panic!("a command check is a threshold check");
        };
        test.probe = flagramp::spec::Probe::Command {
            argv: vec!["echo".into(), "1".into()],
            env: Vec::new(),
        };
        spec
    }

    async fn runner(fake: &FakeGitHub) -> Runner {
        let github = Arc::new(GitHub::new(&fake.uri(), TOKEN, "octo-org/octo-repo").unwrap());
        let store = GitHubStateStore::open(github.clone(), STATE_BRANCH, true)
            .await
            .unwrap();
        let scratch = std::env::temp_dir();
        let mut runner = bench::runner(&scratch, &scratch, bench::at_minute(0), Box::new(store));
        runner.flag_files = FlagFiles::GitHub {
            github,
            default_branch: "main".into(),
        };
        runner
    }

    /// Starts a rollout, then lets `runs` runs race on it; returns how many advanced.
    async fn race(runs: usize) -> usize {
        let fake = octo_repo().await;
        let spec = ramp_spec();
        let started = runner(&fake).await.decide(&spec, &Mode::Run).await;
        assert_eq!(started.record.decision, DecisionKind::Start, "{:?}", started.record);
        let mut tasks = Vec::new();
        for _ in 0..runs {
            let r = runner(&fake).await;
            let spec = spec.clone();
            tasks.push(tokio::spawn(async move { r.decide(&spec, &Mode::Run).await.record }));
        }
        let mut advanced = 0;
        for t in tasks {
            let record = t.await.unwrap();
            match record.decision {
                DecisionKind::Advance => advanced += 1,
                DecisionKind::Hold => {}
                other => panic!("a losing run must hold, not {other:?}: {}", record.reason),
            }
        }
        assert_eq!(
            flag_on_branch(&fake, "main")["targeting"]["fractional"][0],
            json!(["on", 50000])
        );
        let state = state_on_branch(&fake);
        assert_eq!(state["last_set"]["percent"], 50);
        assert!(state["pending"].is_null());
        let advances = state["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["decision"] == "advance")
            .count();
        assert_eq!(advances, 1, "one advance in the history");
        fake.assert_conformant();
        advanced
    }

    /// Twenty rollouts whose flags share one file on the branch: the run reads the file once to
    /// decide and once more to edit it under its sha, and writes it in one commit, not twenty.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rollouts_sharing_a_flag_file_read_it_once_and_write_it_once() {
        const ROLLOUTS: usize = 20;
        let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
        let specs = rollouts_in_one_flag_file(&fake, ROLLOUTS);
        let decided = runner(&fake).await.decide_all(&specs, &Mode::Run).await;
        assert!(
            decided.iter().all(|d| d.record.decision == DecisionKind::Start),
            "{:?}",
            decided.iter().map(|d| &d.record.reason).collect::<Vec<_>>()
        );
        let on_branch: serde_json::Value = serde_json::from_slice(&fake.file("main", FLAGS).unwrap()).unwrap();
        assert_eq!(
            on_branch["flags"]
                .as_object()
                .unwrap()
                .values()
                .filter(|f| f["state"] == "ENABLED")
                .count(),
            ROLLOUTS
        );
        let requests = fake.requests();
        let to_flags = |method: &str| {
            requests
                .iter()
                .filter(|r| r.method == method && r.path.ends_with(&format!("/contents/{FLAGS}")))
                .count()
        };
        assert_eq!((to_flags("GET"), to_flags("PUT")), (2, 1));
        fake.assert_conformant();
    }

    /// A flagd flag `key`, off.
    fn disabled_flag(key: &str) -> String {
        format!("\"{key}\": {{ \"state\": \"DISABLED\", \"variants\": {{ \"on\": true, \"off\": false }}, \"defaultVariant\": \"off\" }}")
    }

    /// `rollouts` rollouts `r0`… of flags `f0`…, all off in the one flag file on `main`.
    fn rollouts_in_one_flag_file(fake: &FakeGitHub, rollouts: usize) -> Vec<flagramp::spec::RolloutSpec> {
        let flags: Vec<String> = (0..rollouts).map(|i| disabled_flag(&format!("f{i}"))).collect();
        fake.put_file(
            "main",
            FLAGS,
            format!("{{ \"flags\": {{ {} }} }}\n", flags.join(", ")).as_bytes(),
        );
        (0..rollouts)
            .map(|i| {
                let mut spec = ramp_spec();
                spec.name = format!("r{i}");
                spec.flag.key = format!("f{i}");
                spec
            })
            .collect()
    }

    const THREE_FILES: [&str; 3] = ["flags/a.flagd.json", "flags/b.flagd.json", "other/c.flagd.json"];

    /// A branch with three flag files of three flags each, and six rollouts of two flags of each.
    fn flags_in_three_files(fake: &FakeGitHub) -> Vec<flagramp::spec::RolloutSpec> {
        let files: Vec<(String, Vec<u8>)> = THREE_FILES
            .iter()
            .enumerate()
            .map(|(n, path)| {
                let keys = [
                    disabled_flag(&format!("f{n}a")),
                    disabled_flag(&format!("f{n}b")),
                    disabled_flag(&format!("untouched{n}")),
                ];
                (
                    path.to_string(),
                    format!("{{ \"flags\": {{ {} }} }}\n", keys.join(", ")).into_bytes(),
                )
            })
            .collect();
        fake.put_files("main", &files);
        (0..THREE_FILES.len())
            .flat_map(|n| ["a", "b"].map(|x| (n, x)))
            .map(|(n, x)| {
                let mut spec = ramp_spec();
                spec.name = format!("r{n}{x}");
                spec.flag.key = format!("f{n}{x}");
                spec.flag.provider = flagramp::spec::ProviderSpec::Flagd {
                    path: THREE_FILES[n].into(),
                    branch: None,
                };
                spec
            })
            .collect()
    }

    /// Another writer commits to the flag files' branch between this run's read and its commit:
    /// the run reads the files again and applies on top of theirs only its flags that nobody
    /// changed, keeping the other writer's changes; the rollout whose flag they changed is
    /// decided again on the flag as they left it (docs/rules.md §3), never written blind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_branch_head_that_moves_before_the_flag_commit_gets_only_this_runs_flags_reapplied() {
        let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
        let specs = flags_in_three_files(&fake);
        let edited = |path: &str, key: &str| -> (String, Vec<u8>) {
            let mut doc: serde_json::Value = serde_json::from_slice(&fake.file("main", path).unwrap()).unwrap();
            doc["flags"][key]["state"] = "ENABLED".into();
            (path.to_string(), serde_json::to_vec_pretty(&doc).unwrap())
        };
        // Theirs: a flag nobody rolls out in the first file, and r1a's own flag in the second.
        let theirs = [edited(THREE_FILES[0], "untouched0"), edited(THREE_FILES[1], "f1a")];
        fake.commit_before_next("PATCH", "/git/refs/heads/main", "main", &theirs);
        let decided = runner(&fake).await.decide_all(&specs, &Mode::Run).await;

        let file =
            |path: &str| -> serde_json::Value { serde_json::from_slice(&fake.file("main", path).unwrap()).unwrap() };
        for (spec, d) in specs.iter().zip(&decided) {
            assert_eq!(
                d.record.decision,
                DecisionKind::Start,
                "{}: {}",
                spec.name,
                d.record.reason
            );
            let on_branch = file(THREE_FILES[spec.name[1..2].parse::<usize>().unwrap()]);
            assert_eq!(on_branch["flags"][&spec.flag.key]["state"], "ENABLED", "{on_branch}");
        }
        assert_eq!(
            file(THREE_FILES[0])["flags"]["untouched0"]["state"],
            "ENABLED",
            "their change is kept"
        );
        // On top of theirs: first the five flags nobody else changed, in one commit; then, decided
        // again on the flag as they left it, r1a's.
        let commits = fake.commits_on("main");
        assert_eq!(commits[2].message, "Seed files", "theirs, under this run's commits");
        assert_eq!(commits[1].parent.as_deref(), Some(commits[2].sha.as_str()));
        let mut touched = commits[1].touched.clone();
        touched.sort();
        assert_eq!(touched, THREE_FILES.to_vec(), "{:?}", commits[1]);
        assert_eq!(commits[0].touched, [THREE_FILES[1]], "r1a's flag, decided again");
        let patches: Vec<u16> = fake
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.ends_with("/git/refs/heads/main"))
            .map(|r| r.status)
            .collect();
        assert_eq!(
            patches,
            [422, 200],
            "refused once on the moved head, then a fast-forward"
        );
        let puts: Vec<(String, u16)> = fake
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .map(|r| {
                (
                    r.path.rsplit("/contents/").next().unwrap_or_default().to_string(),
                    r.status,
                )
            })
            .collect();
        assert_eq!(
            puts,
            [(THREE_FILES[1].to_string(), 200)],
            "r1a's flag alone, through the contents API"
        );
        fake.assert_conformant();
    }

    /// A branch rule that refuses the commit of the flag files leaves every file as it was,
    /// withdraws every claim, and says what to do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_commit_of_flag_files_changes_nothing_and_says_why() {
        let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
        let specs = flags_in_three_files(&fake);
        let files_before: Vec<Vec<u8>> = THREE_FILES.iter().map(|p| fake.file("main", p).unwrap()).collect();
        fake.fail_next("PATCH", "/git/refs/heads/main", 422, 1);
        let decided = runner(&fake).await.decide_all(&specs, &Mode::Run).await;
        for d in &decided {
            assert_eq!(d.record.decision, DecisionKind::Error, "{}", d.record.reason);
            assert!(d.record.reason.contains("rule refused"), "{}", d.record.reason);
        }
        let files_after: Vec<Vec<u8>> = THREE_FILES.iter().map(|p| fake.file("main", p).unwrap()).collect();
        assert_eq!(files_after, files_before);
        for spec in &specs {
            let state: serde_json::Value = serde_json::from_slice(
                &fake
                    .file(STATE_BRANCH, &format!("rollouts/{}.json", spec.name))
                    .unwrap(),
            )
            .unwrap();
            assert!(state["pending"].is_null(), "the claim is withdrawn: {state}");
        }
        fake.assert_conformant();
    }

    /// Rollouts whose flags are in three files on one branch change them in one commit, each
    /// file with all its flags and nothing else in it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flags_in_several_files_on_a_branch_change_in_one_commit() {
        const FILES: [&str; 3] = THREE_FILES;
        let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
        let specs = flags_in_three_files(&fake);
        let before = fake.commits_on("main").len();
        let decided = runner(&fake).await.decide_all(&specs, &Mode::Run).await;
        assert!(
            decided.iter().all(|d| d.record.decision == DecisionKind::Start),
            "{:?}",
            decided.iter().map(|d| &d.record.reason).collect::<Vec<_>>()
        );
        let commits = fake.commits_on("main");
        assert_eq!(commits.len() - before, 1, "one commit for the three files");
        let mut touched = commits[0].touched.clone();
        touched.sort();
        assert_eq!(touched, FILES.to_vec());
        for (n, path) in FILES.iter().enumerate() {
            let on_branch: serde_json::Value = serde_json::from_slice(&fake.file("main", path).unwrap()).unwrap();
            for key in [format!("f{n}a"), format!("f{n}b")] {
                assert_eq!(on_branch["flags"][&key]["state"], "ENABLED", "{path}: {on_branch}");
            }
            assert_eq!(on_branch["flags"][format!("untouched{n}")]["state"], "DISABLED");
        }
        assert!(
            !fake.requests().iter().any(|r| r.method == "PUT"),
            "no file is written through the contents API"
        );
        fake.assert_conformant();
    }

    /// Forty rollouts whose flags share one file, with state on the branch: the run that starts
    /// them all makes 3 commits across branches (the claims, the flag file, the records), and
    /// a run where nothing changes makes none (docs/state-branch.md, "Writing").
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_that_starts_forty_rollouts_makes_at_most_three_commits() {
        const ROLLOUTS: usize = 40;
        let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
        let specs = rollouts_in_one_flag_file(&fake, ROLLOUTS);
        let commits = |fake: &FakeGitHub| fake.commits_on("main").len() + fake.commits_on(STATE_BRANCH).len();
        let before = commits(&fake);
        let decided = runner(&fake).await.decide_all(&specs, &Mode::Run).await;
        assert!(
            decided.iter().all(|d| d.record.decision == DecisionKind::Start),
            "{:?}",
            decided.iter().map(|d| &d.record.reason).collect::<Vec<_>>()
        );
        assert_eq!(commits(&fake) - before, 3, "claims, flag file, records");
        assert_eq!(
            fake.file_history(STATE_BRANCH, "rollouts/r7.json").len(),
            2,
            "claimed, recorded"
        );
        // The next run advances them all (the first stage bakes 0s): 3 commits again.
        let before = commits(&fake);
        let decided = runner(&fake).await.decide_all(&specs, &Mode::Run).await;
        assert!(decided.iter().all(|d| d.record.decision == DecisionKind::Advance));
        assert_eq!(commits(&fake) - before, 3, "claims, flag file, records");
        // The next (the second stage bakes for an hour) holds every rollout, recording it: one
        // commit. A hold repeating the last one writes nothing: the run after makes none.
        let before = commits(&fake);
        let decided = runner(&fake).await.decide_all(&specs, &Mode::Run).await;
        assert!(decided.iter().all(|d| d.record.decision == DecisionKind::Hold));
        assert_eq!(commits(&fake) - before, 1, "records");
        let before = commits(&fake);
        let requests = fake.requests().len();
        let decided = runner(&fake).await.decide_all(&specs, &Mode::Run).await;
        assert!(
            decided.iter().all(|d| d.record.decision == DecisionKind::Hold),
            "{:?}",
            decided.iter().map(|d| &d.record.reason).collect::<Vec<_>>()
        );
        assert_eq!(commits(&fake), before, "a run where nothing changes writes nothing");
        let reads = fake.requests().len() - requests;
        assert!(
            reads <= 4,
            "{reads} requests: the state branch's tree, the blobs, the flag file"
        );
        fake.assert_conformant();
    }

    /// On a state branch, notifying is one more commit, only in a run that notified:
    /// `last_notified` lands beside the record, and a run that notifies nobody writes nothing
    /// more (docs/rules.md §5).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn last_notified_is_one_more_commit_on_the_state_branch_only_when_sent() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let hook = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(204))
            .expect(2)
            .mount(&hook)
            .await;
        std::env::set_var("ACTION_NOTIFY_SECRET", "action-hook-key-0123456789");
        let fake = octo_repo().await;
        let mut spec = ramp_spec();
        spec.notify = Some(flagramp::spec::NotifySpec {
            events: [DecisionKind::Start, DecisionKind::Advance].into(),
            to: vec![flagramp::spec::NotifyTarget::Webhook {
                url: format!("{}/hook", hook.uri()),
                secret_env: "ACTION_NOTIFY_SECRET".into(),
            }],
        });
        let specs = [spec];
        let commits = |fake: &FakeGitHub| fake.commits_on("main").len() + fake.commits_on(STATE_BRANCH).len();
        let request = |minute: i64| flagramp::app::RunRequest {
            operation: flagramp::app::Operation::Run,
            rollout: None,
            spec_paths: Vec::new(),
            now: Some(bench::at_minute(minute)),
            actor: "flagramp".into(),
            reason: String::new(),
            dry_run: false,
            repo_root: std::env::temp_dir(),
            place: flagramp::app::Place::Local {
                state_dir: std::env::temp_dir(),
                lock_wait: std::time::Duration::ZERO,
            },
            budget: None,
            include_orphans: false,
            concurrency: 4,
            run_url: Some("https://github.com/octo-org/octo-repo/actions/runs/4242".into()),
            progress: None,
        };
        let run = |minute: i64| {
            let fake = &fake;
            let specs = &specs;
            async move {
                let mut runner = runner(fake).await;
                runner.now = bench::at_minute(minute);
                match flagramp::app::run_with(&runner, &request(minute), specs).await.unwrap() {
                    flagramp::app::Outcome::Decided(mut d) => d.remove(0),
                    _ => unreachable!("a run decides"),
                }
            }
        };

        let before = commits(&fake);
        let started = run(0).await;
        assert_eq!(started.record.decision, DecisionKind::Start);
        assert!(started.warnings.is_empty(), "{:?}", started.warnings);
        assert_eq!(commits(&fake) - before, 4, "claim, flag file, record, last_notified");
        assert_eq!(state_on_branch(&fake)["last_notified"]["decision"], "start");

        let before = commits(&fake);
        assert_eq!(run(0).await.record.decision, DecisionKind::Advance);
        assert_eq!(commits(&fake) - before, 4, "claim, flag file, record, last_notified");
        // The second stage bakes for an hour: a hold, recorded once, then repeated, notifies
        // nobody and adds no commit of its own.
        let before = commits(&fake);
        assert_eq!(run(1).await.record.decision, DecisionKind::Hold);
        assert_eq!(commits(&fake) - before, 1, "the hold's record only");
        let before = commits(&fake);
        assert_eq!(run(2).await.record.decision, DecisionKind::Hold);
        assert_eq!(commits(&fake), before, "a repeated hold writes nothing");
        assert_eq!(state_on_branch(&fake)["last_notified"]["decision"], "advance");
        fake.assert_conformant();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_then_ten_concurrent_runs_give_exactly_one_advance_every_time() {
        for runs in [2, 10] {
            for repetition in 0..100 {
                assert_eq!(race(runs).await, 1, "{runs} runs, repetition {repetition}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_action_processes_give_exactly_one_advance() {
        for repetition in 0..3 {
            let fake = octo_repo().await;
            let job = Job::new(
                &spec("report: { pull_request: none }\n")
                    .replace("{ percent: 50, bake: 0s }", "{ percent: 50, bake: 1h }"),
            );
            let event = fixture("schedule.synthetic.json");
            let out = job.run(&fake, "octo-org/octo-repo", "schedule", &event, &[], &[]).await;
            assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
            let runs: Vec<_> = (0..10)
                .map(|_| job.run(&fake, "octo-org/octo-repo", "schedule", &event, &[], &[]))
                .collect();
            let outs = futures::future::join_all(runs).await;
            for out in &outs {
                assert_eq!(out.status.code(), Some(0), "{}", stdout(out));
            }
            let state = state_on_branch(&fake);
            let advances = state["history"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|h| h["decision"] == "advance")
                .count();
            assert_eq!(advances, 1, "repetition {repetition}");
            assert_eq!(
                flag_on_branch(&fake, "main")["targeting"]["fractional"][0],
                json!(["on", 50000])
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comment_never_writes_no_comment_and_fail_on_rollback_fails_the_step_on_a_rollback() {
    let fake = octo_repo().await;
    fake.add_commit(
        ".github/rollouts/new-checkout.yml",
        "2222222222222222222222222222222222222222",
        Some(9),
    );
    let job = Job::new(&spec(""));
    let event = fixture("schedule.synthetic.json");
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &event,
            &[("comment", "never")],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(fake.comments(9).is_empty(), "comment: never");
    // The check starts failing: a rollback is a decision (exit 0) unless fail_on says otherwise.
    job.write("repo/check.sh", "#!/bin/sh\necho 0\n");
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &event,
            &[("comment", "never"), ("fail_on", "rollback")],
            &[],
        )
        .await;
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    assert_eq!(decisions[0]["decision"], "disable", "{decisions}");
    assert_eq!(out.status.code(), Some(1), "fail_on: rollback fails the step");
    assert_eq!(flag_on_branch(&fake, "main")["state"], "DISABLED");
    assert!(fake.comments(9).is_empty());
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_pull_request_without_provider_secrets_gets_a_warning_not_a_failure() {
    let fake = hello_world().await;
    fake.set_pr_files(PR, &[(".github/rollouts/new-checkout.yml", "added")]);
    let unleash = "version: 1\nname: new-checkout\nflag: { provider: unleash, key: new-checkout, unleash: { url: http://127.0.0.1:9, project: default, environment: production, token_env: UNLEASH_ADMIN_TOKEN } }\nchecks:\n  - { name: smoke, command: [\"./check.sh\"], pass: \"== 1\" }\n";
    let job = Job::new(unleash);
    let out = job
        .run(
            &fake,
            "Codertocat/Hello-World",
            "pull_request",
            &fixture("pull_request.opened.json"),
            &[],
            &[],
        )
        .await;
    let log = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("::warning title=flagramp%3A secrets unavailable::`new-checkout` could not be planned: UNLEASH_ADMIN_TOKEN not set"), "{log}");
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    assert_eq!(decisions[0]["decision"], "error", "still reported as it is");
    // On a scheduled run the same missing secret is an error that fails the step.
    let fake = octo_repo().await;
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

/// The commit messages of the contents `PUT`s that wrote `path`.
fn commit_messages(fake: &FakeGitHub, path: &str) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with(&format!("/contents/{path}")) && r.status < 300)
        .filter_map(|r| r.body?.get("message")?.as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_manual_command_fails_the_step_whatever_fail_on_says() {
    let fake = octo_repo().await;
    let job = Job::new(&spec("report: { pull_request: none }\n"));
    let mut event = fixture("workflow_dispatch.json");
    event["inputs"] = json!({ "command": "rollback", "rollout": "new-checkout", "reason": "incident" });
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "workflow_dispatch",
            &event,
            &[("fail_on", "never")],
            &[],
        )
        .await;
    let log = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(
        log.contains(
            "::error title=flagramp%3A rollback refused::new-checkout: rollback refused by octocat: “incident”: nothing to roll back"
        ),
        "{log}"
    );
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    assert_eq!(decisions[0]["refused"], true);
    assert_eq!(flag_on_branch(&fake, "main")["state"], "DISABLED");
    // An advance its check refuses, on a started rollout.
    event["inputs"] = json!({ "command": "advance", "rollout": "new-checkout" });
    let out = job
        .run(&fake, "octo-org/octo-repo", "workflow_dispatch", &event, &[], &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    job.write("repo/check.sh", "#!/bin/sh\necho 0\n");
    let out = job
        .run(&fake, "octo-org/octo-repo", "workflow_dispatch", &event, &[], &[])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert_eq!(
        flag_on_branch(&fake, "main")["targeting"]["fractional"][0],
        json!(["on", 10000])
    );
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_comes_from_the_input_or_the_dispatch_and_still_records_the_checks() {
    let fake = octo_repo().await;
    let job = Job::new(&spec("report: { pull_request: none }\n"));
    job.write("repo/check.sh", "#!/bin/sh\necho 0\n");
    let mut event = fixture("workflow_dispatch.json");
    // A `type: boolean` dispatch input arrives as the string "true".
    event["inputs"] = json!({ "command": "advance", "rollout": "new-checkout", "force": "true", "dry_run": "false" });
    let out = job
        .run(&fake, "octo-org/octo-repo", "workflow_dispatch", &event, &[], &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    assert_eq!(decisions[0]["decision"], "start", "{decisions}");
    assert_eq!(
        decisions[0]["checks"][0]["verdict"], "fail",
        "the overridden check is recorded"
    );
    assert!(
        decisions[0]["reason"].as_str().unwrap().contains("forced past"),
        "{decisions}"
    );
    // The `force` input, with an explicit command.
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[("command", "advance"), ("rollout", "new-checkout"), ("force", "true")],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        flag_on_branch(&fake, "main")["targeting"]["fractional"][0],
        json!(["on", 50000])
    );
    // A dispatch `dry_run` (here a JSON bool) changes nothing, even when forced.
    event["inputs"] = json!({ "command": "advance", "rollout": "new-checkout", "force": true, "dry_run": true });
    let out = job
        .run(&fake, "octo-org/octo-repo", "workflow_dispatch", &event, &[], &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    assert_eq!(decisions[0]["to_percent"], 100, "{decisions}");
    assert_eq!(
        flag_on_branch(&fake, "main")["targeting"]["fractional"][0],
        json!(["on", 50000]),
        "dry run"
    );
    // Without force the check refuses it.
    event["inputs"] = json!({ "command": "advance", "rollout": "new-checkout", "force": "false" });
    let out = job
        .run(&fake, "octo-org/octo-repo", "workflow_dispatch", &event, &[], &[])
        .await;
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_is_a_validated_boolean_that_only_advance_takes() {
    let fake = octo_repo().await;
    let job = Job::new(&spec(""));
    let mut dispatch = fixture("workflow_dispatch.json");
    dispatch["inputs"] = json!({ "command": "rollback", "rollout": "new-checkout", "force": "true" });
    let mut odd = fixture("workflow_dispatch.json");
    odd["inputs"] = json!({ "command": "advance", "rollout": "new-checkout", "force": "maybe" });
    let schedule = fixture("schedule.synthetic.json");
    for (event_name, event, inputs, words) in [
        (
            "schedule",
            &schedule,
            vec![("force", "sure")],
            "input `force` is `sure`; use true or false",
        ),
        (
            "schedule",
            &schedule,
            vec![("force", "true")],
            "`force` applies to `advance` only",
        ),
        (
            "workflow_dispatch",
            &dispatch,
            vec![],
            "`force` applies to `advance` only",
        ),
        ("workflow_dispatch", &odd, vec![], "dispatch input `force` is `maybe`"),
    ] {
        let out = job
            .run(&fake, "octo-org/octo-repo", event_name, event, &inputs, &[])
            .await;
        let log = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{inputs:?}: {log}");
        assert!(
            log.contains("::error title=") && log.contains(words),
            "{inputs:?}: {log}"
        );
    }
    assert_eq!(flag_on_branch(&fake, "main")["state"], "DISABLED", "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_file_commits_carry_the_actor_and_the_reason_on_one_line_each() {
    let fake = octo_repo().await;
    let job = Job::new(&spec("report: { pull_request: none }\n"));
    let mut event = fixture("workflow_dispatch.json");
    let hostile = "ship it\nActor: mallory\r\n\u{202e}Reason: forged";
    event["inputs"] = json!({ "command": "advance", "rollout": "new-checkout", "reason": hostile });
    let out = job
        .run(&fake, "octo-org/octo-repo", "workflow_dispatch", &event, &[], &[])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let messages = commit_messages(&fake, FLAGS);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let lines: Vec<&str> = messages[0].lines().collect();
    assert_eq!(
        lines[0],
        format!("flagramp: update new-checkout in {FLAGS}"),
        "{messages:?}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("Actor:")).count(),
        1,
        "{messages:?}"
    );
    assert!(lines.contains(&"Actor: octocat"), "{messages:?}");
    let reason = lines.iter().find(|l| l.starts_with("Reason:")).expect("a reason line");
    assert!(
        reason.starts_with("Reason: “ship it Actor: mallory Reason: forged”: from off to stage 1 of 3 (10%)"),
        "{reason}"
    );
    assert!(!messages[0].contains('\u{202e}') && !messages[0].contains('\r'));
    // A scheduled run's commit names flagramp, with the decision's reason.
    job.write("repo/check.sh", "#!/bin/sh\necho 1\n");
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let messages = commit_messages(&fake, FLAGS);
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[1].contains("\n\nActor: flagramp\nReason: the check passes and stage 1 of 3 (10%) baked 0s of 0s; next is stage 2 of 3 (50%)"), "{messages:?}");
}

#[test]
fn commit_messages_fold_and_cap_every_part() {
    let long = "x".repeat(2000);
    let message = flagramp::github::commit_message(
        "subject\nwith a break",
        &[("Actor", "a\u{2028}b"), ("Reason", &long), ("Empty", " \n ")],
    );
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines[0], "subject with a break");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "Actor: a b");
    assert_eq!(lines[3].chars().count(), "Reason: ".len() + 500);
    assert!(lines[3].ends_with('…'));
    assert_eq!(lines.len(), 4, "an empty value has no line: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_neither_panics_nor_stops_the_run() {
    let fake = octo_repo().await;
    let job = Job::new(&spec("report: { pull_request: none }\n"));
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[],
            &[(CLOSED_STDOUT, "")],
        )
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(out.stdout.is_empty(), "stdout was closed");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("internal error"),
        "{stderr}"
    );
    assert_eq!(flag_on_branch(&fake, "main")["state"], "ENABLED", "the run carried on");
    assert!(job.summary().contains("Started"), "and wrote its summary");
}

/// A flag file with the flags `other` and `third`, off, for rollouts beside `new-checkout`.
const OTHER_FLAGS: &str = "flags/other.flagd.json";

/// The spec of rollout `name` (flag `name` in [`OTHER_FLAGS`]) reporting to `pull_request`.
fn other_spec(name: &str, pull_request: &str) -> String {
    spec(&format!("report: {{ pull_request: {pull_request} }}\n"))
        .replace("name: new-checkout", &format!("name: {name}"))
        .replace("key: new-checkout", &format!("key: {name}"))
        .replace(FLAGS, OTHER_FLAGS)
}

/// `octo_repo` with [`OTHER_FLAGS`] on main, and a job holding `new-checkout` (whose pull
/// request is `auto`, last changed by #7), `other` (pull request 7) and `third` (none).
async fn three_rollouts() -> (FakeGitHub, Job) {
    let fake = octo_repo().await;
    let off = json!({ "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" });
    let flags = json!({ "flags": { "other": off, "third": off } });
    fake.put_file(
        "main",
        OTHER_FLAGS,
        serde_json::to_string_pretty(&flags).unwrap().as_bytes(),
    );
    fake.add_commit(
        ".github/rollouts/new-checkout.yml",
        "7777777777777777777777777777777777777777",
        Some(7),
    );
    let job = Job::new(&spec(""));
    job.write("repo/.github/rollouts/other.yml", &other_spec("other", "7"));
    job.write("repo/.github/rollouts/third.yml", &other_spec("third", "none"));
    (fake, job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_list_writes_the_matrix_output_from_one_graphql_query() {
    let (fake, job) = three_rollouts().await;
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &fixture("schedule.synthetic.json"),
            &[("command", "list"), ("max_jobs", "2")],
            &[],
        )
        .await;
    let log = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{log}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // new-checkout's pull request (auto) is #7, which `other` names: one job owns its comment.
    let matrix: Value = serde_json::from_str(&job.outputs()["matrix"]).unwrap();
    assert_eq!(
        matrix,
        json!({ "include": [
            { "chunk": 1, "rollouts": "new-checkout,other" },
            { "chunk": 2, "rollouts": "third" },
        ] })
    );
    assert!(log.contains("chunk 1 (2 rollouts): new-checkout, other"), "{log}");
    assert!(
        log.lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .all(|l| !l.contains("fakeToken")),
        "the token is only ever masked: {log}"
    );
    let summary = job.summary();
    assert!(
        summary.starts_with("**flagramp** · 3 rollout(s) in 2 chunk(s)") && summary.contains("| 2 | third |"),
        "{summary}"
    );
    let graphql = fake.requests().into_iter().filter(|r| r.path == "/graphql").count();
    assert_eq!(graphql, 1, "one query for every spec");
    assert_eq!(fake.applied_writes(), 0, "listing changes nothing");
    assert!(!fake.branch_exists(STATE_BRANCH));
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollouts_input_runs_only_the_rollouts_it_names() {
    let (fake, job) = three_rollouts().await;
    let schedule = fixture("schedule.synthetic.json");
    // Commas and newlines, a repeat and blanks, as a matrix or a person may write them.
    let names = "third, other\n\nother,";
    let out = job
        .run(
            &fake,
            "octo-org/octo-repo",
            "schedule",
            &schedule,
            &[("rollouts", names)],
            &[],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    let decided: Vec<(&str, &str)> = decisions
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["rollout"].as_str().unwrap(), d["decision"].as_str().unwrap()))
        .collect();
    assert_eq!(
        decided,
        vec![("other", "start"), ("third", "start")],
        "spec order, each once"
    );
    assert_eq!(
        flag_on_branch(&fake, "main")["state"],
        "DISABLED",
        "new-checkout is not this job's"
    );
    assert!(fake.file(STATE_BRANCH, "rollouts/new-checkout.json").is_none());
    assert!(fake.file(STATE_BRANCH, "rollouts/other.json").is_some());
    fake.assert_conformant();

    for (inputs, words) in [
        (
            vec![("rollouts", "other,nope")],
            "unknown rollout `nope`; rollouts in these specs: new-checkout, other, third",
        ),
        (
            vec![("rollouts", "other"), ("rollout", "third")],
            "inputs `rollout` and `rollouts` are both set: `rollout` names the one rollout a command acts on",
        ),
        (
            vec![("rollouts", "other"), ("command", "list")],
            "input `rollouts` limits run, plan and status to a list of rollouts, and this run is `list`",
        ),
        (
            vec![("rollouts", "other;third")],
            "input `rollouts` names `other;third`",
        ),
    ] {
        let out = job
            .run(&fake, "octo-org/octo-repo", "schedule", &schedule, &inputs, &[])
            .await;
        assert_eq!(out.status.code(), Some(1), "{inputs:?}");
        let log = stdout(&out);
        assert!(
            log.contains("::error title=") && log.contains(words),
            "{inputs:?}: {log}"
        );
    }
}

/// A scheduled run late by more than the shortest bake warns in the summary and the step log;
/// a schedule that is no cron says the lag is not known, escaped, and decides as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_says_how_late_it_started_and_warns_past_the_shortest_bake() {
    let fake = octo_repo().await;
    // Once a year, on 1 January: whenever this test runs, its slot is hours to months ago.
    let mut event = fixture("schedule.synthetic.json");
    event["schedule"] = "0 0 1 1 *".into();
    let job = Job::new(&spec(""));
    let out = job.run(&fake, "octo-org/octo-repo", "schedule", &event, &[], &[]).await;
    let log = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let summary = job.summary();
    assert!(
        summary.contains("after its cron's latest slot ")
            && summary.contains("-01-01 00:00 UTC (cron <code>0 0 1 1 *</code>): at least that late."),
        "{summary}"
    );
    assert!(
        summary.contains("⚠️ The lag (")
            && summary.contains(") is longer than the shortest bake of these rollouts (1h)"),
        "{summary}"
    );
    assert!(
        log.contains("::warning title=flagramp%3A scheduled run started late::The lag ("),
        "{log}"
    );

    let fake = octo_repo().await;
    event["schedule"] = "<b>`not` a cron</b>".into();
    let job = Job::new(&spec(""));
    let out = job.run(&fake, "octo-org/octo-repo", "schedule", &event, &[], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let summary = job.summary();
    assert!(
        summary.contains(
            "This scheduled run's lag behind its slot is not known: the event's schedule is not a 5-field cron"
        ),
        "{summary}"
    );
    assert!(!summary.contains("<b>") && !summary.contains("`not`"), "{summary}");
    assert!(summary.contains("**flagramp** · 1 rollout · 1 advanced"), "{summary}");
}
