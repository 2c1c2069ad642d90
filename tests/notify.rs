//! Notifications (docs/rules.md §5), against wiremock: sent once per change and never for a
//! repeated hold, signed so a receiver can verify the body, free of secrets, and never able to
//! change a decision. Each test runs the real runner and `app::run_with` over local state in a
//! temporary repository, on a clock of its own.

use std::path::Path;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use flagramp::app::{self, Operation, Outcome, Place, RunRequest};
use flagramp::engine::ManualOp;
use flagramp::record::{DecisionKind, DecisionRecord};
use flagramp::runner::Decided;
use flagramp::spec::parse_spec;

use crate::support::bench::{at_minute, lock_state, runner};
use crate::support::repo::TempRepo;

const RUN_URL: &str = "https://github.com/octo/shop/actions/runs/42";

/// A repository with one flag per spec (off) in `flags.json`, a check that passes, and one
/// spec per `(name, notify block)` in `.github/rollouts`, each ramping the flag of its name.
fn repo(specs: &[(&str, &str)]) -> TempRepo {
    let repo = TempRepo::new();
    let names: Vec<&str> = specs.iter().map(|(name, _)| *name).collect();
    repo.write("flags.json", &flags_off(&names));
    repo.script("check.sh", "echo 1");
    for (name, notify) in specs {
        repo.write(&format!(".github/rollouts/{name}.yml"), &spec_text(name, notify));
    }
    repo
}

/// A flagd file with each flag off.
fn flags_off(names: &[&str]) -> String {
    let flags: serde_json::Map<String, Value> = names
        .iter()
        .map(|name| {
            let flag = serde_json::json!({ "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" });
            (name.to_string(), flag)
        })
        .collect();
    serde_json::json!({ "flags": flags }).to_string()
}

fn spec_text(name: &str, notify: &str) -> String {
    format!(
        "version: 1\nname: {name}\nflag: {{ provider: flagd, key: {name}, flagd: {{ path: flags.json }} }}\nstages: [10, 50, 100]\nchecks:\n  - {{ name: ok, command: [\"./check.sh\"], pass: \"== 1\" }}\n{notify}"
    )
}

/// A `notify:` block posting `events` to `url`, signed with the key in `secret_env`.
fn webhook_block(events: &str, url: &str, secret_env: &str) -> String {
    format!("notify:\n  events: {events}\n  to:\n    - webhook: {{ url: \"{url}\", secret_env: {secret_env} }}\n")
}

/// Sets a variable only this test reads (each test names its own).
fn set_secret(var: &str, value: &str) {
    std::env::set_var(var, value);
}

/// One run of `operation` at `minute` on the bench clock, as `app` carries it out for both
/// front ends; returns what it decided, warnings included.
async fn run_op(repo: &TempRepo, minute: i64, operation: Operation, reason: &str) -> Vec<Decided> {
    let root = repo.root();
    let specs = app::load_specs_in(&[root.join(".github/rollouts")], root).expect("specs load");
    let store = lock_state(&repo.state_dir()).await;
    let runner = runner(root, root, at_minute(minute), Box::new(store));
    let request = RunRequest {
        operation,
        rollout: None,
        spec_paths: Vec::new(),
        now: Some(at_minute(minute)),
        actor: "octocat".into(),
        reason: reason.into(),
        dry_run: false,
        repo_root: root.to_path_buf(),
        place: Place::Local {
            state_dir: repo.state_dir(),
            lock_wait: std::time::Duration::from_secs(5),
        },
        budget: None,
        include_orphans: false,
        concurrency: 4,
        run_url: Some(RUN_URL.into()),
        progress: None,
    };
    match app::run_with(&runner, &request, &specs).await.expect("run") {
        Outcome::Decided(decided) => decided,
        other => panic!("a run decides: {other:?}"),
    }
}

async fn run(repo: &TempRepo, minute: i64) -> Vec<Decided> {
    run_op(repo, minute, Operation::Run, "").await
}

async fn hook(server: &MockServer, at: &str, status: u16, expect: u64) {
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(status))
        .expect(expect)
        .named(format!("POST {at}"))
        .mount(server)
        .await;
}

fn header<'r>(request: &'r Request, name: &str) -> &'r str {
    request
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn events_received(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| header(r, "x-flagramp-event").to_string())
        .collect()
}

fn state_of(repo: &TempRepo, rollout: &str) -> Value {
    repo.read_json(&format!(".flagramp/state/{rollout}.json"))
}

fn state_bytes(repo: &TempRepo, rollout: &str) -> Vec<u8> {
    std::fs::read(repo.state_dir().join(format!("{rollout}.json"))).unwrap()
}

#[tokio::test]
async fn sent_once_per_change_never_for_repeated_holds() {
    let server = MockServer::start().await;
    hook(&server, "/hook", 200, 2).await;
    set_secret("NOTIFY_T1_SECRET", "t1-hook-key-0123456789");
    let block = webhook_block(
        "[start, advance, rollback]",
        &format!("{}/hook", server.uri()),
        "NOTIFY_T1_SECRET",
    );
    let repo = repo(&[("checkout", &block)]);

    let started = run(&repo, 0).await;
    assert_eq!(started[0].record.decision, DecisionKind::Start);
    assert!(started[0].warnings.is_empty(), "{:?}", started[0].warnings);
    let recorded = state_of(&repo, "checkout");
    assert_eq!(recorded["last_notified"]["decision"], "start");

    // Holds while the stage bakes: the first is recorded, the repeats write nothing at all.
    assert_eq!(run(&repo, 10).await[0].record.decision, DecisionKind::Hold);
    let before_repeat = state_bytes(&repo, "checkout");
    let repeated = run(&repo, 20).await;
    assert_eq!(repeated[0].record.decision, DecisionKind::Hold);
    assert!(repeated[0].record.unchanged_since.is_some(), "a repeated hold");
    assert_eq!(
        state_bytes(&repo, "checkout"),
        before_repeat,
        "a repeated hold writes nothing"
    );

    let advanced = run(&repo, 61).await;
    assert_eq!(advanced[0].record.decision, DecisionKind::Advance);
    assert_eq!(
        events_received(&server.received_requests().await.unwrap()),
        ["start", "advance"]
    );
    assert_eq!(state_of(&repo, "checkout")["last_notified"]["decision"], "advance");
}

#[tokio::test]
async fn the_signature_verifies_from_the_body_and_the_secret() {
    let server = MockServer::start().await;
    hook(&server, "/signed", 200, 1).await;
    let key = "t2-hook-key-abcdefghij";
    set_secret("NOTIFY_T2_SECRET", key);
    let block = webhook_block("[start]", &format!("{}/signed", server.uri()), "NOTIFY_T2_SECRET");
    let repo = repo(&[("signed", &block)]);

    let decided = run(&repo, 0).await;
    let requests = server.received_requests().await.unwrap();
    let request = &requests[0];
    // As a receiver checks it: HMAC-SHA256 of the raw body with the shared key, hex, `sha256=`.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(&request.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(header(request, "x-flagramp-signature-256"), expected);
    assert_eq!(header(request, "x-flagramp-event"), "start");
    assert_eq!(header(request, "content-type"), "application/json");
    // The body is the decision record, as every JSON output has it.
    let body: DecisionRecord = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, decided[0].record);
    // Any other key, or a changed body, does not verify.
    let mut other = Hmac::<Sha256>::new_from_slice(b"another key").unwrap();
    other.update(&request.body);
    assert_ne!(
        format!("sha256={}", hex::encode(other.finalize().into_bytes())),
        expected
    );
    assert_eq!(flagramp::notify::signature(key.as_bytes(), &request.body), expected);
    assert_ne!(flagramp::notify::signature(key.as_bytes(), b"{}"), expected);
}

#[tokio::test]
async fn secrets_never_appear_in_the_body() {
    let server = MockServer::start().await;
    hook(&server, "/hook", 200, 1).await;
    let slack_path = "/services/T000/B000/t3slackwebhooktoken";
    hook(&server, slack_path, 200, 1).await;
    let key = "t3-hook-key-klmnopqrst";
    set_secret("NOTIFY_T3_SECRET", key);
    let slack_url = format!("{}{slack_path}", server.uri());
    set_secret("NOTIFY_T3_SLACK", &slack_url);
    let block = format!(
        "notify:\n  events: [disable]\n  to:\n    - webhook: {{ url: \"{}/hook\", secret_env: NOTIFY_T3_SECRET }}\n    - slack: {{ webhook_env: NOTIFY_T3_SLACK }}\n",
        server.uri()
    );
    let repo = repo(&[("secretive", &block)]);
    run(&repo, 0).await;

    // A person's reason is text from outside: here it carries both secrets and a Slack ping.
    let reason = format!("<!channel> key {key} and {slack_url}");
    let decided = run_op(&repo, 5, Operation::Manual(ManualOp::Rollback), &reason).await;
    assert_eq!(decided[0].record.decision, DecisionKind::Disable);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "one webhook, one Slack message");
    for request in &requests {
        let body = String::from_utf8(request.body.clone()).unwrap();
        assert!(!body.contains(key), "the key in {body}");
        assert!(!body.contains("t3slackwebhooktoken"), "the Slack URL in {body}");
        assert!(body.contains("***"), "redacted where it was: {body}");
    }
    let slack = requests.iter().find(|r| r.url.path() == slack_path).unwrap();
    let text = serde_json::from_slice::<Value>(&slack.body).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("*secretive*"), "{text}");
    assert!(text.contains("turned off, 10% → 0%"), "{text}");
    assert!(text.contains("&lt;!channel&gt;"), "no ping: {text}");
    assert!(!text.contains("<!channel>"), "no ping: {text}");
    assert!(text.ends_with(&format!("<{RUN_URL}|the run>")), "{text}");
    assert!(slack.headers.get("x-flagramp-signature-256").is_none());
}

#[tokio::test]
async fn a_500_from_the_hook_leaves_the_decision_as_it_was_and_warns() {
    let server = MockServer::start().await;
    hook(&server, "/down", 500, 1).await;
    set_secret("NOTIFY_T4_SECRET", "t4-hook-key-uvwxyz0123");
    let block = webhook_block("[start]", &format!("{}/down", server.uri()), "NOTIFY_T4_SECRET");
    let repo = repo(&[("unheard", &block), ("quiet", "")]);

    let decided = run(&repo, 0).await;
    let of = |name: &str| decided.iter().find(|d| d.record.rollout == name).unwrap();
    let (unheard, quiet) = (of("unheard"), of("quiet"));
    assert_eq!(unheard.record.decision, DecisionKind::Start);
    assert!(unheard.changed_state);
    assert_eq!(unheard.record.to_percent, crate::support::pct(10));
    assert_eq!(unheard.warnings.len(), 1, "{:?}", unheard.warnings);
    assert!(unheard.warnings[0].contains("HTTP 500"), "{:?}", unheard.warnings);
    assert!(unheard.warnings[0].contains("the decision stands"));
    // The same decision as a rollout that notifies nobody, and the flag and state as it says.
    assert_eq!(quiet.record.decision, DecisionKind::Start);
    assert_eq!(quiet.record.to_percent, unheard.record.to_percent);
    assert!(quiet.warnings.is_empty());
    let state = state_of(&repo, "unheard");
    assert_eq!(state["history"].as_array().unwrap().len(), 1);
    assert!(state.get("last_notified").is_none(), "nothing was sent: {state}");
    let flags = repo.read_json("flags.json");
    assert_eq!(flags["flags"]["unheard"]["state"], "ENABLED");
}

/// A rollout is notified only when every place it names took the notification: an error
/// that reached one hook but not the other is not recorded, so the next run sends it again
/// rather than keeping it from the failed hook for a day.
#[tokio::test]
async fn a_notification_one_hook_refused_is_sent_again_by_the_next_run() {
    let server = MockServer::start().await;
    hook(&server, "/ok", 200, 2).await;
    hook(&server, "/down", 500, 2).await;
    set_secret("NOTIFY_T13_SECRET", "t13-hook-key-0123456789");
    let block = format!(
        "notify:\n  events: [error]\n  to:\n    - webhook: {{ url: \"{0}/ok\", secret_env: NOTIFY_T13_SECRET }}\n    - webhook: {{ url: \"{0}/down\", secret_env: NOTIFY_T13_SECRET }}\n",
        server.uri()
    );
    let repo = repo(&[("halfheard", &block)]);
    repo.write("flags.json", "{ not json");

    let first = run(&repo, 0).await;
    assert_eq!(first[0].record.decision, DecisionKind::Error);
    assert_eq!(first[0].warnings.len(), 1, "{:?}", first[0].warnings);
    let state = repo.state_dir().join("halfheard.json");
    assert!(
        !state.exists() || state_of(&repo, "halfheard").get("last_notified").is_none(),
        "one hook did not get it: nothing is recorded"
    );
    assert_eq!(run(&repo, 30).await[0].record.decision, DecisionKind::Error);
    // `expect(2)` on both hooks: the second run sent the unchanged error again.
}

/// A change whose notification failed is owed: the next run, which changes nothing, sends it
/// (and records it), and the run after sends nothing more.
#[tokio::test]
async fn a_change_whose_notification_failed_is_sent_by_the_next_run() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/flaky"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .named("POST /flaky refused once")
        .mount(&server)
        .await;
    hook(&server, "/flaky", 200, 1).await;
    set_secret("NOTIFY_T15_SECRET", "t15-hook-key-0123456789");
    let block = webhook_block("[start]", &format!("{}/flaky", server.uri()), "NOTIFY_T15_SECRET");
    let repo = repo(&[("owed", &block)]);

    let first = run(&repo, 0).await;
    assert_eq!(first[0].record.decision, DecisionKind::Start);
    assert_eq!(first[0].warnings.len(), 1, "{:?}", first[0].warnings);
    assert!(state_of(&repo, "owed").get("last_notified").is_none());
    // The next run holds (the stage bakes an hour) and owes the start: it sends it now.
    let second = run(&repo, 5).await;
    assert_ne!(second[0].record.decision, DecisionKind::Start);
    assert!(second[0].warnings.is_empty(), "{:?}", second[0].warnings);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(events_received(&requests), ["start", "start"]);
    let body: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(
        body["at"],
        first[0].record.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(state_of(&repo, "owed")["last_notified"]["decision"], "start");
    // Paid: nothing more.
    run(&repo, 10).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

/// A refusing hook's answer is redacted before a warning quotes a part of it, so a secret the
/// answer echoes near the cut leaves no prefix behind.
#[tokio::test]
async fn a_refusing_hooks_answer_is_redacted_before_it_is_cut() {
    let server = MockServer::start().await;
    let secret = "t14-hook-key-abcdefghijklmnop";
    Mock::given(method("POST"))
        .and(path("/echo"))
        .respond_with(ResponseTemplate::new(500).set_body_string(format!("{}{secret}", "x".repeat(190))))
        .expect(1)
        .mount(&server)
        .await;
    set_secret("NOTIFY_T14_SECRET", secret);
    let block = webhook_block("[start]", &format!("{}/echo", server.uri()), "NOTIFY_T14_SECRET");
    let repo = repo(&[("echoed", &block)]);
    let decided = run(&repo, 0).await;
    let warning = decided[0].warnings.join("\n");
    assert!(warning.contains("HTTP 500"), "{warning}");
    assert!(
        !warning.contains(&secret[..8]),
        "a prefix of the key is left: {warning}"
    );
}

#[tokio::test]
async fn an_unchanged_error_is_sent_again_only_after_24_hours() {
    let server = MockServer::start().await;
    hook(&server, "/errors", 200, 2).await;
    set_secret("NOTIFY_T5_SECRET", "t5-hook-key-0123456789");
    let block = webhook_block("[error]", &format!("{}/errors", server.uri()), "NOTIFY_T5_SECRET");
    let repo = repo(&[("broken", &block)]);
    // The flag file cannot be read: every run is `error`, for the same reason.
    repo.write("flags.json", "{ not json");

    for minute in [0, 30, 60 * 23] {
        assert_eq!(run(&repo, minute).await[0].record.decision, DecisionKind::Error);
    }
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "sent when it first appeared"
    );
    assert_eq!(run(&repo, 60 * 24).await[0].record.decision, DecisionKind::Error);
    assert_eq!(run(&repo, 60 * 24 + 30).await[0].record.decision, DecisionKind::Error);
    assert_eq!(
        events_received(&server.received_requests().await.unwrap()),
        ["error", "error"],
        "once more after 24 h, then not again"
    );
}

#[tokio::test]
async fn drift_is_sent_when_it_first_appears_and_events_filter() {
    let server = MockServer::start().await;
    hook(&server, "/drift", 200, 1).await;
    set_secret("NOTIFY_T6_SECRET", "t6-hook-key-0123456789");
    // Only drift: the start is not one of its events.
    let block = webhook_block("[drift]", &format!("{}/drift", server.uri()), "NOTIFY_T6_SECRET");
    let repo = repo(&[("watched", &block)]);
    assert_eq!(run(&repo, 0).await[0].record.decision, DecisionKind::Start);
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "start is filtered out"
    );

    // A person turns the flag off by hand.
    repo.write("flags.json", &flags_off(&["watched"]));
    assert_eq!(run(&repo, 10).await[0].record.decision, DecisionKind::Drift);
    assert_eq!(run(&repo, 20).await[0].record.decision, DecisionKind::Drift);
    assert_eq!(events_received(&server.received_requests().await.unwrap()), ["drift"]);
}

#[tokio::test]
async fn the_repository_default_applies_and_a_spec_replaces_it() {
    let server = MockServer::start().await;
    hook(&server, "/default", 200, 1).await;
    hook(&server, "/own", 200, 1).await;
    set_secret("NOTIFY_T7_SECRET", "t7-hook-key-0123456789");
    let own = webhook_block("[start]", &format!("{}/own", server.uri()), "NOTIFY_T7_SECRET");
    let repo = repo(&[("defaulted", ""), ("own", &own)]);
    repo.write(
        ".github/flagramp.yml",
        &webhook_block("[start]", &format!("{}/default", server.uri()), "NOTIFY_T7_SECRET"),
    );

    run(&repo, 0).await;
    let requests = server.received_requests().await.unwrap();
    let rollout_at = |at: &str| {
        let request = requests.iter().find(|r| r.url.path() == at).unwrap();
        serde_json::from_slice::<Value>(&request.body).unwrap()["rollout"].clone()
    };
    assert_eq!(rollout_at("/default"), "defaulted");
    assert_eq!(rollout_at("/own"), "own");
}

#[tokio::test]
async fn the_default_events_leave_out_start_and_advance() {
    let server = MockServer::start().await;
    hook(&server, "/quiet", 200, 0).await;
    set_secret("NOTIFY_T8_SECRET", "t8-hook-key-0123456789");
    let block = format!(
        "notify:\n  to:\n    - webhook: {{ url: \"{}/quiet\", secret_env: NOTIFY_T8_SECRET }}\n",
        server.uri()
    );
    let repo = repo(&[("calm", &block)]);
    assert_eq!(run(&repo, 0).await[0].record.decision, DecisionKind::Start);
    assert_eq!(run(&repo, 61).await[0].record.decision, DecisionKind::Advance);
}

#[tokio::test]
async fn a_missing_secret_warns_and_changes_no_decision() {
    let server = MockServer::start().await;
    hook(&server, "/unsigned", 200, 0).await;
    let block = webhook_block("[start]", &format!("{}/unsigned", server.uri()), "NOTIFY_T9_NEVER_SET");
    let repo = repo(&[("keyless", &block)]);
    let decided = run(&repo, 0).await;
    assert_eq!(decided[0].record.decision, DecisionKind::Start);
    assert!(decided[0].changed_state);
    assert_eq!(decided[0].warnings.len(), 1, "{:?}", decided[0].warnings);
    let warning = &decided[0].warnings[0];
    assert!(
        warning.contains("NOTIFY_T9_NEVER_SET is not set") && warning.contains("webhook 127.0.0.1"),
        "{warning}"
    );
    assert!(state_of(&repo, "keyless").get("last_notified").is_none());
}

#[tokio::test]
async fn a_plan_notifies_nobody() {
    let server = MockServer::start().await;
    hook(&server, "/plan", 200, 0).await;
    set_secret("NOTIFY_T10_SECRET", "t10-hook-key-0123456789");
    let block = webhook_block("[start]", &format!("{}/plan", server.uri()), "NOTIFY_T10_SECRET");
    let repo = repo(&[("planned", &block)]);
    let decided = run_op(&repo, 0, Operation::Plan, "").await;
    assert_eq!(decided[0].record.decision, DecisionKind::Start);
    assert!(decided[0].record.planned);
}

fn problems(file: &str, text: &str) -> Vec<String> {
    let (_, _, diags) = parse_spec(Path::new(file), text);
    diags.iter().map(|d| d.to_string()).collect()
}

#[test]
fn unknown_events_and_targets_are_positioned_errors() {
    let text = spec_text(
        "bad",
        "notify:\n  events: [rollback, hold, advanse]\n  to:\n    - email: { to: ops }\n    - webhook: { url: \"http://hooks.example.com/x\", secret_env: HOOK }\n    - slack: { webhook_env: \"https://hooks.slack.com/services/x\" }\n",
    );
    let found = problems("bad.yml", &text);
    let expect = [
        "bad.yml:8:22: error: `notify.events` cannot be `hold`",
        "bad.yml:8:28: error: `notify.events` cannot be `advanse`",
        "did you mean `advance`?",
        "bad.yml:10:7: error: unknown field `email` in `notify.to[]`",
        "bad.yml:11:23: error: `notify.to[].webhook.url` uses plain http",
        "hint: use https (plain http only to loopback",
        "bad.yml:12:29: error: `notify.to[].slack.webhook_env` must name an environment variable",
    ];
    let all = found.join("\n");
    for e in expect {
        assert!(all.contains(e), "{e:?} not in\n{all}");
    }
    assert_eq!(found.len(), 5, "one problem each:\n{all}");
}

#[test]
fn the_repository_default_is_validated_with_positions() {
    let file = Path::new(".github/flagramp.yml");
    let (config, diags) = flagramp::spec::parse_repo_config(
        file,
        "notify:\n  events: [start]\n  to: []\nreport: { pull_request: none }\n",
    );
    assert!(config.is_none());
    let all: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(
        all[0].starts_with(".github/flagramp.yml:4:1: error: unknown field `report` in `.github/flagramp.yml`"),
        "{all:?}"
    );
    let (config, diags) = flagramp::spec::parse_repo_config(file, "notify:\n  to: []\n");
    assert!(diags.is_empty(), "{diags:?}");
    let notify = config.unwrap().notify.unwrap();
    assert!(notify.to.is_empty());
    assert_eq!(
        notify.events.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        ["rollback", "disable", "complete", "drift", "error"]
    );
}

/// The CLI from end to end: the repository default found from the working directory, a hook
/// that answers 500, and the run still decides, prints its JSON and exits 0, with a warning on
/// stderr.
#[tokio::test]
async fn the_cli_warns_on_stderr_and_exits_as_decided() {
    let server = MockServer::start().await;
    hook(&server, "/cli", 500, 1).await;
    let repo = repo(&[("from-cli", "")]);
    repo.write(
        ".github/flagramp.yml",
        &webhook_block("[start]", &format!("{}/cli", server.uri()), "NOTIFY_T11_SECRET"),
    );
    let mut cmd = repo.flagramp_json(&["run", "--now", "2026-11-24T09:00:00Z"]);
    cmd.env("NOTIFY_T11_SECRET", "t11-hook-key-0123456789");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let record = crate::support::repo::single_record(&out, &["run"]);
    assert_eq!(record["decision"], "start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("flagramp: warning: from-cli: notification to webhook 127.0.0.1 not sent: answered HTTP 500"),
        "{stderr}"
    );
}

#[test]
fn validate_checks_the_repository_default_too() {
    let repo = repo(&[("fine", "")]);
    repo.write(".github/flagramp.yml", "notify:\n  events: [hold]\n  to: []\n");
    let out = repo.flagramp(&["validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(".github/flagramp.yml:2:12: error: `notify.events` cannot be `hold`"),
        "{stderr}"
    );
}

/// The job summary (and pull request comments) show a rollout's warnings beside its decision,
/// escaped like any text from outside.
#[test]
fn the_summary_shows_warnings_escaped() {
    let at = "2026-11-24T10:00:00Z".parse().unwrap();
    let record = DecisionRecord::bare(
        "checkout",
        "checkout",
        DecisionKind::Start,
        at,
        "flagramp",
        "started".into(),
    );
    let report = flagramp::report::RolloutReport {
        record,
        provider: "flagd file".into(),
        stages: vec![crate::support::pct(10), crate::support::pct(100)],
        history: Vec::new(),
        warnings: vec!["notification to webhook h not sent: answered HTTP 500: <b>@octocat</b>".into()],
    };
    let summary = flagramp::report::summary(&[report], &[], RUN_URL);
    assert!(
        summary.contains("> [!WARNING]\n> notification to webhook h not sent: answered HTTP 500: &lt;b&gt;@\u{200D}octocat&lt;/b&gt;"),
        "{summary}"
    );
}

/// A hook's URL is posted to as written: a trailing `/` is part of its path.
#[test]
fn a_webhook_url_is_kept_as_written() {
    let text = spec_text(
        "kept",
        "notify:\n  to:\n    - webhook: { url: \"https://hooks.example.com/rollouts/\", secret_env: HOOK }\n",
    );
    let (spec, _, diags) = parse_spec(Path::new("kept.yml"), &text);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(
        spec.unwrap().notify.unwrap().to,
        [flagramp::spec::NotifyTarget::Webhook {
            url: "https://hooks.example.com/rollouts/".into(),
            secret_env: "HOOK".into()
        }]
    );
}
