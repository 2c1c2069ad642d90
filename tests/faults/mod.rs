//! The fault matrix: every external dependency (Prometheus, command check, Unleash,
//! LaunchDarkly, GitHub, flagd file, state store) under every fault that fits it (refused, stall,
//! slow body, 429 with and without `Retry-After`, 500/502/503 with error-shaped and with
//! success-shaped bodies, malformed and truncated JSON, wrong content type, oversized answer,
//! 401/403, conflict). Table-driven; in every case:
//!
//! - the decision is `hold` or `error` with a reason that names the fault, never an advance and
//!   never a rollback (a control case per dependency shows the same setup does advance when the
//!   dependency is healthy, so a case cannot pass for want of a chance to advance);
//! - the flag is unchanged, and so is the state, except that a hold is recorded in its history;
//! - the text report carries the reason;
//! - the run takes no longer than the dependency's timeout (plus slack): retries and waits never
//!   run past it.
//!
//! Faults against the real Prometheus and Unleash are in [`live`], through a TCP proxy.

mod live;
pub mod server;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use flagramp::github::GitHub;
use flagramp::provider::FlagFiles;
use flagramp::record::DecisionKind;
use flagramp::runner::{Decided, Mode, Runner};
use flagramp::spec::RolloutSpec;
use flagramp::state::{GitHubStateStore, LocalStateStore, StateStore};

use crate::support::bench::runner as support_runner;
use crate::support::github::FakeGitHub;
use crate::support::launchdarkly::{FakeLaunchDarkly, ENVIRONMENT, PROJECT, TOKEN_ENV};
use crate::support::repo::TempRepo;
use server::{Fault, FaultServer};

/// When each rollout starts; the faulty run comes two hours later, past the first bake.
const T0: &str = "2026-11-24T09:00:00Z";
const FLAGS: &str = "flags/flags.flagd.json";
const STATE_BRANCH: &str = "flagramp-state";
/// The Unleash token the faulty servers are sent (they never check it).
const UNLEASH_TOKEN_ENV: &str = "FLAGRAMP_FAULTS_UNLEASH_TOKEN";
/// A check's timeout in the source tables.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// The providers' own timeout per request (`DEFAULT_TIMEOUT` of Unleash and LaunchDarkly).
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a run may take beyond the timeout it was given.
const SLACK: Duration = Duration::from_secs(3);

fn t0() -> DateTime<Utc> {
    T0.parse().unwrap()
}

fn later() -> DateTime<Utc> {
    t0() + chrono::Duration::hours(2)
}

fn export_unleash_token() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| std::env::set_var(UNLEASH_TOKEN_ENV, "*:*.faults-admin-token"));
}

fn flags_json(on: Option<u32>) -> String {
    let mut flag = json!({ "state": if on.is_some() { "ENABLED" } else { "DISABLED" }, "variants": { "on": true, "off": false }, "defaultVariant": "off" });
    if let Some(on) = on {
        flag["targeting"] = json!({ "fractional": [["on", on], ["off", 100_000 - on]] });
    }
    serde_json::to_string_pretty(&json!({ "flags": { "demo": flag } })).unwrap()
}

fn spec_text(flag: &str, rest: &str) -> String {
    format!("version: 1\nname: demo\nflag: {flag}\nstages: [{{ percent: 10, bake: 1h }}, 50, 100]\n{rest}")
}

fn flagd_block() -> String {
    format!("{{ provider: flagd, key: demo, flagd: {{ path: {FLAGS} }} }}")
}

fn parse(text: &str) -> RolloutSpec {
    let (spec, _, diags) = flagramp::spec::parse_spec(Path::new(".github/rollouts/demo.yml"), text);
    assert!(diags.is_empty(), "{diags:?}\n{text}");
    spec.unwrap()
}

fn prometheus_spec(url: &str) -> RolloutSpec {
    parse(&spec_text(
        &flagd_block(),
        &format!(
            "sources:\n  prom:\n    provider: prometheus\n    url: \"{url}\"\n    headers:\n      X-Scope-OrgID: tenant-1\nchecks:\n  - name: success-rate\n    source: prom\n    query: max(up)\n    pass: \">= 0.95\"\n    timeout: {}s\n",
            CHECK_TIMEOUT.as_secs()
        ),
    ))
}

fn command_spec(argv: &[&str]) -> RolloutSpec {
    let argv = serde_json::to_string(argv).unwrap();
    parse(&spec_text(
        &flagd_block(),
        &format!(
            "checks:\n  - {{ name: success-rate, command: {argv}, pass: \">= 0.95\", timeout: {}s }}\n",
            CHECK_TIMEOUT.as_secs()
        ),
    ))
}

/// A check that passes, for rollouts whose fault is elsewhere.
fn passing_check() -> &'static str {
    "checks:\n  - { name: success-rate, command: [\"echo\", \"0.99\"], pass: \">= 0.95\" }\n"
}

/// A repository in a temporary directory: spec, flagd file and local state.
struct Bench(TempRepo);

impl std::ops::Deref for Bench {
    type Target = TempRepo;

    fn deref(&self) -> &TempRepo {
        &self.0
    }
}

impl Bench {
    fn new(flag_on: Option<u32>) -> Bench {
        let bench = Bench(TempRepo::new());
        bench.write(FLAGS, flags_json(flag_on));
        bench
    }

    fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        self.write_bytes(rel, bytes.as_ref());
    }

    fn runner(&self, now: DateTime<Utc>) -> Runner {
        self.runner_with(
            now,
            Box::new(LocalStateStore::for_writing(&self.state_dir(), std::time::Duration::from_secs(10)).unwrap()),
        )
    }

    fn runner_with(&self, now: DateTime<Utc>, store: Box<dyn StateStore>) -> Runner {
        support_runner(self.root(), self.root(), now, store)
    }

    fn flag_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.root().join(FLAGS)).ok()
    }

    fn state_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.state_dir().join("demo.json")).ok()
    }
}

/// Where the flag and the state are, as the assertions see them.
#[derive(Debug, Clone, PartialEq)]
struct World {
    flag: Option<Vec<u8>>,
    state: Option<Vec<u8>>,
}

/// What one case produced.
struct Outcome {
    decided: Decided,
    before: World,
    after: World,
    elapsed: Duration,
}

/// One row of a table.
struct Case {
    fault: String,
    expect: Vec<String>,
    limit: Duration,
}

/// Checks one case's promises; `Err` says which one broke.
fn judge(dependency: &str, case: &Case, outcome: &Outcome) -> Result<(), String> {
    let record = &outcome.decided.record;
    let name = format!("{dependency} × {}", case.fault);
    if !matches!(record.decision, DecisionKind::Hold | DecisionKind::Error) {
        return Err(format!("{name}: decided {:?}: {}", record.decision, record.reason));
    }
    let mut text = record.reason.clone();
    for check in &record.checks {
        text.push('\n');
        text.push_str(check.detail.as_deref().unwrap_or_default());
    }
    for words in &case.expect {
        if !text.contains(words.as_str()) {
            return Err(format!("{name}: the reason does not say `{words}`:\n{text}"));
        }
    }
    if outcome.after.flag != outcome.before.flag {
        return Err(format!("{name}: the flag changed ({:?})", record.decision));
    }
    match record.decision {
        DecisionKind::Hold => {
            let state: Value = outcome
                .after
                .state
                .as_deref()
                .map(|b| serde_json::from_slice(b).unwrap())
                .ok_or_else(|| format!("{name}: a hold left no state"))?;
            let last = state["history"].as_array().and_then(|h| h.last()).cloned();
            if last.as_ref().and_then(|l| l["reason"].as_str()) != Some(record.reason.as_str()) {
                return Err(format!("{name}: the hold is not the last history entry: {last:?}"));
            }
            if state.get("pending").is_some_and(|p| !p.is_null()) {
                return Err(format!("{name}: a hold left a claim: {state}"));
            }
        }
        _ => {
            if outcome.after.state != outcome.before.state {
                return Err(format!("{name}: an error changed the state"));
            }
        }
    }
    let report = flagramp::report::text::decisions(std::slice::from_ref(record), flagramp::report::Target::Cli);
    if !report.contains(&record.reason) || !report.contains(&flagramp::report::verb(record)) {
        return Err(format!("{name}: the report does not show the decision:\n{report}"));
    }
    if outcome.elapsed > case.limit {
        return Err(format!(
            "{name}: took {:?}, more than {:?}",
            outcome.elapsed, case.limit
        ));
    }
    Ok(())
}

/// Runs every case of a table at once, each a task of its own (with its own servers and files,
/// so that one case's work does not delay another's clock), and fails with every broken promise.
async fn run_table<F, Fut>(dependency: &str, cases: Vec<Case>, run: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    let tasks: Vec<_> = (0..cases.len()).map(|i| tokio::spawn(run(i))).collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("a case panicked"));
    }
    let failures: Vec<String> = cases
        .iter()
        .zip(&outcomes)
        .filter_map(|(case, outcome)| judge(dependency, case, outcome).err())
        .collect();
    eprintln!("fault matrix: {dependency}: {} cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} {dependency} cases broke a promise:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The HTTP faults, with what every dependency's reason must say; `success` is a body that
/// would read as healthy data, `error` one shaped like the dependency's own error answers.
fn http_faults(success: &[u8], error: &[u8], timeout: Duration) -> Vec<(Fault, Case)> {
    let within = format!("within {}s", timeout.as_secs());
    let limit = timeout + SLACK;
    let case = |fault: &str, expect: &[&str]| Case {
        fault: fault.to_string(),
        expect: expect.iter().map(|s| s.to_string()).collect(),
        limit,
    };
    let json = "application/json";
    let mut padded = vec![b' '; 2 * 1024 * 1024];
    padded.extend_from_slice(success);
    let mut rows = vec![
        (Fault::Refused, case("refused", &["cannot connect to 127.0.0.1"])),
        (Fault::Stall, case("stall", &["no answer from 127.0.0.1", &within])),
        (
            Fault::SlowBody(success.to_vec()),
            case("slow body", &["no answer from 127.0.0.1", &within]),
        ),
        (Fault::answer(429, json, error.to_vec()), case("429", &["HTTP 429"])),
        (
            Fault::answer(429, json, error.to_vec()).with_header("Retry-After", "10"),
            case("429 Retry-After: 10", &["HTTP 429"]),
        ),
        (
            Fault::answer(200, json, b"{\"status\": \"succ".to_vec()),
            case("malformed JSON", &[]),
        ),
        (
            Fault::Truncated(success.to_vec()),
            case("truncated JSON", &["broke off"]),
        ),
        (
            Fault::answer(200, "text/html", b"<html><body>OK</body></html>".to_vec()),
            case("wrong content type", &[]),
        ),
        (
            Fault::answer(200, json, padded.clone()),
            case("oversized", &["larger than 1 MiB"]),
        ),
        (
            Fault::Unsized(padded),
            case("oversized, no length", &["larger than 1 MiB"]),
        ),
        (Fault::answer(401, json, error.to_vec()), case("401", &["401"])),
        (Fault::answer(403, json, error.to_vec()), case("403", &["403"])),
        (Fault::answer(409, json, error.to_vec()), case("409 conflict", &["409"])),
    ];
    for status in [500, 502, 503] {
        let http = format!("HTTP {status}");
        rows.push((
            Fault::answer(status, json, error.to_vec()),
            case(&format!("{status}, error body"), &[&http]),
        ));
        rows.push((
            Fault::answer(status, json, success.to_vec()),
            case(&format!("{status}, success body"), &[&http]),
        ));
    }
    rows
}

/// Sets what a dependency says for the faults whose words are its own.
fn expect(rows: &mut [(Fault, Case)], fault: &str, words: &[&str]) {
    for (_, case) in rows.iter_mut().filter(|(_, c)| c.fault == fault) {
        case.expect = words.iter().map(|s| s.to_string()).collect();
    }
}

fn snapshot(bench: &Bench) -> World {
    World {
        flag: bench.flag_bytes(),
        state: bench.state_bytes(),
    }
}

/// Starts a flagd rollout (at 10%, bake 1h) with `spec`, then decides it two hours later.
async fn started_then_decided(bench: &Bench, spec: &RolloutSpec) -> Outcome {
    started_then_decided_at(bench, spec, t0(), later()).await
}

/// [`started_then_decided`] at chosen times (a real server has data only for the real clock).
async fn started_then_decided_at(
    bench: &Bench,
    spec: &RolloutSpec,
    start: DateTime<Utc>,
    decide: DateTime<Utc>,
) -> Outcome {
    let started = bench.runner(start).decide(spec, &Mode::Run).await;
    assert_eq!(started.record.decision, DecisionKind::Start, "{:?}", started.record);
    decided_at(bench, spec, decide).await
}

/// One scheduled decision at `at`, with the local flag and state before and after it.
async fn decided_at(bench: &Bench, spec: &RolloutSpec, at: DateTime<Utc>) -> Outcome {
    let before = snapshot(bench);
    let clock = Instant::now();
    let decided = bench.runner(at).decide(spec, &Mode::Run).await;
    Outcome {
        decided,
        elapsed: clock.elapsed(),
        before,
        after: snapshot(bench),
    }
}

const PROMETHEUS_OK: &[u8] =
    br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795518000,"0.99"]}]}}"#;
const PROMETHEUS_ERROR: &[u8] = br#"{"status":"error","errorType":"internal","error":"the fault matrix says no"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_faults_hold() {
    let mut rows = http_faults(PROMETHEUS_OK, PROMETHEUS_ERROR, CHECK_TIMEOUT);
    expect(&mut rows, "malformed JSON", &["not Prometheus JSON"]);
    expect(&mut rows, "wrong content type", &["not Prometheus JSON"]);
    expect(&mut rows, "401", &["HTTP 401"]);
    expect(&mut rows, "403", &["HTTP 403"]);
    expect(&mut rows, "409 conflict", &["HTTP 409"]);
    expect(&mut rows, "429", &["HTTP 429", "(rate limited; after 3 attempts)"]);
    expect(
        &mut rows,
        "429 Retry-After: 10",
        &["HTTP 429", "(rate limited; a wait of 10s does not fit in the 5s"],
    );
    let (faults, cases): (Vec<Fault>, Vec<Case>) = rows.into_iter().unzip();
    let faults = Arc::new(faults);
    run_table("prometheus", cases, |i| {
        let faults = faults.clone();
        async move {
            let server = FaultServer::start(faults[i].clone()).await;
            let bench = Bench::new(None);
            started_then_decided(&bench, &prometheus_spec(&server.url())).await
        }
    })
    .await;
}

#[tokio::test]
async fn a_healthy_prometheus_advances_the_same_setup() {
    let server = FaultServer::start(Fault::answer(200, "application/json", PROMETHEUS_OK.to_vec())).await;
    let bench = Bench::new(None);
    let outcome = started_then_decided(&bench, &prometheus_spec(&server.url())).await;
    assert_eq!(
        outcome.decided.record.decision,
        DecisionKind::Advance,
        "{:?}",
        outcome.decided.record
    );
}

// One thread: a check spawned while another case reopens its state lock would hold that lock
// for the instant between fork and exec, and the reopening case would find it taken.
#[tokio::test]
async fn command_faults_hold() {
    let limit = CHECK_TIMEOUT + SLACK;
    let case = |fault: &str, expect: &[&str]| Case {
        fault: fault.to_string(),
        expect: expect.iter().map(|s| s.to_string()).collect(),
        limit,
    };
    let rows: Vec<(Vec<&str>, Case)> = vec![
        (
            vec!["./no-such-check.sh"],
            case("not there (refused)", &["was not found"]),
        ),
        (vec!["sleep", "30"], case("stall", &["timed out after 5s"])),
        (
            vec!["sh", "-c", "while :; do printf 9; sleep 0.2; done"],
            case("slow output", &["timed out after 5s"]),
        ),
        (
            vec!["sh", "-c", "echo 'rate limited, retry after 10s' >&2; exit 75"],
            case("exits non-zero (429-like)", &["exited with 75", "rate limited"]),
        ),
        (
            vec!["sh", "-c", "echo 0.99; echo 'internal error' >&2; exit 1"],
            case("prints a healthy value, then fails (500-like)", &["exited with 1"]),
        ),
        (
            vec!["echo", "{\"value\": 0.9"],
            case("malformed output", &["printed 2 words"]),
        ),
        (
            vec!["sh", "-c", "printf 0.9; kill -9 $$"],
            case("truncated output (killed)", &["exited with a signal"]),
        ),
        (
            vec!["echo", "<html>OK</html>"],
            case("wrong kind of output", &["instead of a number"]),
        ),
        (
            vec!["sh", "-c", "echo 0.99 0.99"],
            case("two values", &["printed 2 words"]),
        ),
        (
            vec!["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' 9"],
            case(
                "oversized output",
                &["printed more than 1 MiB on stdout and was stopped"],
            ),
        ),
        (
            vec!["yes", "1"],
            case("endless output", &["printed more than 1 MiB on stdout and was stopped"]),
        ),
        (
            vec!["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' e >&2; exit 1"],
            case("a flood on stderr, then a failure", &["exited with 1"]),
        ),
        (
            vec!["sh", "-c", "echo 'permission denied' >&2; exit 77"],
            case("refused (403-like)", &["exited with 77", "permission denied"]),
        ),
    ];
    let (argvs, cases): (Vec<Vec<&str>>, Vec<Case>) = rows.into_iter().unzip();
    let argvs = Arc::new(argvs);
    run_table("command", cases, |i| {
        let argvs = argvs.clone();
        async move {
            let bench = Bench::new(None);
            started_then_decided(&bench, &command_spec(&argvs[i])).await
        }
    })
    .await;
}

/// A provider whose every answer is `fault`, decided in a repository with a passing check.
async fn provider_outcome(flag_block: String) -> Outcome {
    let bench = Bench::new(None);
    let spec = parse(&spec_text(&flag_block, passing_check()));
    decided_at(&bench, &spec, t0()).await
}

fn unleash_block(url: &str) -> String {
    format!(
        "{{ provider: unleash, key: demo, unleash: {{ url: \"{url}\", project: default, environment: development, token_env: {UNLEASH_TOKEN_ENV} }} }}"
    )
}

fn launchdarkly_block(url: &str) -> String {
    format!(
        "{{ provider: launchdarkly, key: demo, launchdarkly: {{ project: {PROJECT}, environment: {ENVIRONMENT}, token_env: {TOKEN_ENV}, base_url: \"{url}\" }} }}"
    )
}

/// Runs the HTTP faults against a provider; fails if any case wrote to the faulty server.
async fn provider_table(dependency: &str, rows: Vec<(Fault, Case)>, block: fn(&str) -> String) {
    let (faults, cases): (Vec<Fault>, Vec<Case>) = rows.into_iter().unzip();
    let faults = Arc::new(faults);
    let writes = Arc::new(std::sync::Mutex::new(Vec::new()));
    run_table(dependency, cases, |i| {
        let faults = faults.clone();
        let writes = writes.clone();
        async move {
            let server = FaultServer::start(faults[i].clone()).await;
            let outcome = provider_outcome(block(&server.url())).await;
            writes.lock().unwrap().extend(
                server
                    .received()
                    .into_iter()
                    .filter(|r| r.method != "GET" || r.headers.iter().any(|(n, _)| n == "referer"))
                    .map(|r| format!("{:?}: {} {}", faults[i], r.method, r.target)),
            );
            outcome
        }
    })
    .await;
    let writes = writes.lock().unwrap();
    assert!(
        writes.is_empty(),
        "writes after a failed read, or a Referer: {writes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unleash_faults_are_errors() {
    export_unleash_token();
    let feature = serde_json::to_vec(&json!({
        "name": "demo",
        "environments": [{ "name": "development", "enabled": true, "strategies": [{
            "id": "s1", "name": "flexibleRollout", "title": "flagramp", "disabled": false,
            "constraints": [], "segments": [],
            "parameters": { "rollout": "100", "stickiness": "default", "groupId": "demo" } }] }]
    }))
    .unwrap();
    let error = br#"{"name":"InternalError","message":"the fault matrix says no","details":[]}"#;
    let mut rows = http_faults(&feature, error, PROVIDER_TIMEOUT);
    expect(&mut rows, "malformed JSON", &["not JSON", "nothing was changed"]);
    expect(&mut rows, "wrong content type", &["not JSON"]);
    expect(&mut rows, "401", &["was refused", "HTTP 401"]);
    expect(&mut rows, "403", &["may not do this", "HTTP 403"]);
    expect(&mut rows, "409 conflict", &["HTTP 409"]);
    provider_table("unleash", rows, unleash_block).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn launchdarkly_faults_are_errors() {
    crate::support::launchdarkly::export_tokens();
    let flag = serde_json::to_vec(&json!({
        "_version": 1,
        "variations": [{ "_id": "t", "value": true }, { "_id": "f", "value": false }],
        "environments": { ENVIRONMENT: { "on": true, "offVariation": 1, "version": 1, "fallthrough": { "variation": 0 } } }
    }))
    .unwrap();
    let error = br#"{"code":"internal_server_error","message":"the fault matrix says no"}"#;
    let mut rows = http_faults(&flag, error, PROVIDER_TIMEOUT);
    expect(&mut rows, "malformed JSON", &["not JSON"]);
    expect(&mut rows, "wrong content type", &["not JSON"]);
    expect(&mut rows, "401", &["rejected the API access token", "HTTP 401"]);
    expect(&mut rows, "403", &["may not read", "HTTP 403"]);
    expect(&mut rows, "409 conflict", &["conflicting change", "HTTP 409"]);
    provider_table("launchdarkly", rows, launchdarkly_block).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn launchdarkly_write_faults_are_errors_and_leave_the_flag() {
    let limit = PROVIDER_TIMEOUT + SLACK;
    let case = |fault: &str, expect: &[&str]| Case {
        fault: fault.to_string(),
        expect: expect.iter().map(|s| s.to_string()).collect(),
        limit,
    };
    let rows: Vec<(u16, Case)> = vec![
        (500, case("PATCH 500", &["HTTP 500"])),
        (502, case("PATCH 502", &["HTTP 502"])),
        (503, case("PATCH 503", &["HTTP 503"])),
        (401, case("PATCH 401", &["rejected the API access token"])),
        (403, case("PATCH 403", &["may not change"])),
        (409, case("PATCH 409 conflict", &["other runs kept changing"])),
        (429, case("PATCH 429", &["HTTP 429"])),
    ];
    let (statuses, cases): (Vec<u16>, Vec<Case>) = rows.into_iter().unzip();
    let statuses = Arc::new(statuses);
    run_table("launchdarkly writes", cases, |i| {
        let statuses = statuses.clone();
        async move {
            let fake = FakeLaunchDarkly::start().await;
            fake.add_boolean_flag("demo");
            fake.fail_next("PATCH", statuses[i], 10);
            let bench = Bench::new(None);
            let spec = parse(&spec_text(&launchdarkly_block(&fake.uri()), passing_check()));
            let before_flag = fake.observe("demo");
            let before = World {
                flag: Some(format!("{before_flag:?}").into_bytes()),
                state: bench.state_bytes(),
            };
            let clock = Instant::now();
            let decided = bench.runner(t0()).decide(&spec, &Mode::Run).await;
            let elapsed = clock.elapsed();
            let state = bench.state_bytes();
            // A claim left for a failed write whose outcome is unknown is the one state change
            // allowed: the next run resolves it from the flag. Compare without it.
            let state = state.map(|s| {
                let mut v: Value = serde_json::from_slice(&s).unwrap();
                if v.get("history").and_then(Value::as_array).is_some_and(Vec::is_empty) {
                    return Vec::new();
                }
                v["pending"] = Value::Null;
                serde_json::to_vec(&v).unwrap()
            });
            let after = World {
                flag: Some(format!("{:?}", fake.observe("demo")).into_bytes()),
                state: state.filter(|s| !s.is_empty()),
            };
            Outcome {
                decided,
                elapsed,
                before,
                after,
            }
        }
    })
    .await;
}

/// A GitHub client for the server at `url`, bounded as the table needs.
fn github(url: &str, timeout: Duration) -> Arc<GitHub> {
    Arc::new(
        GitHub::new(url, "ghs_faults", "octo-org/octo-repo")
            .unwrap()
            .with_call_timeout(timeout),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn github_faults_are_errors() {
    let timeout = Duration::from_secs(3);
    let state = json!({ "format": 1, "rollout": "demo", "flag": "demo" });
    let contents = serde_json::to_vec(&json!({
        "type": "file", "encoding": "base64", "sha": "0123456789abcdef0123456789abcdef01234567",
        "content": base64_of(&serde_json::to_vec(&state).unwrap())
    }))
    .unwrap();
    let error = br#"{"message":"the fault matrix says no","documentation_url":"https://docs.github.com/rest"}"#;
    // The run's first read is the state branch's tree, one GraphQL query for every rollout
    // (docs/state-branch.md, "Reading"); its failure is each rollout's reason.
    let get = "POST /graphql";
    let mut rows = http_faults(&contents, error, timeout);
    for (_, case) in rows.iter_mut() {
        if !case.expect.iter().any(|e| e.contains("within")) {
            case.expect.insert(0, get.to_string());
        }
    }
    expect(&mut rows, "refused", &[get]);
    expect(&mut rows, "malformed JSON", &[get, "unexpected answer"]);
    expect(&mut rows, "wrong content type", &[get, "unexpected answer"]);
    expect(&mut rows, "truncated JSON", &[get, "reading the answer"]);
    expect(&mut rows, "429", &["GitHub rate-limited", "HTTP 429"]);
    expect(
        &mut rows,
        "429 Retry-After: 10",
        &["GitHub rate-limited", "a wait of 10s does not fit"],
    );
    // GitHub's answers may be larger (16 MiB): 2 MiB is read, and its padding is not an error;
    // the body, a contents answer, is then no GraphQL answer, and refused as one.
    expect(&mut rows, "oversized", &[get, "unexpected answer"]);
    expect(&mut rows, "oversized, no length", &[get, "unexpected answer"]);
    let mut huge = vec![b' '; 17 * 1024 * 1024];
    huge.extend_from_slice(&contents);
    let case = |fault: &str, expect: &[&str]| Case {
        fault: fault.to_string(),
        expect: expect.iter().map(|s| s.to_string()).collect(),
        limit: timeout + SLACK,
    };
    rows.push((
        Fault::answer(200, "application/json", huge),
        case("oversized (17 MiB)", &[get, "larger than 16 MiB"]),
    ));
    rows.push((
        Fault::answer(
            403,
            "application/json",
            br#"{"message":"You have exceeded a secondary rate limit."}"#.to_vec(),
        )
        .with_header("Retry-After", "60"),
        case(
            "403 secondary rate limit",
            &["GitHub rate-limited", "HTTP 403", "secondary rate limit"],
        ),
    ));
    rows.push((
        Fault::answer(
            403,
            "application/json",
            br#"{"message":"API rate limit exceeded"}"#.to_vec(),
        )
        .with_header("x-ratelimit-remaining", "0")
        .with_header("x-ratelimit-reset", "4102444800"),
        case("403 primary rate limit", &["GitHub rate-limited", "HTTP 403"]),
    ));
    let (faults, cases): (Vec<Fault>, Vec<Case>) = rows.into_iter().unzip();
    let faults = Arc::new(faults);
    run_table("github", cases, |i| {
        let faults = faults.clone();
        async move {
            let server = FaultServer::start(faults[i].clone()).await;
            let gh = github(&server.url(), timeout);
            let store = GitHubStateStore::open(gh.clone(), STATE_BRANCH, false).await.unwrap();
            let bench = Bench::new(None);
            let mut runner = bench.runner_with(t0(), Box::new(store));
            runner.flag_files = FlagFiles::GitHub {
                github: gh,
                default_branch: "main".into(),
            };
            let spec = parse(&spec_text(&flagd_block(), passing_check()));
            let clock = Instant::now();
            let decided = runner.decide(&spec, &Mode::Run).await;
            let elapsed = clock.elapsed();
            // A GraphQL query is a POST that reads (the state branch's tree and blobs).
            let writes: Vec<_> = server
                .received()
                .into_iter()
                .filter(|r| r.method != "GET" && !r.target.ends_with("/graphql"))
                .collect();
            let world = World {
                flag: Some(format!("{writes:?}").into_bytes()),
                state: None,
            };
            Outcome {
                decided,
                elapsed,
                before: World {
                    flag: Some(b"[]".to_vec()),
                    state: None,
                },
                after: world,
            }
        }
    })
    .await;
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_write_faults_are_errors_and_leave_flag_and_state() {
    let limit = Duration::from_secs(60);
    let case = |fault: &str, expect: &[&str]| Case {
        fault: fault.to_string(),
        expect: expect.iter().map(|s| s.to_string()).collect(),
        limit,
    };
    // State is written with the git data API: a commit made on the head read, then the branch
    // moved to it only as a fast-forward (src/state/github.rs); the ref update is where a
    // refusal lands.
    const STATE_REF: &str = "/git/refs/heads/flagramp-state";
    let rows: Vec<(&str, &str, u16, Case)> = vec![
        ("PUT", FLAGS, 500, case("flag file PUT 500", &["HTTP 500"])),
        ("PUT", FLAGS, 502, case("flag file PUT 502", &["HTTP 502"])),
        (
            "PUT",
            FLAGS,
            403,
            case("flag file PUT 403", &["HTTP 403", "cannot write contents"]),
        ),
        (
            "PUT",
            FLAGS,
            409,
            // A 409 on a file still at the sha written against is not another writer: the
            // write itself was refused (src/github.rs `why_not_written`).
            case(
                "flag file PUT 409 on an unchanged file",
                &["HTTP 409", "refused the write"],
            ),
        ),
        ("PATCH", STATE_REF, 500, case("state ref update 500", &["HTTP 500"])),
        (
            "PATCH",
            STATE_REF,
            403,
            case("state ref update 403", &["HTTP 403", "cannot write the state branch"]),
        ),
        (
            "PATCH",
            STATE_REF,
            422,
            // A 422 on a branch still at the head the commit was made on is not another run's
            // commit: the update itself was refused.
            case(
                "state ref update 422 on an unchanged branch",
                &["HTTP 422", "refused the write"],
            ),
        ),
    ];
    let rows = Arc::new(rows);
    let cases = rows
        .iter()
        .map(|(_, _, _, c)| Case {
            fault: c.fault.clone(),
            expect: c.expect.clone(),
            limit: c.limit,
        })
        .collect();
    run_table("github writes", cases, |i| {
        let rows = rows.clone();
        async move {
            let (method, path, status, _) = &rows[i];
            let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
            fake.put_file("main", FLAGS, flags_json(None).as_bytes());
            // A state branch that exists, so the state write is a ref update.
            fake.put_file(STATE_BRANCH, "README.md", b"state\n");
            let gh = github(&fake.uri(), Duration::from_secs(10));
            let store = GitHubStateStore::open(gh.clone(), STATE_BRANCH, true).await.unwrap();
            let bench = Bench::new(None);
            let mut runner = bench.runner_with(t0(), Box::new(store));
            runner.flag_files = FlagFiles::GitHub {
                github: gh,
                default_branch: "main".into(),
            };
            let spec = parse(&spec_text(&flagd_block(), passing_check()));
            let world = |fake: &FakeGitHub| World {
                flag: fake.file("main", FLAGS),
                state: fake.file(STATE_BRANCH, "rollouts/demo.json").filter(|_| false),
            };
            let before = world(&fake);
            fake.fail_next(method, path, *status, 10);
            let clock = Instant::now();
            let decided = runner.decide(&spec, &Mode::Run).await;
            let elapsed = clock.elapsed();
            // A state PUT refused after the claim leaves no history entry behind.
            let history = fake
                .file(STATE_BRANCH, "rollouts/demo.json")
                .map(|b| serde_json::from_slice::<Value>(&b).unwrap()["history"].clone());
            let after = World {
                flag: fake.file("main", FLAGS),
                state: history
                    .filter(|h| h.as_array().is_some_and(|a| !a.is_empty()))
                    .map(|h| h.to_string().into_bytes()),
            };
            Outcome {
                decided,
                elapsed,
                before,
                after,
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flagd_file_faults_are_errors() {
    let case = |fault: &str, expect: &[&str]| Case {
        fault: fault.to_string(),
        expect: expect.iter().map(|s| s.to_string()).collect(),
        limit: Duration::from_secs(10),
    };
    let mut oversized = b"{\"flags\":{\"demo\":".to_vec();
    oversized.extend(std::iter::repeat_n(b' ', 9 * 1024 * 1024));
    let rows: Vec<(Option<Vec<u8>>, Case)> = vec![
        (None, case("missing (refused)", &["flag provider"])),
        (
            Some(b"{\"flags\": {\"demo\": {\"state\": \"ENA".to_vec()),
            case("truncated JSON", &["flag provider"]),
        ),
        (
            Some(b"flags: [demo".to_vec()),
            case("malformed JSON", &["flag provider"]),
        ),
        (
            Some(b"<html>OK</html>".to_vec()),
            case("wrong content type", &["flag provider"]),
        ),
        (Some(b"[]".to_vec()), case("not an object", &["flag provider"])),
        (
            Some(b"{\"flags\":{}}".to_vec()),
            case("no such flag", &["flag provider"]),
        ),
        (Some(oversized), case("oversized", &["flag provider"])),
    ];
    let (contents, cases): (Vec<Option<Vec<u8>>>, Vec<Case>) = rows.into_iter().unzip();
    let contents = Arc::new(contents);
    run_table("flagd file", cases, |i| {
        let contents = contents.clone();
        async move {
            let bench = Bench::new(None);
            match &contents[i] {
                Some(bytes) => bench.write(FLAGS, bytes),
                None => std::fs::remove_file(bench.root().join(FLAGS)).unwrap(),
            }
            let spec = parse(&spec_text(&flagd_block(), passing_check()));
            decided_at(&bench, &spec, t0()).await
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_store_faults_are_errors() {
    let case = |fault: &str, expect: &[&str]| Case {
        fault: fault.to_string(),
        expect: expect.iter().map(|s| s.to_string()).collect(),
        limit: Duration::from_secs(10),
    };
    let rows: Vec<(&[u8], Case)> = vec![
        (b"{\"format\": 1, \"rollout\": \"de", case("truncated JSON", &["demo"])),
        (b"not json at all", case("malformed JSON", &["demo"])),
        (b"<html>OK</html>", case("wrong content type", &["demo"])),
        (
            b"{\"format\": 99, \"rollout\": \"demo\"}",
            case("another format", &["demo"]),
        ),
        (b"", case("empty", &["demo"])),
    ];
    let (contents, cases): (Vec<&[u8]>, Vec<Case>) = rows.into_iter().unzip();
    let contents = Arc::new(contents);
    run_table("state store", cases, |i| {
        let contents = contents.clone();
        async move {
            let bench = Bench::new(Some(10_000));
            bench.write(".flagramp/state/demo.json", contents[i]);
            let spec = parse(&spec_text(&flagd_block(), passing_check()));
            decided_at(&bench, &spec, later()).await
        }
    })
    .await;
}

/// Redirects: one to another origin carries no credential and no configured header, and no
/// request carries `Referer`.
#[tokio::test]
async fn a_cross_origin_redirect_drops_credentials_and_sends_no_referer() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let second = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/elsewhere/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PROMETHEUS_OK, "application/json"))
        .mount(&second)
        .await;
    let first = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("Location", format!("{}/elsewhere/api/v1/query?query=up", second.uri())),
        )
        .mount(&first)
        .await;
    let source = flagramp::metrics::PrometheusSource::new(
        "prom",
        &first.uri(),
        flagramp::http::Credentials {
            bearer: Some("redirect-secret-token".into()),
            basic: None,
            headers: vec![("X-Scope-OrgID".into(), "tenant-secret".into())],
        },
        None,
    );
    let probe = flagramp::spec::Probe::Query {
        source: "prom".into(),
        query: flagramp::spec::Query::Prometheus("up".into()),
    };
    let measured = flagramp::metrics::MetricSource::measure(
        &source,
        &flagramp::metrics::MeasureRequest {
            probe: &probe,
            at: t0(),
            window: None,
            timeout: CHECK_TIMEOUT,
            rollout: "demo",
            percent: flagramp::percent::Percent::ZERO,
        },
    )
    .await;
    assert_eq!(measured, flagramp::check::Measurement::Value(0.99));
    let to_first = first.received_requests().await.unwrap();
    assert_eq!(to_first.len(), 1);
    assert_eq!(
        to_first[0].headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer redirect-secret-token"),
        "the origin itself gets the credentials"
    );
    let to_second = second.received_requests().await.unwrap();
    assert_eq!(to_second.len(), 1);
    for name in ["authorization", "x-scope-orgid", "referer", "cookie"] {
        assert!(
            to_second[0].headers.get(name).is_none(),
            "the other origin got `{name}`: {:?}",
            to_second[0].headers
        );
    }
    for request in to_first.iter().chain(&to_second) {
        assert!(request.headers.get("referer").is_none());
    }
}

#[tokio::test]
async fn a_same_origin_redirect_keeps_credentials_and_loops_are_cut() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/moved/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PROMETHEUS_OK, "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(301).insert_header("Location", "/moved/api/v1/query?query=up"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/loop"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/loop"))
        .mount(&server)
        .await;
    let headers = [("authorization", "Bearer same-origin".to_string())];
    let answer = flagramp::http::send(
        reqwest::Method::GET,
        &format!("{}/api/v1/query", server.uri()),
        &headers,
        None,
        CHECK_TIMEOUT,
        true,
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
    let moved = server.received_requests().await.unwrap();
    assert_eq!(
        moved[1].headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer same-origin")
    );
    let looped = flagramp::http::send(
        reqwest::Method::GET,
        &format!("{}/loop", server.uri()),
        &headers,
        None,
        CHECK_TIMEOUT,
        true,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(looped, flagramp::http::HttpError::TooManyRedirects { .. }),
        "{looped:?}"
    );
    assert!(looped.to_string().contains("redirected more than 5 times"), "{looped}");
    // A write is not turned into a GET by a 302: its answer stays the redirect, an error.
    Mock::given(method("PATCH"))
        .and(path("/write"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", "/moved/api/v1/query"))
        .mount(&server)
        .await;
    let write = flagramp::http::send(
        reqwest::Method::PATCH,
        &format!("{}/write", server.uri()),
        &headers,
        Some(&json!({})),
        CHECK_TIMEOUT,
        false,
    )
    .await
    .unwrap();
    assert_eq!(write.status, 302);
    assert!(!write.is_success());
}

/// The run's time budget: rollouts whose turn comes after it hold, unread and unchanged.
#[tokio::test]
async fn a_spent_time_budget_holds_the_remaining_rollouts() {
    let server = FaultServer::start(Fault::Stall).await;
    let bench = Bench::new(None);
    let slow = prometheus_spec(&server.url());
    let started = bench.runner(t0()).decide(&slow, &Mode::Run).await;
    assert_eq!(started.record.decision, DecisionKind::Start);
    let mut second = parse(&spec_text(
        "{ provider: flagd, key: other, flagd: { path: flags/other.flagd.json } }",
        passing_check(),
    ));
    second.name = "second".into();
    let other_flag = flags_json(None).replace("\"demo\"", "\"other\"");
    bench.write("flags/other.flagd.json", other_flag.as_bytes());
    let mut runner = bench.runner(later());
    runner.budget = Some(flagramp::http::Deadline::after(Duration::from_secs(1)));
    // One at a time, so that the second rollout's turn comes after the budget is spent; with
    // more at once, every rollout started before it is spent is decided.
    runner.concurrency = 1;
    let clock = Instant::now();
    let decided = runner.decide_all(&[slow, second], &Mode::Run).await;
    let elapsed = clock.elapsed();
    assert_eq!(
        decided[0].record.decision,
        DecisionKind::Hold,
        "{:?}",
        decided[0].record
    );
    assert_eq!(
        decided[1].record.decision,
        DecisionKind::Hold,
        "{:?}",
        decided[1].record
    );
    assert!(
        decided[1].record.reason.starts_with("time budget exhausted"),
        "{}",
        decided[1].record.reason
    );
    assert!(!decided[1].changed_state);
    assert_eq!(
        bench.root().join("flags/other.flagd.json").metadata().unwrap().len() as usize,
        other_flag.len()
    );
    assert!(
        !bench.state_dir().join("second.json").exists(),
        "the held rollout was not started"
    );
    assert!(elapsed < CHECK_TIMEOUT + SLACK, "{elapsed:?}");
}

#[test]
fn the_cli_and_the_action_take_a_time_budget() {
    let bench = Bench::new(None);
    bench.write(
        ".github/rollouts/demo.yml",
        spec_text(&flagd_block(), passing_check()).as_bytes(),
    );
    let before = snapshot(&bench);
    let flagramp = |args: &[&str]| bench.flagramp(args).output().unwrap();
    let spent = flagramp(&["--time-budget", "0s", "run", "--now", T0, "--output", "json"]);
    assert_eq!(spent.status.code(), Some(0), "{spent:?}");
    let records: Value = serde_json::from_slice(&spent.stdout).unwrap();
    assert_eq!(records[0]["decision"], "hold", "{records}");
    assert!(
        records[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("time budget exhausted: the run's 0s"),
        "{records}"
    );
    assert_eq!(snapshot(&bench), before, "a held rollout is neither read nor changed");
    let started = flagramp(&["run", "--now", T0, "--output", "json"]);
    let records: Value = serde_json::from_slice(&started.stdout).unwrap();
    assert_eq!(
        records[0]["decision"], "start",
        "the default budget (10m) leaves time: {records}"
    );
    let bad = flagramp(&["--time-budget", "soon", "plan"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--time-budget"),
        "{bad:?}"
    );

    use flagramp::action::Inputs;
    let read = |budget: &str| {
        Inputs::read(&|name: &str| match name {
            "INPUT_GITHUB_TOKEN" => Some("ghs_x".into()),
            "INPUT_TIME_BUDGET" => Some(budget.into()),
            _ => None,
        })
    };
    assert_eq!(read("").unwrap().time_budget.as_secs(), 600);
    assert_eq!(read("90s").unwrap().time_budget.as_secs(), 90);
    let refused = read("soon").unwrap_err();
    assert!(
        matches!(refused, flagramp::action::ActionError::TimeBudget(_)),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("input `time_budget`"), "{refused}");
}

/// GitHub's rate limits are waited out (within the call's time) and then the call succeeds;
/// a secondary rate limit is never mistaken for a read-only token.
#[tokio::test]
async fn github_rate_limits_are_waited_out() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let limit = |n: usize| match n {
        0 => ResponseTemplate::new(403)
            .insert_header("retry-after", "1")
            .set_body_raw(
                r#"{"message":"You have exceeded a secondary rate limit."}"#,
                "application/json",
            ),
        1 => ResponseTemplate::new(403)
            .insert_header("x-ratelimit-remaining", "0")
            // Whole epoch seconds, as GitHub sends them: the wait is between 1 and 2 s.
            .insert_header(
                "x-ratelimit-reset",
                (chrono::Utc::now().timestamp() + 2).to_string().as_str(),
            )
            .set_body_raw(r#"{"message":"API rate limit exceeded"}"#, "application/json"),
        _ => ResponseTemplate::new(429).insert_header("retry-after", "1"),
    };
    for n in 0..3 {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/repos/octo-org/octo-repo"))
            .respond_with(limit(n))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/repos/octo-org/octo-repo"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(r#"{"default_branch":"trunk"}"#, "application/json"))
            .mount(&server)
            .await;
        let clock = Instant::now();
        let branch = github(&server.uri(), Duration::from_secs(10)).default_branch().await;
        assert_eq!(branch, Ok("trunk".to_string()));
        assert!(
            clock.elapsed() >= Duration::from_millis(900),
            "limit {n}: {:?}",
            clock.elapsed()
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 2);
    }
    // A write that is rate-limited was not applied, so it is sent again too.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/repos/octo-org/octo-repo/issues/7/comments"))
        .respond_with(ResponseTemplate::new(403).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/repos/octo-org/octo-repo/issues/7/comments"))
        .respond_with(ResponseTemplate::new(201).set_body_raw(r#"{"id":42}"#, "application/json"))
        .mount(&server)
        .await;
    let id = github(&server.uri(), Duration::from_secs(10))
        .create_comment(7, "hello")
        .await;
    assert_eq!(id, Ok(42));
    // A read-only token (403 without rate-limit headers) stays what it is, and is not repeated.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            r#"{"message":"Resource not accessible by integration"}"#,
            "application/json",
        ))
        .mount(&server)
        .await;
    let refused = github(&server.uri(), Duration::from_secs(10))
        .create_comment(7, "hello")
        .await;
    assert!(
        matches!(refused, Err(flagramp::github::GitHubError::Forbidden(_))),
        "{refused:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
