//! The real binary against a real Prometheus, fed through a real Pushgateway.
//!
//! Each test builds a temporary repository (spec, flagd file, state directory), pushes gauges to
//! its own Pushgateway group with its own `flag` label (tests run in parallel threads and share
//! the servers), waits until Prometheus answers the new value, then runs `flagramp` and reads its
//! JSON decision records and the flag file it wrote.
//!
//! Time: Pushgateway samples carry the wall-clock time of their scrape, so the `--now` of each run
//! is near the real clock. A test keeps its own monotonic clock ([`Clock`]): the first run after
//! new data is never earlier than the real time at which Prometheus showed that data, and later
//! runs step it forward by whole seconds without sleeping. A query evaluated a few seconds ahead
//! of the real clock still sees the latest scraped sample (Prometheus looks back 5 minutes), so
//! bakes of 2 s are crossed deterministically, however slow the machine is.
//!
//! Needs the services: run with `scripts/test`, or `eval "$(scripts/services start)"` and
//! `cargo test --test tests prometheus_live -- --include-ignored`.

use std::time::{Duration as StdDuration, Instant};

use crate::support::repo::{single_record, TempRepo};
use crate::support::FLAGD_FILE;
use assert_cmd::Command;
use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};
use serde_json::{json, Value};

const FLAG_KEY: &str = "new-checkout";
/// How long Prometheus may take to show a pushed value (it scrapes every second).
const VISIBLE_WITHIN: StdDuration = StdDuration::from_secs(15);

fn env_url(var: &str) -> String {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_string(),
        _ => panic!(
            "{var} is not set: these tests need Prometheus and Pushgateway; run them with scripts/test \
             (or `eval \"$(scripts/services start)\"` first)"
        ),
    }
}

fn prometheus_url() -> String {
    env_url("FLAGRAMP_TEST_PROMETHEUS_URL")
}

fn pushgateway_url() -> String {
    env_url("FLAGRAMP_TEST_PUSHGATEWAY_URL")
}

/// A name no other test, and no earlier run against the same servers, uses.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}_{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

// ---------------------------------------------------------------------------------------------
// HTTP (reqwest on a throwaway current-thread runtime: the tests themselves are synchronous)
// ---------------------------------------------------------------------------------------------

fn http(
    method: reqwest::Method,
    url: &str,
    query: &[(&str, &str)],
    body: Option<String>,
) -> Result<(u16, String), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(StdDuration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let mut request = client.request(method, url).query(query);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, text))
    })
}

/// One Pushgateway group (`/metrics/job/<job>`), deleted again when the test ends.
struct Group {
    url: String,
}

impl Group {
    fn new(tag: &str) -> Group {
        Group {
            url: format!("{}/metrics/job/{}", pushgateway_url(), unique(tag)),
        }
    }

    /// Replaces the group's metrics with `body` (text exposition format, one sample a line).
    fn push(&self, body: &str) {
        let body = format!("{}\n", body.trim_end());
        match http(reqwest::Method::PUT, &self.url, &[], Some(body.clone())) {
            Ok((200..=299, _)) => {}
            Ok((status, answer)) => panic!("Pushgateway refused {body:?} at {} (HTTP {status}): {answer}", self.url),
            Err(e) => panic!(
                "cannot push to the Pushgateway at {}: {e} (are the services running? scripts/test)",
                self.url
            ),
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = http(reqwest::Method::DELETE, &self.url, &[], None);
    }
}

/// The value Prometheus returns now for `query`: `None` for an empty result.
fn query_now(query: &str) -> Result<Option<f64>, String> {
    let url = format!("{}/api/v1/query", prometheus_url());
    let (status, body) = http(reqwest::Method::GET, &url, &[("query", query)], None)?;
    let answer: Value = serde_json::from_str(&body).map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
    if answer["status"] != "success" {
        return Err(format!("HTTP {status}: {body}"));
    }
    match answer["data"]["result"].as_array().map(Vec::as_slice) {
        Some([]) => Ok(None),
        Some([one]) => {
            let text = one["value"][1].as_str().ok_or_else(|| format!("no value in {body}"))?;
            text.parse::<f64>().map(Some).map_err(|e| format!("`{text}`: {e}"))
        }
        _ => Err(format!("expected one series: {body}")),
    }
}

/// Polls Prometheus until `query` returns `expected` (NaN matches NaN).
fn wait_for_value(query: &str, expected: f64) {
    let started = Instant::now();
    let mut last = Err("not asked yet".to_string());
    while started.elapsed() < VISIBLE_WITHIN {
        last = query_now(query);
        if let Ok(Some(v)) = last {
            if v == expected || (v.is_nan() && expected.is_nan()) {
                return;
            }
        }
        std::thread::sleep(StdDuration::from_millis(200));
    }
    panic!("Prometheus did not return {expected} for `{query}` within {VISIBLE_WITHIN:?}; last answer: {last:?}");
}

/// Pushes `body` to `group` and waits until `query` returns `expected`.
fn push_and_wait(group: &Group, body: &str, query: &str, expected: f64) {
    group.push(body);
    wait_for_value(query, expected);
}

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/// A test's evaluation clock: monotonic, near the real clock, never sleeping.
struct Clock {
    last: DateTime<Utc>,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            last: Utc::now().trunc_subsecs(3) - Duration::seconds(1),
        }
    }

    /// The time of the first run after new data became visible: not earlier than the real
    /// clock (so every sample scraped so far lies in the query's past) nor than any earlier run.
    fn fresh(&mut self) -> DateTime<Utc> {
        let now = Utc::now().trunc_subsecs(3);
        self.last = now.max(self.last + Duration::milliseconds(1));
        self.last
    }

    /// `seconds` after the previous run, whatever the real clock says: nothing was pushed since.
    fn after(&mut self, seconds: i64) -> DateTime<Utc> {
        self.last += Duration::seconds(seconds);
        self.last
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(value: &Value) -> DateTime<Utc> {
    let text = value.as_str().unwrap_or_else(|| panic!("not a time: {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("`{text}`: {e}"))
        .with_timezone(&Utc)
}

// ---------------------------------------------------------------------------------------------
// The repository under test
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Rollout<'a> {
    name: &'a str,
    source_url: String,
    query: String,
    failures_to_rollback: u32,
}

impl Rollout<'_> {
    fn spec(&self) -> String {
        format!(
            r#"version: 1
name: {name}
description: live Prometheus test
flag:
  provider: flagd
  key: {FLAG_KEY}
  flagd: {{ path: flags/flags.flagd.json }}
stages:
  - {{ percent: 10, bake: 2s }}
  - {{ percent: 50, bake: 2s }}
  - {{ percent: 100, bake: 2s }}
sources:
  prom:
    provider: prometheus
    url: "{url}"
    timeout: 5s
    # These tests step their clock a few seconds past the real one (see `Clock`); the lag
    # that closes windows has its own test below.
    lag: 0s
checks:
  - name: success-rate
    source: prom
    query: '{query}'
    pass: ">= 0.95"
policy:
  failures_to_rollback: {failures}
  rollback: previous
"#,
            name = self.name,
            url = self.source_url,
            query = self.query,
            failures = self.failures_to_rollback,
        )
    }
}

struct Repo {
    repo: TempRepo,
    name: String,
}

impl Repo {
    fn new(rollout: &Rollout<'_>) -> Repo {
        let repo = Repo {
            repo: TempRepo::new(),
            name: rollout.name.to_string(),
        };
        repo.repo.write("flags/flags.flagd.json", FLAGD_FILE);
        repo.write_spec(rollout);
        repo
    }

    /// Writes (or rewrites: a spec edit between runs) the rollout's spec.
    fn write_spec(&self, rollout: &Rollout<'_>) {
        assert_eq!(rollout.name, self.name);
        self.repo
            .write(&format!(".github/rollouts/{}.yml", rollout.name), &rollout.spec());
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::from_std(self.repo.flagramp_json(args));
        command.timeout(StdDuration::from_secs(60));
        command
    }

    /// Runs a command that prints decision records; asserts exit code 0 and one record at `now`.
    fn decide(&self, args: &[&str], now: DateTime<Utc>) -> Value {
        let now_text = rfc3339(now);
        let mut all = args.to_vec();
        all.extend(["--now", now_text.as_str()]);
        let record = single_record(&self.command(&all).output().expect("flagramp runs"), &all);
        assert_eq!(record["rollout"], json!(self.name), "{record:#}");
        assert_eq!(record["flag"], json!(FLAG_KEY), "{record:#}");
        assert_eq!(
            parse_time(&record["at"]),
            now,
            "`at` is the --now of the run: {record:#}"
        );
        record
    }

    fn run(&self, now: DateTime<Utc>) -> Value {
        let record = self.decide(&["run"], now);
        assert_eq!(record["actor"], json!("flagramp"), "{record:#}");
        record
    }

    fn flags(&self) -> Value {
        self.repo.read_json("flags/flags.flagd.json")
    }

    /// Asserts the flag's state and (when on) its split, and that nothing else in the file moved.
    fn assert_flag(&self, enabled: bool, on_percent: Option<u32>) {
        let flags = self.flags();
        let flag = &flags["flags"][FLAG_KEY];
        assert_eq!(
            flag["state"],
            json!(if enabled { "ENABLED" } else { "DISABLED" }),
            "{flag:#}"
        );
        match on_percent {
            Some(p) => assert_eq!(
                flag["targeting"],
                json!({ "fractional": [["on", p * 1000], ["off", (100 - p) * 1000]] }),
                "{flag:#}"
            ),
            None => assert!(flag.get("targeting").is_none(), "{flag:#}"),
        }
        let original: Value = serde_json::from_str(FLAGD_FILE).unwrap();
        assert_eq!(flag["variants"], original["flags"][FLAG_KEY]["variants"]);
        assert_eq!(flag["defaultVariant"], original["flags"][FLAG_KEY]["defaultVariant"]);
        assert_eq!(flags["$schema"], original["$schema"]);
        let (now, before) = (
            flags["flags"].as_object().unwrap(),
            original["flags"].as_object().unwrap(),
        );
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "the flags in the file changed"
        );
        for (key, value) in before.iter().filter(|(k, _)| *k != FLAG_KEY) {
            assert_eq!(&now[key], value, "flag `{key}` changed");
        }
    }
}

fn assert_decision(record: &Value, decision: &str, from: f64, to: f64, stage: Option<u64>) {
    assert_eq!(record["decision"], json!(decision), "{record:#}");
    assert_eq!(record["from_percent"].as_f64(), Some(from), "from_percent: {record:#}");
    assert_eq!(record["to_percent"].as_f64(), Some(to), "to_percent: {record:#}");
    assert_eq!(record["stage"], json!(stage), "stage: {record:#}");
}

fn reason(record: &Value) -> &str {
    record["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason: {record:#}"))
}

/// Asserts the single check's evidence: its query, value and verdict.
fn assert_check(record: &Value, query: &str, value: Option<f64>, verdict: &str) -> Value {
    let checks = record["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {record:#}"));
    assert_eq!(checks.len(), 1, "{record:#}");
    let check = checks[0].clone();
    assert_eq!(check["name"], json!("success-rate"), "{check:#}");
    assert_eq!(check["query"], json!(query), "{check:#}");
    assert_eq!(check["condition"], json!(">= 0.95"), "{check:#}");
    assert_eq!(check["verdict"], json!(verdict), "{check:#}");
    assert_eq!(check["value"].as_f64(), value, "{check:#}");
    check
}

fn assert_no_checks(record: &Value) {
    assert_eq!(
        record["checks"],
        json!([]),
        "nothing is queried for this decision: {record:#}"
    );
}

/// A localhost port nobody listens on (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// (a) a whole rollout
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs services: run scripts/test"]
fn healthy_metrics_carry_a_rollout_from_10_to_50_to_100_and_complete() {
    let flag = unique("a");
    let query = format!("flagramp_success_ratio{{flag=\"{flag}\"}}");
    let group = Group::new("flagramp_test_a");
    let repo = Repo::new(&Rollout {
        name: "live-healthy",
        source_url: prometheus_url(),
        query: query.clone(),
        failures_to_rollback: 1,
    });
    let mut clock = Clock::new();

    push_and_wait(
        &group,
        &format!("flagramp_success_ratio{{flag=\"{flag}\"}} 0.99"),
        &query,
        0.99,
    );

    let t0 = clock.fresh();
    let start = repo.run(t0);
    assert_decision(&start, "start", 0.0, 10.0, Some(0));
    assert_no_checks(&start);
    repo.assert_flag(true, Some(10));

    let hold = repo.run(clock.after(1));
    assert_decision(&hold, "hold", 10.0, 10.0, Some(0));
    // The bake's evidence is data; the reason says it the same way (`baked 1s of 2s`).
    assert_eq!(hold["bake"]["required_s"], json!(2), "{hold:#}");
    assert!(
        reason(&hold).contains("baked") && reason(&hold).contains("of 2s"),
        "{hold:#}"
    );
    assert_eq!(parse_time(&hold["eligible_at"]), t0 + Duration::seconds(2), "{hold:#}");
    assert_check(&hold, &query, Some(0.99), "pass");
    repo.assert_flag(true, Some(10));

    let to50 = repo.run(clock.after(2));
    assert_decision(&to50, "advance", 10.0, 50.0, Some(1));
    assert_eq!(to50["eligible_at"], Value::Null);
    assert_check(&to50, &query, Some(0.99), "pass");
    repo.assert_flag(true, Some(50));

    let to100 = repo.run(clock.after(3));
    assert_decision(&to100, "advance", 50.0, 100.0, Some(2));
    assert_check(&to100, &query, Some(0.99), "pass");
    repo.assert_flag(true, Some(100));

    let final_bake = repo.run(clock.after(1));
    assert_decision(&final_bake, "hold", 100.0, 100.0, Some(2));
    assert!(reason(&final_bake).contains("(the final bake)"), "{final_bake:#}");
    assert_eq!(final_bake["bake"]["required_s"], json!(2), "{final_bake:#}");
    repo.assert_flag(true, Some(100));

    let complete = repo.run(clock.after(2));
    assert_decision(&complete, "complete", 100.0, 100.0, Some(2));
    assert_check(&complete, &query, Some(0.99), "pass");
    repo.assert_flag(true, Some(100));

    // Complete is terminal: a later run reports it and queries nothing, even with bad data.
    push_and_wait(
        &group,
        &format!("flagramp_success_ratio{{flag=\"{flag}\"}} 0.5"),
        &query,
        0.5,
    );
    clock.fresh();
    let later = repo.run(clock.after(30));
    assert_decision(&later, "complete", 100.0, 100.0, Some(2));
    assert_no_checks(&later);
    repo.assert_flag(true, Some(100));

    // The history has every decision once, in order (the repeated `complete` is not recorded again).
    let output = repo.command(&["status"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    let decisions: Vec<&str> = status[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        ["start", "hold", "advance", "advance", "hold", "complete"],
        "{status:#}"
    );
    assert_eq!(status[0]["current_percent"].as_f64(), Some(100.0));
    assert_eq!(parse_time(&status[0]["started_at"]), t0);
}

// ---------------------------------------------------------------------------------------------
// (b) a regression
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs services: run scripts/test"]
fn a_regression_rolls_back_a_stage_then_disables_and_stays_locked() {
    let flag = unique("b");
    let query = format!("flagramp_success_ratio{{flag=\"{flag}\"}}");
    let sample = |v: &str| format!("flagramp_success_ratio{{flag=\"{flag}\"}} {v}");
    let group = Group::new("flagramp_test_b");
    let repo = Repo::new(&Rollout {
        name: "live-regression",
        source_url: prometheus_url(),
        query: query.clone(),
        failures_to_rollback: 1,
    });
    let mut clock = Clock::new();

    push_and_wait(&group, &sample("0.99"), &query, 0.99);
    assert_decision(&repo.run(clock.fresh()), "start", 0.0, 10.0, Some(0));
    let to50 = repo.run(clock.after(3));
    assert_decision(&to50, "advance", 10.0, 50.0, Some(1));
    repo.assert_flag(true, Some(50));

    // The success rate drops.
    push_and_wait(&group, &sample("0.80"), &query, 0.8);
    let rollback = repo.run(clock.fresh());
    assert_decision(&rollback, "rollback", 50.0, 10.0, Some(0));
    assert!(
        reason(&rollback).contains("success-rate 0.8 < 0.95 (needs >= 0.95)"),
        "{rollback:#}"
    );
    // Locked after the rollback: reports name the step (`flagramp advance …`), the record says why.
    assert_eq!(rollback["locked"], json!(true), "{rollback:#}");
    assert_check(&rollback, &query, Some(0.8), "fail");
    repo.assert_flag(true, Some(10));

    // Still bad at the first stage: off.
    let disable = repo.run(clock.after(1));
    assert_decision(&disable, "disable", 10.0, 0.0, None);
    assert!(
        reason(&disable).contains("success-rate 0.8 < 0.95 (needs >= 0.95)"),
        "{disable:#}"
    );
    assert_check(&disable, &query, Some(0.8), "fail");
    let flags = repo.flags();
    assert_eq!(flags["flags"][FLAG_KEY]["state"], json!("DISABLED"));

    // Healthy again: the rollback lock holds until a person advances.
    push_and_wait(&group, &sample("0.99"), &query, 0.99);
    clock.fresh();
    let locked = repo.run(clock.after(10));
    assert_decision(&locked, "hold", 0.0, 0.0, None);
    assert_eq!(
        (locked["rule"].as_str(), locked["locked"].as_bool()),
        (Some("locked"), Some(true)),
        "{locked:#}"
    );
    assert_eq!(repo.flags(), flags, "a locked hold writes nothing");

    // A person advances: it starts again and then advances on its own.
    let manual = repo.decide(
        &[
            "advance",
            "live-regression",
            "--reason",
            "fix deployed",
            "--actor",
            "alice",
        ],
        clock.after(1),
    );
    assert_decision(&manual, "start", 0.0, 10.0, Some(0));
    assert_eq!(manual["actor"], json!("alice"));
    repo.assert_flag(true, Some(10));
    let again = repo.run(clock.after(3));
    assert_decision(&again, "advance", 10.0, 50.0, Some(1));
    assert_check(&again, &query, Some(0.99), "pass");
    repo.assert_flag(true, Some(50));
}

// ---------------------------------------------------------------------------------------------
// (c) no data
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs services: run scripts/test"]
fn an_empty_result_holds_with_no_data() {
    let metric = unique("flagramp_never_pushed");
    let query = format!("{metric}{{flag=\"c\"}}");
    assert_eq!(
        query_now(&query).expect("Prometheus answers"),
        None,
        "the metric must not exist"
    );
    let repo = Repo::new(&Rollout {
        name: "live-empty",
        source_url: prometheus_url(),
        query: query.clone(),
        failures_to_rollback: 1,
    });
    let mut clock = Clock::new();

    assert_decision(&repo.run(clock.fresh()), "start", 0.0, 10.0, Some(0));
    // Well past the bake: only the missing data holds it.
    let hold = repo.run(clock.after(10));
    assert_decision(&hold, "hold", 10.0, 10.0, Some(0));
    let check = assert_check(&hold, &query, None, "no_data");
    assert!(
        check["detail"].as_str().unwrap_or("").contains("no series"),
        "{check:#}"
    );
    assert!(reason(&hold).contains("success-rate has no data"), "{hold:#}");
    repo.assert_flag(true, Some(10));

    // Missing data is never a failure: with failures_to_rollback 1 it still does not roll back.
    let again = repo.run(clock.after(10));
    assert_decision(&again, "hold", 10.0, 10.0, Some(0));
    assert_check(&again, &query, None, "no_data");
    repo.assert_flag(true, Some(10));
}

#[test]
#[ignore = "needs services: run scripts/test"]
fn a_nan_result_holds_with_no_data() {
    let flag = unique("c_nan");
    let query = format!("flagramp_nan_errors{{flag=\"{flag}\"}} / flagramp_nan_requests{{flag=\"{flag}\"}}");
    let group = Group::new("flagramp_test_c_nan");
    let repo = Repo::new(&Rollout {
        name: "live-nan",
        source_url: prometheus_url(),
        query: query.clone(),
        failures_to_rollback: 1,
    });
    let mut clock = Clock::new();

    push_and_wait(
        &group,
        &format!("flagramp_nan_errors{{flag=\"{flag}\"}} 0\nflagramp_nan_requests{{flag=\"{flag}\"}} 0"),
        &query,
        f64::NAN,
    );
    assert_decision(&repo.run(clock.fresh()), "start", 0.0, 10.0, Some(0));
    let hold = repo.run(clock.after(10));
    assert_decision(&hold, "hold", 10.0, 10.0, Some(0));
    let check = assert_check(&hold, &query, None, "no_data");
    assert!(check["detail"].as_str().unwrap_or("").contains("NaN"), "{check:#}");
    assert!(reason(&hold).contains("success-rate has no data"), "{hold:#}");
    repo.assert_flag(true, Some(10));
}

// ---------------------------------------------------------------------------------------------
// (d) an unreachable source
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs services: run scripts/test"]
fn an_unreachable_source_holds_with_error_and_exit_0() {
    let port = free_port();
    let query = "flagramp_success_ratio{flag=\"d\"}".to_string();
    let repo = Repo::new(&Rollout {
        name: "live-unreachable",
        source_url: format!("http://127.0.0.1:{port}"),
        query: query.clone(),
        failures_to_rollback: 1,
    });
    let mut clock = Clock::new();

    assert_decision(&repo.run(clock.fresh()), "start", 0.0, 10.0, Some(0));
    for _ in 0..2 {
        let hold = repo.run(clock.after(10));
        assert_decision(&hold, "hold", 10.0, 10.0, Some(0));
        let check = assert_check(&hold, &query, None, "error");
        let detail = check["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains(&format!("127.0.0.1:{port}")),
            "the error names the server: {check:#}"
        );
        assert!(reason(&hold).contains("success-rate could not be measured"), "{hold:#}");
        repo.assert_flag(true, Some(10));
    }
}

#[test]
#[ignore = "needs services: run scripts/test"]
fn source_errors_neither_count_as_failures_nor_reset_the_count() {
    let flag = unique("d_count");
    let query = format!("flagramp_success_ratio{{flag=\"{flag}\"}}");
    let group = Group::new("flagramp_test_d_count");
    let down = Rollout {
        name: "live-flaky-source",
        source_url: format!("http://127.0.0.1:{}", free_port()),
        query: query.clone(),
        failures_to_rollback: 2,
    };
    let up = Rollout {
        source_url: prometheus_url(),
        ..down.clone()
    };
    let repo = Repo::new(&up);
    let mut clock = Clock::new();

    push_and_wait(
        &group,
        &format!("flagramp_success_ratio{{flag=\"{flag}\"}} 0.80"),
        &query,
        0.8,
    );
    assert_decision(&repo.run(clock.fresh()), "start", 0.0, 10.0, Some(0));

    // Two runs against a source that is down: holds, not failures.
    repo.write_spec(&down);
    for _ in 0..2 {
        let hold = repo.run(clock.after(5));
        assert_decision(&hold, "hold", 10.0, 10.0, Some(0));
        assert_check(&hold, &query, None, "error");
    }
    // The source is back with a failing value: the first failure of two, not a rollback.
    repo.write_spec(&up);
    let first = repo.run(clock.after(5));
    assert_decision(&first, "hold", 10.0, 10.0, Some(0));
    assert!(reason(&first).contains("failure 1 of 2"), "{first:#}");
    assert_check(&first, &query, Some(0.8), "fail");
    repo.assert_flag(true, Some(10));

    // Down again: holds and leaves the count at 1 ...
    repo.write_spec(&down);
    let between = repo.run(clock.after(5));
    assert_decision(&between, "hold", 10.0, 10.0, Some(0));
    assert_check(&between, &query, None, "error");
    repo.assert_flag(true, Some(10));

    // ... so the next failure is the second one.
    repo.write_spec(&up);
    let second = repo.run(clock.after(5));
    assert_decision(&second, "disable", 10.0, 0.0, None);
    assert!(reason(&second).contains("failure 2 of 2"), "{second:#}");
    assert_check(&second, &query, Some(0.8), "fail");
    assert_eq!(repo.flags()["flags"][FLAG_KEY]["state"], json!("DISABLED"));
}

// ---------------------------------------------------------------------------------------------
// (f) closed windows and control cohorts
// ---------------------------------------------------------------------------------------------

fn live_spec(name: &str, sources: &str, checks: &str) -> String {
    format!(
        "version: 1\nname: {name}\nflag:\n  provider: flagd\n  key: {FLAG_KEY}\n  flagd: {{ path: flags/flags.flagd.json }}\nstages:\n  - {{ percent: 10, bake: 2s }}\n  - {{ percent: 50, bake: 2s }}\n  - {{ percent: 100, bake: 2s }}\nsources:\n{sources}checks:\n{checks}policy:\n  failures_to_rollback: 5\n"
    )
}

/// A repository whose spec is `spec` (for rollout `name`).
fn repo_with_spec(name: &str, spec: &str) -> Repo {
    let repo = Repo::new(&Rollout {
        name,
        source_url: prometheus_url(),
        query: "unused".into(),
        failures_to_rollback: 5,
    });
    repo.repo.write(&format!(".github/rollouts/{name}.yml"), spec);
    repo
}

#[test]
#[ignore = "needs services: run scripts/test"]
fn queries_are_judged_one_lag_back_so_a_value_that_changed_inside_the_lag_is_not_yet_seen() {
    let flag = unique("lag");
    let query = format!("flagramp_success_ratio{{flag=\"{flag}\"}}");
    let group = Group::new("flagramp_test_lag");
    let url = prometheus_url();
    let sources = format!(
        "  fresh: {{ provider: prometheus, url: \"{url}\", lag: 0s }}\n  closed: {{ provider: prometheus, url: \"{url}\", lag: 5s }}\n"
    );
    let checks = format!(
        "  - {{ name: latest, source: fresh, query: '{query}', pass: \">= 0.95\" }}\n  - {{ name: closed, source: closed, query: '{query}', pass: \">= 0.95\" }}\n"
    );
    let repo = repo_with_spec("live-lag", &live_spec("live-lag", &sources, &checks));
    let mut clock = Clock::new();
    assert_decision(&repo.run(clock.fresh()), "start", 0.0, 10.0, Some(0));

    // A bad value for longer than the lag, then a good one: the last minute (here, 5 s) is
    // still filling, so the closed check must judge the bad value.
    push_and_wait(
        &group,
        &format!("flagramp_success_ratio{{flag=\"{flag}\"}} 0.80"),
        &query,
        0.8,
    );
    std::thread::sleep(StdDuration::from_secs(8));
    push_and_wait(
        &group,
        &format!("flagramp_success_ratio{{flag=\"{flag}\"}} 0.99"),
        &query,
        0.99,
    );
    let now = clock.fresh();
    let hold = repo.run(now);
    let latest = &hold["checks"][0];
    let closed = &hold["checks"][1];
    assert_eq!(latest["value"], json!(0.99), "{hold:#}");
    assert_eq!(
        parse_time(&latest["at"]),
        now,
        "lag 0s queries at the decision time: {hold:#}"
    );
    assert_eq!(
        closed["value"],
        json!(0.8),
        "the closed value, not the one still filling: {hold:#}"
    );
    assert_eq!(closed["verdict"], json!("fail"), "{hold:#}");
    assert_eq!(parse_time(&closed["at"]), now - Duration::seconds(5), "{hold:#}");
    assert_decision(&hold, "hold", 10.0, 10.0, Some(0));
}

#[test]
#[ignore = "needs services: run scripts/test"]
fn a_check_compares_the_exposed_cohort_with_the_control_cohort() {
    let flag = unique("control");
    let metric = "flagramp_latency_p99_ms";
    let on = format!("{metric}{{flag=\"{flag}\",variant=\"on\"}}");
    let off = format!("{metric}{{flag=\"{flag}\",variant=\"off\"}}");
    let group = Group::new("flagramp_test_control");
    let url = prometheus_url();
    let sources = format!("  prom: {{ provider: prometheus, url: \"{url}\", lag: 0s }}\n");
    let checks = format!(
        "  - name: latency-p99\n    source: prom\n    query: '{on}'\n    control: '{off}'\n    pass: \"<= control * 1.1\"\n"
    );
    let repo = repo_with_spec("live-control", &live_spec("live-control", &sources, &checks));
    push_and_wait(&group, &format!("{on} 312\n{off} 270"), &on, 312.0);
    wait_for_value(&off, 270.0);
    let mut clock = Clock::new();
    assert_decision(&repo.run(clock.fresh()), "start", 0.0, 10.0, Some(0));

    let hold = repo.run(clock.after(3));
    assert_decision(&hold, "hold", 10.0, 10.0, Some(0));
    assert!(
        reason(&hold).contains("latency-p99 312 > 1.1 × control 270 = 297 (needs <= control * 1.1)"),
        "{hold:#}"
    );
    assert_eq!(hold["checks"][0]["control_value"], json!(270.0), "{hold:#}");
    assert_eq!(hold["checks"][0]["verdict"], json!("fail"), "{hold:#}");

    push_and_wait(&group, &format!("{on} 290\n{off} 270"), &on, 290.0);
    let advance = repo.run(clock.fresh());
    assert_decision(&advance, "advance", 10.0, 50.0, Some(1));
    assert_eq!(advance["checks"][0]["value"], json!(290.0), "{advance:#}");
    assert_eq!(advance["checks"][0]["control_value"], json!(270.0), "{advance:#}");
}
