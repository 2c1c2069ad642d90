//! `flagramp simulate` (docs/statistics.md, "Backtests"): a spec replayed over past metric data
//! with the flag and state in memory. Command checks see each tick as `FLAGRAMP_NOW`; a real
//! Prometheus over a backfilled history rolls back at the known time, with the bound in the
//! reason; and nothing on disk changes.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use serde_json::Value;

use crate::support::backfill::{openmetrics, BackfilledPrometheus, Series};
use crate::support::repo::{json_of, TempRepo};
use crate::support::FLAGD_FILE;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn decisions(records: &[Value]) -> Vec<&str> {
    records.iter().map(|r| r["decision"].as_str().unwrap()).collect()
}

const COMMAND_SPEC: &str = "version: 1
name: demo
flag: { provider: flagd, key: new-checkout, flagd: { path: flags.flagd.json } }
stages: [{ percent: 10, bake: 1h }, { percent: 50, bake: 1h }, 100]
checks:
  - name: success
    command: [\"./check.sh\"]
    pass: \">= 0.95\"
";

/// A check that reads the tick it is asked for: healthy before 03:00, failing from then on.
fn command_repo() -> TempRepo {
    let repo = TempRepo::new();
    repo.write(".github/rollouts/demo.yml", COMMAND_SPEC);
    repo.write("flags.flagd.json", FLAGD_FILE);
    repo.script(
        "check.sh",
        "case \"$FLAGRAMP_NOW\" in 2026-11-01T0[012]:*) echo 0.99 ;; *) echo 0.5 ;; esac",
    );
    repo
}

#[test]
fn a_backtest_follows_the_spec_through_time_and_commands_see_each_tick() {
    let repo = command_repo();
    let args = [
        "simulate",
        "--from",
        "2026-11-01T00:00:00Z",
        "--to",
        "2026-11-01T04:10:00Z",
        "--every",
        "30m",
        "--output",
        "json",
    ];
    let out = repo.flagramp(&args).output().unwrap();
    let records: Vec<Value> = json_of(&out, &args, 0);
    assert_eq!(
        decisions(&records),
        ["start", "hold", "advance", "hold", "advance", "hold", "rollback", "rollback", "disable"],
        "{records:#?}"
    );
    // One flat array, each record with its tick.
    let ticks: Vec<&str> = records.iter().map(|r| r["at"].as_str().unwrap()).collect();
    assert_eq!(ticks[0], "2026-11-01T00:00:00Z");
    assert_eq!(ticks[8], "2026-11-01T04:00:00Z");
    assert_eq!(records[6]["checks"][0]["value"], 0.5, "the command saw 03:00");
    assert_eq!(records[6]["checks"][0]["at"], "2026-11-01T03:00:00Z");
    assert!(
        records.iter().all(|r| r.get("diverged").is_none()),
        "no cohort data, nothing to diverge from"
    );

    let text_args = &args[..7];
    let out = repo.flagramp(text_args).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(
            "Backtest from 2026-11-01 00:00 UTC to 2026-11-01 04:10 UTC, every 30m: 9 evaluations per rollout"
        ),
        "{text}"
    );
    assert!(
        text.contains("  2026-11-01 03:00 UTC  rollback    100% → 50%   success 0.5 < 0.95 (needs >= 0.95)"),
        "{text}"
    );
    for line in [
        "    started      2026-11-01 00:00 UTC (0% → 10%)",
        "    advanced     2026-11-01 01:00 UTC (10% → 50%), 2026-11-01 02:00 UTC (50% → 100%)",
        "    held         3 of 9 evaluations",
        "    rolled back  2026-11-01 03:00 UTC (100% → 50%), 2026-11-01 03:30 UTC (50% → 10%), 2026-11-01 04:00 UTC (10% → 0%)",
        "    completed    never",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// Every file under `root`, with its bytes.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn a_backtest_reads_and_changes_nothing_but_its_queries() {
    let repo = command_repo();
    // A real rollout already under way: its state and flag must neither be read nor touched.
    let run = ["run", "--now", "2026-11-01T00:00:00Z"];
    let out = repo.flagramp_json(&run).output().unwrap();
    let _: Vec<Value> = json_of(&out, &run, 0);
    let before = snapshot(repo.root());
    assert!(
        before.keys().any(|k| k.starts_with(".flagramp/state/")),
        "{:?}",
        before.keys()
    );
    let args = [
        "simulate",
        "--from",
        "2026-11-01T00:00:00Z",
        "--to",
        "2026-11-01T04:00:00Z",
        "--output",
        "json",
    ];
    let out = repo.flagramp(&args).output().unwrap();
    let records: Vec<Value> = json_of(&out, &args, 0);
    assert_eq!(
        records[0]["decision"], "start",
        "the backtest starts from off, not from the real state"
    );
    assert_eq!(records.len(), 17);
    assert_eq!(
        snapshot(repo.root()),
        before,
        "the flag file, the state and every other file are unchanged"
    );
}

#[test]
fn a_backtest_with_no_ticks_or_a_bad_time_is_a_usage_error() {
    let repo = command_repo();
    for (args, says) in [
        (
            vec![
                "simulate",
                "--from",
                "2026-11-02T00:00:00Z",
                "--to",
                "2026-11-01T00:00:00Z",
            ],
            "--to (2026-11-01T00:00:00+00:00) must be later than --from",
        ),
        (
            vec!["simulate", "--from", "2026-11-01", "--to", "2026-11-02T00:00:00Z"],
            "--from `2026-11-01` is not an RFC 3339 time",
        ),
        (
            vec![
                "simulate",
                "--from",
                "2026-11-01T00:00:00Z",
                "--to",
                "2026-11-02T00:00:00Z",
                "--every",
                "0s",
            ],
            "--every must be longer than 0s",
        ),
        (
            vec![
                "simulate",
                "--from",
                "2020-01-01T00:00:00Z",
                "--to",
                "2026-01-01T00:00:00Z",
                "--every",
                "1m",
            ],
            "more than 100000: shorten the span or lengthen --every",
        ),
        (
            vec![
                "simulate",
                "--from",
                "2026-11-01T00:00:00Z",
                "--to",
                "2026-11-02T00:00:00Z",
                "--exposure",
                "120",
            ],
            "--exposure `120`",
        ),
    ] {
        let out = repo.flagramp(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// A real Prometheus over a scripted history
// ---------------------------------------------------------------------------------------------

/// Requests a minute, both cohorts together.
const PER_MINUTE: f64 = 1_000.0;

/// The scripted history: the real rollout exposed 10% of requests for its first hour, 25% for the
/// second and 50% after; every cohort fails 1% of requests, until the canary's rate goes to 5%
/// at `onset`. Counters sampled every minute from half an hour before `t0`.
fn history(t0: DateTime<Utc>, onset: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let share = |t: DateTime<Utc>| {
        if t < t0 + Duration::hours(1) {
            0.10
        } else if t < t0 + Duration::hours(2) {
            0.25
        } else {
            0.50
        }
    };
    let mut totals = [0.0f64; 4]; // requests on, errors on, requests off, errors off
    let mut samples: [Vec<(DateTime<Utc>, f64)>; 4] = Default::default();
    let mut t = t0 - Duration::minutes(30);
    while t <= end {
        let on = PER_MINUTE * share(t);
        let off = PER_MINUTE - on;
        let canary_rate = if t >= onset { 0.05 } else { 0.01 };
        totals[0] += on;
        totals[1] += on * canary_rate;
        totals[2] += off;
        totals[3] += off * 0.01;
        for (i, total) in totals.iter().enumerate() {
            samples[i].push((t, *total));
        }
        t += Duration::minutes(1);
    }
    let [requests_on, errors_on, requests_off, errors_off] = samples;
    openmetrics(&[
        Series {
            name: "sim_requests_total".into(),
            labels: "variant=\"on\"".into(),
            samples: requests_on,
        },
        Series {
            name: "sim_requests_total".into(),
            labels: "variant=\"off\"".into(),
            samples: requests_off,
        },
        Series {
            name: "sim_errors_total".into(),
            labels: "variant=\"on\"".into(),
            samples: errors_on,
        },
        Series {
            name: "sim_errors_total".into(),
            labels: "variant=\"off\"".into(),
            samples: errors_off,
        },
    ])
}

fn compare_spec(url: &str) -> String {
    format!(
        "version: 1
name: checkout
flag: {{ provider: flagd, key: new-checkout, flagd: {{ path: flags.flagd.json }} }}
stages: [{{ percent: 10, bake: 1h }}, {{ percent: 25, bake: 1h }}, {{ percent: 50, bake: 3h }}, 100]
sources:
  prom: {{ provider: prometheus, url: '{url}' }}
checks:
  - name: errors-vs-control
    source: prom
    compare:
      canary:
        events: 'sum(increase(sim_errors_total{{variant=\"on\"}}[$window]))'
        total: 'sum(increase(sim_requests_total{{variant=\"on\"}}[$window]))'
      control:
        events: 'sum(increase(sim_errors_total{{variant=\"off\"}}[$window]))'
        total: 'sum(increase(sim_requests_total{{variant=\"off\"}}[$window]))'
"
    )
}

#[test]
#[ignore = "needs services: run scripts/test"]
fn a_backtest_on_a_real_prometheus_advances_twice_then_rolls_back_when_the_regression_begins() {
    // Six hours ago, on the hour, so the history lies in the past as real data would.
    let t0 = (Utc::now() - Duration::hours(6))
        .duration_trunc(Duration::hours(1))
        .unwrap();
    let onset = t0 + Duration::minutes(150);
    let end = t0 + Duration::hours(3);
    let prometheus = BackfilledPrometheus::start(&history(t0, onset, end));
    let repo = TempRepo::new();
    repo.write(".github/rollouts/checkout.yml", &compare_spec(prometheus.url()));
    repo.write("flags.flagd.json", FLAGD_FILE);
    let (from, to) = (rfc3339(t0), rfc3339(end));
    let args = ["simulate", "--from", &from, "--to", &to, "--output", "json"];
    let out = repo.flagramp(&args).output().unwrap();
    let records: Vec<Value> = json_of(&out, &args, 0);
    assert_eq!(
        decisions(&records),
        [
            "start", "hold", "hold", "hold", // 10%
            "advance", "hold", "hold", "hold", // 25%
            "advance", "hold", "hold",     // 50%, healthy until 2h30
            "rollback", // 2h45: the first tick with data from after the onset
            "rollback", // 3h00: judged at 25% on data gathered at 50%, failing still
        ],
        "{records:#?}"
    );
    let rollback = &records[11];
    assert_eq!(rollback["at"], rfc3339(t0 + Duration::minutes(165)));
    assert_eq!(
        (rollback["from_percent"].as_f64(), rollback["to_percent"].as_f64()),
        (Some(50.0), Some(25.0))
    );
    let check = &rollback["checks"][0];
    assert_eq!(check["verdict"], "fail");
    assert_eq!(
        check["at"],
        rfc3339(t0 + Duration::minutes(164)),
        "queried one lag back"
    );
    let compare = &check["compare"];
    let bound = compare["lower_bound"].as_f64().unwrap();
    assert!(
        bound > 0.0 && bound < compare["difference"].as_f64().unwrap(),
        "{compare:#}"
    );
    assert_eq!(compare["level"], 0.99);
    // Judged on the data since the last healthy look (queried at 2h29), not diluted by the
    // half hour before.
    assert_eq!(compare["since"], rfc3339(t0 + Duration::minutes(149)));
    let rate = compare["canary"]["rate"].as_f64().unwrap();
    assert!((0.045..0.055).contains(&rate), "{compare:#}");
    let reason = rollback["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("errors-vs-control canary ")
            && reason.contains(" vs control 1.0%: +")
            && reason.contains(" pt, at least +")
            && reason.contains(" pt at 99% (")
            && reason.ends_with("failure 1 of 1, so back to stage 2 of 4 (25%)"),
        "{reason}"
    );
    // The split in the data follows the simulated one until the rollback; after it the data
    // were gathered at 50%, the simulation judges them at 25%.
    let diverged: Vec<bool> = records.iter().map(|r| r["diverged"] == true).collect();
    assert_eq!(diverged.iter().filter(|d| **d).count(), 1, "{diverged:?}");
    assert!(diverged[12]);

    // Told that the data were gathered at 10% throughout, the sample ratio test holds at 25%:
    // those data cannot be the ones a 25% stage would have made.
    let args = [
        "simulate",
        "--from",
        &from,
        "--to",
        &to,
        "--exposure",
        "10",
        "--output",
        "json",
    ];
    let out = repo.flagramp(&args).output().unwrap();
    let records: Vec<Value> = json_of(&out, &args, 0);
    let held = &records[5];
    assert_eq!(
        (held["decision"].as_str(), held["rule"].as_str()),
        (Some("hold"), Some("srm")),
        "{held:#}"
    );
    assert_eq!(held["diverged"], true);
    assert!(
        held["reason"].as_str().unwrap().contains("sample ratio mismatch: "),
        "{}",
        held["reason"]
    );
    assert!(
        records[1].get("diverged").is_none(),
        "judged at 10% as the data were gathered"
    );
}

/// A `compare` check on Datadog and on an http source: each count is one query of its own, over
/// the stage's window up to one lag back, and the counts are judged like Prometheus's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_checks_count_on_datadog_and_http_sources_with_one_query_per_count() {
    use wiremock::matchers::{body_partial_json, body_string_contains, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    let t0: DateTime<Utc> = "2026-11-24T08:00:00Z".parse().unwrap();
    // The second tick, 15 minutes in, asks for the stage's data up to one lag (1m) back.
    let (from_ms, to_ms) = (t0.timestamp_millis(), (t0 + Duration::minutes(14)).timestamp_millis());
    for (query, count) in [
        ("errors{variant:on}", 10.0),
        ("hits{variant:on}", 1_000.0),
        ("errors{variant:off}", 90.0),
        ("hits{variant:off}", 9_000.0),
    ] {
        Mock::given(method("POST"))
            .and(path("/api/v2/query/scalar"))
            .and(body_string_contains(query))
            .and(body_partial_json(serde_json::json!({
                "data": { "attributes": { "from": from_ms, "to": to_ms } }
            })))
            .respond_with(ResponseTemplate::new(200).set_body_string(format!(
                r#"{{"data":{{"type":"scalar_response","attributes":{{"columns":[{{"name":"query","type":"number","values":[{count}]}}]}}}}}}"#
            )))
            .expect(1)
            .mount(&server)
            .await;
    }
    for (variant, what, count) in [
        ("on", "failed", 12),
        ("on", "all", 1_000),
        ("off", "failed", 90),
        ("off", "all", 9_000),
    ] {
        Mock::given(method("GET"))
            .and(path("/slo/counts"))
            .and(query_param("variant", variant))
            .and(query_param("what", what))
            .respond_with(ResponseTemplate::new(200).set_body_string(format!(r#"{{"data":{{"count":"{count}"}}}}"#)))
            .expect(1)
            .mount(&server)
            .await;
    }
    let url = server.uri();
    let repo = TempRepo::new();
    repo.write(
        ".github/rollouts/demo.yml",
        &format!(
            "version: 1
name: demo
flag: {{ provider: flagd, key: new-checkout, flagd: {{ path: flags.flagd.json }} }}
stages: [{{ percent: 10, bake: 1h }}, 50, 100]
sources:
  dd: {{ provider: datadog, url: '{url}', api_key_env: DD_API_KEY, app_key_env: DD_APP_KEY }}
  slo: {{ provider: http, url: '{url}/slo' }}
checks:
  - name: dd-errors-vs-control
    source: dd
    compare:
      canary: {{ events: 'sum:errors{{variant:on}}.as_count()', total: 'sum:hits{{variant:on}}.as_count()' }}
      control: {{ events: 'sum:errors{{variant:off}}.as_count()', total: 'sum:hits{{variant:off}}.as_count()' }}
  - name: slo-failures-vs-control
    source: slo
    compare:
      canary: {{ events: /counts?variant=on&what=failed, total: /counts?variant=on&what=all }}
      control: {{ events: /counts?variant=off&what=failed, total: /counts?variant=off&what=all }}
    value: /data/count
"
        ),
    );
    let root = repo.root().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        crate::support::repo::flagramp_in(&root)
            .args([
                "simulate",
                "--from",
                "2026-11-24T08:00:00Z",
                "--to",
                "2026-11-24T08:15:00Z",
            ])
            .args(["--output", "json"])
            .env("DD_API_KEY", "dd-api-key-0123456789")
            .env("DD_APP_KEY", "dd-app-key-9876543210")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let records: Vec<Value> = json_of(&out, &["simulate"], 0);
    assert_eq!(decisions(&records), ["start", "hold"], "{records:#?}");
    let checks = records[1]["checks"].as_array().unwrap();
    for (check, canary_events) in checks.iter().zip([10.0, 12.0]) {
        assert_eq!(check["verdict"], "pass", "{check:#}");
        let compare = &check["compare"];
        assert_eq!(compare["canary"]["events"].as_f64(), Some(canary_events), "{compare:#}");
        assert_eq!(compare["canary"]["total"].as_f64(), Some(1_000.0));
        assert_eq!(compare["control"]["total"].as_f64(), Some(9_000.0));
        assert_eq!(compare["since"], "2026-11-24T08:00:00Z");
        assert_eq!(check["at"], "2026-11-24T08:14:00Z");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("dd-api-key-0123456789") && !text.contains("dd-app-key-9876543210"));
}
