//! The real binary against a temporary repository: locking, command checks, Prometheus requests
//! (against a local mock), secrets, and recovery of a crashed run's claim.

use std::process::Output;

use serde_json::Value;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::repo::TempRepo;

const NOW: &str = "2026-11-24T09:00:00Z";
/// One minute (the default `lag`) before `NOW`: queries judge closed windows only.
const QUERY_EPOCH: &str = "1795510740.000";

struct Repo(TempRepo);

impl std::ops::Deref for Repo {
    type Target = TempRepo;

    fn deref(&self) -> &TempRepo {
        &self.0
    }
}

impl Repo {
    fn new(spec: &str) -> Repo {
        let repo = Repo(TempRepo::new());
        repo.write(".github/rollouts/demo.yml", spec);
        repo.write(
            "flags/flags.flagd.json",
            r#"{"flags":{"demo":{"state":"DISABLED","variants":{"on":true,"off":false},"defaultVariant":"off"}}}"#,
        );
        repo
    }

    fn run(&self, args: &[&str]) -> Output {
        self.flagramp(args).output().unwrap()
    }

    /// Runs `flagramp` on a blocking thread, so a mock server in this test keeps answering.
    async fn run_async(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = self.flagramp(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    fn state(&self) -> Value {
        self.read_json(".flagramp/state/demo.json")
    }

    fn flag(&self) -> Value {
        self.read_json("flags/flags.flagd.json")["flags"]["demo"].clone()
    }
}

fn decisions(out: &Output) -> Vec<Value> {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The decisions of a second `run --output json` against the Prometheus at `uri` (the first run
/// starts the rollout, so the second one queries the check); `auth` is the check's extra lines.
async fn second_run_decisions(uri: &str, auth: &str) -> Vec<Value> {
    let repo = Repo::new(&prom_spec(uri, auth));
    assert_eq!(repo.run(&["run", "--now", NOW]).status.code(), Some(0));
    decisions(&repo.run_async(&["run", "--now", NOW, "--output", "json"], &[]).await)
}

fn command_spec(argv: &str, extra: &str) -> String {
    format!(
        "version: 1\nname: demo\nflag: {{ provider: flagd, key: demo, flagd: {{ path: flags/flags.flagd.json }} }}\nstages: [{{ percent: 10, bake: 0s }}, 50, 100]\nchecks:\n  - {{ name: probe, command: {argv}, pass: \">= 1\", timeout: 2s }}\n{extra}"
    )
}

#[test]
fn two_local_runs_cannot_both_act() {
    let repo = Repo::new(&command_spec(r#"["./ok.sh"]"#, ""));
    repo.script("ok.sh", "echo 1");
    std::fs::create_dir_all(repo.root().join(".flagramp/state")).unwrap();
    let lock = std::fs::File::create(repo.root().join(".flagramp/state/.lock")).unwrap();
    lock.lock().unwrap();
    let out = repo.run(&["run", "--now", NOW, "--lock-wait", "0s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another flagramp run still holds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(repo.flag()["state"], "DISABLED", "the flag was not touched");
    drop(lock);
    let out = repo.run(&["run", "--now", NOW]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(repo.flag()["state"], "ENABLED");
}

#[test]
fn command_checks_run_in_the_repository_root_with_rollout_percent_and_now() {
    let repo = Repo::new(&command_spec(r#"["./env.sh", "--fast"]"#, ""));
    repo.script("env.sh", "printf '%s|%s|%s|%s|%s' \"$FLAGRAMP_ROLLOUT\" \"$FLAGRAMP_PERCENT\" \"$FLAGRAMP_NOW\" \"$PWD\" \"$1\" > seen.txt; echo 1");
    let sub = repo.root().join("flags");
    // Start, then evaluate from a subdirectory's point of view: paths stay relative to the root.
    assert_eq!(repo.run(&["run", "--now", NOW]).status.code(), Some(0));
    let out = repo.run(&["run", "--now", "2026-11-24T09:05:00Z", "--output", "json"]);
    let d = decisions(&out);
    assert_eq!(d[0]["decision"], "advance", "{d:?}");
    let seen = std::fs::read_to_string(repo.root().join("seen.txt")).unwrap();
    let root = repo.root().canonicalize().unwrap();
    assert_eq!(
        seen,
        format!("demo|10|2026-11-24T09:05:00+00:00|{}|--fast", root.display())
    );
    assert!(sub.exists());
}

#[test]
fn command_check_failures_are_errors_that_hold_never_failures() {
    for (name, body, words) in [
        ("exit", "echo boom >&2; exit 3", "exited with 3: boom"),
        ("words", "echo not a number", "printed 3 words"),
        ("text", "echo high", "printed `high` instead of a number"),
        ("empty", "true", "printed no number"),
        ("slow", "sleep 5; echo 1", "timed out after 2s"),
    ] {
        let repo = Repo::new(&command_spec(&format!("[\"./{name}.sh\"]"), ""));
        repo.script(&format!("{name}.sh"), "echo 1");
        assert_eq!(repo.run(&["run", "--now", NOW]).status.code(), Some(0));
        repo.script(&format!("{name}.sh"), body);
        let out = repo.run(&["run", "--now", "2026-11-24T10:00:00Z", "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{name}: source trouble is still a decision");
        let d = decisions(&out);
        assert_eq!(d[0]["decision"], "hold", "{name}: {d:?}");
        assert_eq!(d[0]["checks"][0]["verdict"], "error", "{name}");
        let detail = d[0]["checks"][0]["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{name}: `{detail}` should contain `{words}`");
        assert_eq!(repo.state()["consecutive_failures"], 0, "{name}");
        assert_eq!(
            repo.flag()["targeting"]["fractional"][0][1],
            10000,
            "{name}: flag unchanged"
        );
    }
}

#[test]
fn a_missing_check_program_is_an_error_with_a_hint() {
    let repo = Repo::new(&command_spec(r#"["./scripts/missing.sh"]"#, ""));
    assert_eq!(repo.run(&["run", "--now", NOW]).status.code(), Some(0));
    let d = decisions(&repo.run(&["plan", "--now", "2026-11-24T10:00:00Z", "--output", "json"]));
    let detail = d[0]["checks"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("was not found") && detail.contains("relative to the repository root"),
        "{detail}"
    );
}

#[test]
fn a_crashed_runs_claim_is_finished_from_the_flag_and_never_reported_as_drift() {
    let repo = Repo::new(&command_spec(r#"["./ok.sh"]"#, ""));
    repo.script("ok.sh", "echo 1");
    assert_eq!(repo.run(&["run", "--now", NOW]).status.code(), Some(0));
    let before = repo.state();
    // Simulate a run that claimed 10% -> 50%, set the flag, and died before recording.
    let mut then = before.clone();
    then["last_set"] = serde_json::json!({ "enabled": true, "percent": 50.0 });
    then["stage_entered_at"] = Value::String("2026-11-24T09:30:00Z".into());
    let mut claimed = before.clone();
    claimed["pending"] = serde_json::json!({ "from": { "enabled": true, "percent": 10.0 }, "to": { "enabled": true, "percent": 50.0 }, "then": then });
    repo.write(
        ".flagramp/state/demo.json",
        &serde_json::to_string_pretty(&claimed).unwrap(),
    );
    let mut flags: Value =
        serde_json::from_slice(&std::fs::read(repo.root().join("flags/flags.flagd.json")).unwrap()).unwrap();
    flags["flags"]["demo"]["targeting"] = serde_json::json!({ "fractional": [["on", 50000], ["off", 50000]] });
    repo.write("flags/flags.flagd.json", &flags.to_string());
    let d = decisions(&repo.run(&["run", "--now", "2026-11-24T09:35:00Z", "--output", "json"]));
    assert_eq!(d[0]["decision"], "hold", "{d:?}");
    assert_eq!(d[0]["from_percent"], 50.0);
    let state = repo.state();
    assert!(state["pending"].is_null());
    assert_eq!(state["last_set"]["percent"], 50.0);
}

fn prom_spec(url: &str, auth: &str) -> String {
    format!(
        "version: 1\nname: demo\nflag: {{ provider: flagd, key: demo, flagd: {{ path: flags/flags.flagd.json }} }}\nstages: [{{ percent: 10, bake: 0s }}, 50, 100]\nsources:\n  prom:\n    provider: prometheus\n    url: {url}\n{auth}\nchecks:\n  - name: success-rate\n    source: prom\n    query: sum(rate(ok[5m])) / sum(rate(all[5m]))\n    pass: \">= 0.95\"\n    timeout: 3s\n"
    )
}

fn vector(value: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string(format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1795510800,"{value}"]}}]}}}}"#
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_queries_one_lag_before_the_decision_time_with_bearer_auth_and_never_prints_the_token() {
    let server = MockServer::start().await;
    let token = "s3cret-token-value";
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param("query", "sum(rate(ok[5m])) / sum(rate(all[5m]))"))
        .and(query_param("time", QUERY_EPOCH))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(vector("0.99"))
        .expect(1)
        .mount(&server)
        .await;
    let repo = Repo::new(&prom_spec(&server.uri(), "    token_env: PROM_TOKEN"));
    // An already-started rollout, so that the run queries the check.
    repo.write("flags/flags.flagd.json", r#"{"flags":{"demo":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"fractional":[["on",10000],["off",90000]]}}}}"#);
    let out = repo
        .run_async(
            &["advance", "demo", "--now", NOW, "--output", "json", "--actor", "alice"],
            &[("PROM_TOKEN", token)],
        )
        .await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The flag was on with no state: advance adopts it, checks pass, then it moves up.
    let d = decisions(&out);
    assert_eq!(d[0]["decision"], "advance", "{text}");
    assert_eq!(d[0]["checks"][0]["value"], 0.99);
    assert!(!text.contains(token));
    assert!(!std::fs::read_to_string(repo.root().join(".flagramp/state/demo.json"))
        .unwrap()
        .contains(token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_basic_auth_and_headers_from_env() {
    let server = MockServer::start().await;
    // "user:pa55word" in base64.
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(header("authorization", "Basic dXNlcjpwYTU1d29yZA=="))
        .and(header("x-scope-orgid", "tenant-42"))
        .and(header("x-static", "plain"))
        .respond_with(vector("0.97"))
        .expect(1)
        .mount(&server)
        .await;
    let auth = "    basic_auth: { username_env: PROM_USER, password_env: PROM_PASS }\n    headers: { X-Scope-OrgID: { env: PROM_TENANT }, X-Static: plain }";
    let repo = Repo::new(&prom_spec(&server.uri(), auth));
    assert_eq!(repo.run(&["run", "--now", NOW]).status.code(), Some(0));
    let envs = [
        ("PROM_USER", "user"),
        ("PROM_PASS", "pa55word"),
        ("PROM_TENANT", "tenant-42"),
    ];
    let out = repo.run_async(&["run", "--now", NOW, "--output", "json"], &envs).await;
    let d = decisions(&out);
    assert_eq!(d[0]["decision"], "advance", "{d:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("pa55word"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_variable_holds_with_a_hint_and_no_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(vector("1"))
        .expect(0)
        .mount(&server)
        .await;
    let d = second_run_decisions(&server.uri(), "    token_env: PROM_TOKEN_NOT_SET").await;
    assert_eq!(d[0]["decision"], "hold");
    let detail = d[0]["checks"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("PROM_TOKEN_NOT_SET is not set"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_server_errors_are_retried_a_bounded_number_of_times() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .respond_with(vector("0.99"))
        .expect(1)
        .mount(&server)
        .await;
    let d = second_run_decisions(&server.uri(), "").await;
    assert_eq!(d[0]["decision"], "advance", "{d:?}");

    let always_down = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(3)
        .mount(&always_down)
        .await;
    let d = second_run_decisions(&always_down.uri(), "").await;
    assert_eq!(d[0]["decision"], "hold");
    assert_eq!(d[0]["checks"][0]["verdict"], "error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_query_is_an_error_with_prometheus_own_message() {
    let server = MockServer::start().await;
    // Recorded from Prometheus 2.42 (shared/fixtures/prometheus-live/prom-query-error.json).
    let body = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:16: parse error: unclosed left parenthesis"}"#;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_string(body))
        .expect(1)
        .mount(&server)
        .await;
    let d = second_run_decisions(&server.uri(), "").await;
    assert_eq!(d[0]["decision"], "hold");
    let detail = d[0]["checks"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("bad_data") && detail.contains("unclosed left parenthesis"),
        "{detail}"
    );
}

#[test]
fn a_command_that_prints_a_secret_is_redacted() {
    let spec = prom_spec("http://127.0.0.1:9", "    token_env: PROM_TOKEN").replace(
        "checks:\n",
        "checks:\n  - { name: leaky, command: [\"./leak.sh\"], env: [PROM_TOKEN], pass: \">= 1\" }\n",
    );
    let repo = Repo::new(&spec);
    repo.script("leak.sh", "echo \"token is $PROM_TOKEN\" >&2; exit 1");
    assert_eq!(repo.run(&["run", "--now", NOW]).status.code(), Some(0));
    let out = repo
        .flagramp(&["run", "--now", NOW, "--output", "json"])
        .env("PROM_TOKEN", "very-secret-123")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("very-secret-123"), "{text}");
    assert!(text.contains("token is ***"), "{text}");
}

/// The binary, end to end, on a Datadog source and an http source: keys and tokens from the
/// environment go out as headers, the evaluation time is one lag back, a shadow check that fails
/// is shown as shadow and does not stop the advance, and no secret is printed or stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadog_and_http_sources_gate_an_advance_and_never_print_their_secrets() {
    let server = MockServer::start().await;
    let (api_key, app_key, slo_token) = ("dd-api-key-0123456789", "dd-app-key-9876543210", "slo-token-abcdef0123");
    // 2026-11-24T09:00:00Z minus the Datadog source's 2m lag, and the 10m default window.
    let to_ms: i64 = 1_795_510_800_000 - 120_000;
    Mock::given(method("POST"))
        .and(path("/api/v2/query/scalar"))
        .and(header("dd-api-key", api_key))
        .and(header("dd-application-key", app_key))
        .and(wiremock::matchers::body_partial_json(serde_json::json!({
            "data": { "type": "scalar_request", "attributes": { "from": to_ms - 600_000, "to": to_ms } }
        })))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"data":{"type":"scalar_response","attributes":{"columns":[{"name":"a","type":"number","values":[0.004]}]}}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/slo/burn"))
        .and(query_param("service", "checkout"))
        .and(header("authorization", format!("Bearer {slo_token}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"data":{"burn_rate":"3.5"}}"#))
        .expect(1)
        .mount(&server)
        .await;
    let url = server.uri();
    let spec = format!(
        "version: 1\nname: demo\nflag: {{ provider: flagd, key: demo, flagd: {{ path: flags/flags.flagd.json }} }}\nstages: [{{ percent: 10, bake: 0s }}, 50, 100]\nsources:\n  dd: {{ provider: datadog, url: \"{url}\", api_key_env: DD_API_KEY, app_key_env: DD_APP_KEY, lag: 2m }}\n  slo: {{ provider: http, url: \"{url}/slo\", headers: {{ Authorization: {{ env: SLO_AUTH }} }} }}\nchecks:\n  - {{ name: error-rate, source: dd, query: \"sum:errors{{service:checkout}}.as_count()\", reduce: sum, pass: \"<= 0.01\" }}\n  - {{ name: burn-rate, source: slo, query: \"/burn?service=checkout\", value: /data/burn_rate, pass: \"< 2\", gate: false }}\n"
    );
    let repo = Repo::new(&spec);
    repo.write("flags/flags.flagd.json", r#"{"flags":{"demo":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"fractional":[["on",10000],["off",90000]]}}}}"#);
    let bearer = format!("Bearer {slo_token}");
    let envs = [
        ("DD_API_KEY", api_key),
        ("DD_APP_KEY", app_key),
        ("SLO_AUTH", bearer.as_str()),
    ];
    let out = repo
        .run_async(&["advance", "demo", "--now", NOW, "--actor", "alice"], &envs)
        .await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("[ok  ] error-rate = 0.004"), "{text}");
    assert!(text.contains("[FAIL] burn-rate (shadow) = 3.5"), "{text}");
    let json = repo.run_async(&["status", "--output", "json"], &envs).await;
    let state = std::fs::read_to_string(repo.root().join(".flagramp/state/demo.json")).unwrap();
    let record: Value = serde_json::from_str(&state).unwrap();
    let last = record["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["decision"], "advance", "{state}");
    assert_eq!(last["checks"][0]["at"], "2026-11-24T08:58:00Z", "{state}");
    assert_eq!(last["checks"][1]["gate"], false, "{state}");
    for secret in [api_key, app_key, slo_token] {
        assert!(!text.contains(secret) && !state.contains(secret), "{secret} leaked");
        assert!(!String::from_utf8_lossy(&json.stdout).contains(secret));
    }
}
