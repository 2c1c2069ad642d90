//! The Unleash provider: against a real Unleash 8.2.0 (what SDKs see after each stage, drift
//! between two runs of the real binary, no partial PUT, stickiness and group id kept), and
//! against wiremock for what the open-source server cannot produce (release plans, change
//! requests) and for every provider error, with canned answers checked against Unleash 8.2.0's
//! own OpenAPI document (`tests/fixtures/unleash/`, see the fixtures README).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use flagramp::percent::Percent;

use crate::support::pct;
use flagramp::provider::unleash::{UnleashFlag, STRATEGY_TITLE};
use flagramp::provider::{ChangeNote, FlagProvider, ProviderError};
use flagramp::record::{DecisionKind, DecisionRecord};
use flagramp::state::FlagValue;

use crate::conformance::unique;
use crate::conformance::unleash::{value_of, Server, ENVIRONMENT, PROJECT};
use crate::support::bench::{check_spec, Bench};
use crate::support::openapi::OpenApi;
use crate::support::repo::TempRepo;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/unleash")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Unleash 8.2.0's own OpenAPI document (`GET /docs/openapi.json`), loaded once.
fn openapi() -> &'static OpenApi {
    static API: OnceLock<OpenApi> = OnceLock::new();
    API.get_or_init(|| OpenApi::from_document(fixture("openapi-8.2.0.json")))
}

fn assert_valid(errors: Vec<String>) {
    assert!(
        errors.is_empty(),
        "not what Unleash 8.2.0 documents:\n{}",
        errors.join("\n")
    );
}

fn feature_path(key: &str) -> String {
    format!("/api/admin/projects/{PROJECT}/features/{key}")
}

fn env_path(key: &str) -> String {
    format!("{}/environments/{ENVIRONMENT}", feature_path(key))
}

// ---------------------------------------------------------------------------------------------
// Against the real server
// ---------------------------------------------------------------------------------------------

/// A TCP proxy in front of the real server that records every HTTP request line passing
/// through, so a test can show which methods flagramp really sent.
struct RecordingProxy {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    fn start(upstream: &str) -> RecordingProxy {
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let seen = seen.clone();
                let (mut client_read, mut server_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut server_read, mut client_write) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_read, &mut client_write);
                    let _ = client_write.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let mut pending = Vec::new();
                    let mut buf = [0u8; 8192];
                    loop {
                        let n = match client_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(end) = pending.windows(2).position(|w| w == b"\r\n") {
                            let line = String::from_utf8_lossy(&pending[..end]).into_owned();
                            pending.drain(..end + 2);
                            if let Some(request) = request_line(&line) {
                                seen.lock().unwrap().push(request);
                            }
                        }
                        if server_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = server_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        RecordingProxy { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// `PATCH /api/…` from a line ending in ` HTTP/1.1`. A JSON body has no line break, so the next
/// request's line may follow it directly: the method is the run of capitals before the path.
fn request_line(line: &str) -> Option<String> {
    let (head, target) = line.strip_suffix(" HTTP/1.1")?.rsplit_once(' ')?;
    let method: String = head
        .chars()
        .rev()
        .take_while(char::is_ascii_uppercase)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!method.is_empty() && target.starts_with('/')).then(|| format!("{method} {target}"))
}

/// Polls the client API (which lags admin changes by about a second) for up to 5 s until the
/// flag shows `enabled` and, when enabled, flagramp's `flexibleRollout` at `rollout`.
async fn sdks_see(server: &Server, key: &str, enabled: bool, rollout: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, feature) = server.client_feature(key).await;
        assert_eq!(status, 200, "client API: {feature}");
        let strategies = feature["strategies"].as_array().cloned().unwrap_or_default();
        let rollouts: Vec<&str> = strategies
            .iter()
            .filter(|s| s["name"] == "flexibleRollout")
            .filter_map(|s| s["parameters"]["rollout"].as_str())
            .collect();
        let ok = feature["enabled"] == enabled
            && match rollout {
                Some(r) => rollouts == [r],
                None => true,
            };
        if ok {
            return feature;
        }
        assert!(
            Instant::now() < deadline,
            "after 5 s the client API still shows {feature}, expected enabled={enabled} rollout={rollout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs services: run scripts/test"]
async fn each_stage_reaches_sdks_through_patches_that_keep_stickiness_and_group() {
    let server = Server::from_env();
    let key = unique("sdk-view");
    server.create_flag(&key).await;
    let proxy = RecordingProxy::start(&server.url);
    let flag = UnleashFlag::new(&proxy.url, PROJECT, ENVIRONMENT, server.admin_token.clone(), &key);

    for (to, enabled, rollout) in [
        (FlagValue::on(pct(10)), true, Some("10")),
        (FlagValue::on(pct(50)), true, Some("50")),
        (FlagValue::on(pct(100)), true, Some("100")),
        (FlagValue::OFF, false, None),
        (FlagValue::on(pct(10)), true, Some("10")),
    ] {
        let seen = flag.read().await.unwrap();
        let back = flag.set(to, &seen, &ChangeNote::default()).await.unwrap();
        assert_eq!(back.value, to);
        assert_eq!(value_of(&server.environment(&key).await), to, "admin view");
        let strategy = server.our_strategy(&key).await.expect("flagramp's strategy");
        assert_eq!(strategy["name"], "flexibleRollout");
        assert_eq!(strategy["parameters"]["stickiness"], "default", "{strategy}");
        assert_eq!(strategy["parameters"]["groupId"], key.as_str(), "{strategy}");
        let strategies = server.environment(&key).await["strategies"].as_array().unwrap().len();
        assert_eq!(strategies, 1, "exactly one strategy: flagramp's");
        let seen_by_sdks = sdks_see(&server, &key, enabled, rollout).await;
        if enabled {
            let s = &seen_by_sdks["strategies"][0];
            assert_eq!(s["parameters"]["stickiness"], "default", "{seen_by_sdks}");
            assert_eq!(s["parameters"]["groupId"], key.as_str(), "{seen_by_sdks}");
        }
    }

    let requests = proxy.requests();
    let writes: Vec<&String> = requests.iter().filter(|r| !r.starts_with("GET ")).collect();
    let env = env_path(&key);
    let strategy_id = server.our_strategy(&key).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let patch = format!("PATCH {env}/strategies/{strategy_id}");
    assert_eq!(
        writes,
        [
            &format!("POST {env}/strategies"),
            &format!("POST {env}/on"),
            &patch,
            &patch,
            &format!("POST {env}/off"),
            &patch,
            &format!("POST {env}/on"),
        ],
        "every request: {requests:#?}"
    );
    assert!(!requests.iter().any(|r| r.starts_with("PUT ")), "{requests:#?}");
}

/// A temporary repository with one Unleash rollout, run with the real binary.
struct BinaryRepo {
    repo: TempRepo,
    token_env: String,
    token: String,
}

impl BinaryRepo {
    fn new(url: &str, key: &str, token: &str) -> BinaryRepo {
        let repo = TempRepo::new();
        let token_env = unique("UNLEASH_TOKEN").replace('-', "_").to_uppercase();
        let spec = format!(
            "version: 1\nname: x\nflag:\n  provider: unleash\n  key: {key}\n  unleash: {{ url: \"{url}\", project: {PROJECT}, environment: {ENVIRONMENT}, token_env: {token_env} }}\nstages: [{{ percent: 10, bake: 0s }}, {{ percent: 50, bake: 0s }}, 100]\nchecks:\n  - {{ name: ok, command: [\"./ok.sh\"], pass: \"== 1\" }}\n"
        );
        repo.write(".github/rollouts/x.yml", &spec);
        repo.script("ok.sh", "echo 1");
        BinaryRepo {
            repo,
            token_env,
            token: token.into(),
        }
    }

    async fn run(&self, now: &str) -> Value {
        let mut cmd = self.repo.flagramp_json(&["run", "--now", now]);
        cmd.env(&self.token_env, &self.token);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stdout.contains(&self.token) && !stderr.contains(&self.token));
        let decisions: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}\nstderr: {stderr}"));
        decisions[0].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs services: run scripts/test"]
async fn a_hand_set_rollout_between_two_runs_of_the_binary_is_drift_and_left_alone() {
    let server = Server::from_env();
    let key = unique("drift-bin");
    server.create_flag(&key).await;
    let repo = BinaryRepo::new(&server.url, &key, &server.admin_token);

    let d = repo.run("2026-11-24T09:00:00Z").await;
    assert_eq!(d["decision"], "start", "{d}");
    assert_eq!(value_of(&server.environment(&key).await), FlagValue::on(pct(10)));

    // A person raises the rollout by hand in Unleash.
    let ours = server.our_strategy(&key).await.unwrap();
    server
        .patch_strategy(
            &key,
            ours["id"].as_str().unwrap(),
            json!([{ "op": "replace", "path": "/parameters/rollout", "value": "35" }]),
        )
        .await;

    for now in ["2026-11-24T09:30:00Z", "2026-11-24T10:30:00Z"] {
        let d = repo.run(now).await;
        assert_eq!(d["decision"], "drift", "{d}");
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.contains("on at 35%") && reason.contains("on at 10%"), "{reason}");
        assert!(d["checks"].as_array().unwrap().is_empty(), "{d}");
        let strategy = server.our_strategy(&key).await.unwrap();
        assert_eq!(
            strategy["parameters"]["rollout"], "35",
            "the hand-set value is left alone"
        );
        assert_eq!(strategy["parameters"]["stickiness"], "default");
        sdks_see(&server, &key, true, Some("35")).await;
    }
}

#[tokio::test]
#[ignore = "needs services: run scripts/test"]
async fn a_flag_someone_else_steers_is_refused_without_a_write() {
    let server = Server::from_env();
    let key = unique("foreign");
    server.create_flag(&key).await;
    // A person turned it on the usual way: `/on` without a strategy makes a default strategy.
    server.switch(&key, true).await;
    let before = server.environment(&key).await;
    // Through a proxy of its own: flagramp's HTTP client is shared by the whole process, and a
    // connection pooled by another test's (finished) runtime must not be reused here.
    let proxy = RecordingProxy::start(&server.url);
    let flag = UnleashFlag::new(&proxy.url, PROJECT, ENVIRONMENT, server.admin_token.clone(), &key);
    match flag.read().await {
        Err(ProviderError::CannotOwn(m)) => {
            assert!(
                m.contains("serves traffic through other strategies") && m.contains("flexibleRollout"),
                "{m}"
            )
        }
        other => panic!("expected CannotOwn, got {other:?}"),
    }
    assert_eq!(server.environment(&key).await["strategies"], before["strategies"]);

    // Unknown flags and refused tokens, from the real server.
    let missing = UnleashFlag::new(
        &proxy.url,
        PROJECT,
        ENVIRONMENT,
        server.admin_token.clone(),
        "no-such-flag-x",
    );
    assert!(matches!(missing.read().await, Err(ProviderError::NotFound(m)) if m.contains("no-such-flag-x")));
    let backend = UnleashFlag::new(&proxy.url, PROJECT, ENVIRONMENT, server.backend_token.clone(), &key)
        .with_token_env("UNLEASH_BACKEND");
    match backend.read().await {
        Err(ProviderError::Auth(m)) => {
            assert!(m.contains("$UNLEASH_BACKEND") && m.contains("HTTP 403"), "{m}");
            assert!(!m.contains(&server.backend_token), "{m}");
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    let bogus = UnleashFlag::new(&proxy.url, PROJECT, ENVIRONMENT, "*:*.bogus-token".into(), &key)
        .with_token_env("UNLEASH_TOKEN");
    assert!(
        matches!(bogus.read().await, Err(ProviderError::Auth(m)) if m.contains("the Unleash token in $UNLEASH_TOKEN was refused") && !m.contains("bogus-token"))
    );
    let requests = proxy.requests();
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "only reads: {requests:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Against wiremock: a small stateful fake of the admin API, checked against the OpenAPI document
// ---------------------------------------------------------------------------------------------

struct FakeState {
    key: String,
    feature: Value,
    /// Every request: method, path, JSON body.
    log: Vec<(String, String, Option<Value>)>,
    /// Requests or answers the OpenAPI document does not allow.
    violations: Vec<String>,
    next_id: u32,
}

/// One flag on a fake Unleash admin API: GET the feature, create and JSON-patch strategies, `/on`
/// and `/off`, shaped like the recorded 8.2.0 answers. Anything else is a 405.
#[derive(Clone)]
struct FakeUnleash(Arc<Mutex<FakeState>>);

impl FakeUnleash {
    /// A fresh flag `key`: off in `development`, no strategies (the recorded GET, reshaped).
    fn new(key: &str) -> FakeUnleash {
        let mut feature = fixture("unleash-get-flag.json");
        feature["name"] = json!(key);
        feature["environments"][0]["enabled"] = json!(false);
        feature["environments"][0]["strategies"] = json!([]);
        FakeUnleash(Arc::new(Mutex::new(FakeState {
            key: key.into(),
            feature,
            log: Vec::new(),
            violations: Vec::new(),
            next_id: 0,
        })))
    }

    async fn mount(&self, server: &MockServer) {
        Mock::given(any())
            .respond_with(self.clone())
            .with_priority(10)
            .mount(server)
            .await;
    }

    fn writes(&self) -> Vec<String> {
        let state = self.0.lock().unwrap();
        state
            .log
            .iter()
            .filter(|(m, _, _)| m != "GET")
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect()
    }

    fn value(&self) -> FlagValue {
        value_of(&self.0.lock().unwrap().feature["environments"][0])
    }

    fn strategy(&self) -> Value {
        self.0.lock().unwrap().feature["environments"][0]["strategies"][0].clone()
    }

    fn assert_conforms(&self) {
        assert_valid(self.0.lock().unwrap().violations.clone());
    }
}

impl Respond for FakeUnleash {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let method = request.method.to_string();
        let path = request.url.path().to_string();
        let body: Option<Value> = (!request.body.is_empty()).then(|| serde_json::from_slice(&request.body).unwrap());
        state.log.push((method.clone(), path.clone(), body.clone()));
        let violations = openapi().check_request(&method, &path, &[], body.as_ref());
        state.violations.extend(violations);
        let feature = feature_path(&state.key);
        let env = env_path(&state.key);
        let strategies = format!("{env}/strategies");
        let (status, answer): (u16, Option<Value>) = match (method.as_str(), path.as_str()) {
            ("GET", p) if p == feature => (200, Some(state.feature.clone())),
            ("POST", p) if p == strategies => {
                let body = body.unwrap();
                state.next_id += 1;
                let strategy = json!({
                    "id": format!("01M8757R03H85KRS3531S0J{:03}", state.next_id),
                    "name": body["name"], "constraints": body["constraints"], "parameters": body["parameters"],
                    "variants": [], "segments": [], "title": body["title"], "disabled": false, "sortOrder": 0,
                });
                state.feature["environments"][0]["strategies"]
                    .as_array_mut()
                    .unwrap()
                    .push(strategy.clone());
                (200, Some(strategy))
            }
            ("PATCH", p) if p.starts_with(&format!("{strategies}/")) => {
                let id = p.rsplit('/').next().unwrap().to_string();
                let list = state.feature["environments"][0]["strategies"].as_array_mut().unwrap();
                match list.iter_mut().find(|s| s["id"] == id.as_str()) {
                    Some(s) => {
                        for op in body.unwrap().as_array().unwrap() {
                            assert_eq!(op["op"], "replace", "{op}");
                            let target = s
                                .pointer_mut(op["path"].as_str().unwrap())
                                .expect("patched path exists");
                            *target = op["value"].clone();
                        }
                        (200, Some(s.clone()))
                    }
                    None => (404, Some(fixture("error-404.json"))),
                }
            }
            ("POST", p) if p == format!("{env}/on") || p == format!("{env}/off") => {
                state.feature["environments"][0]["enabled"] = json!(p.ends_with("/on"));
                (200, None)
            }
            _ => (405, None),
        };
        let violations = openapi().check_response(&method, &path, status, answer.as_ref());
        state.violations.extend(violations);
        let template = ResponseTemplate::new(status);
        match answer {
            Some(a) => template.set_body_json(a),
            None => template,
        }
    }
}

const TOKEN: &str = "*:*.fake-admin-token-for-wiremock";

/// A bench (local state, a check script that counts its runs) over an Unleash rollout of `key`
/// at `url`, whose token is in a variable of its own.
fn unleash_bench(url: &str, key: &str) -> Bench {
    let token_env = unique("UNLEASH_FAKE_TOKEN").replace('-', "_").to_uppercase();
    std::env::set_var(&token_env, TOKEN);
    Bench::new(check_spec(
        "bench",
        &format!("{{ provider: unleash, key: {key}, unleash: {{ url: \"{url}\", project: {PROJECT}, environment: {ENVIRONMENT}, token_env: {token_env} }} }}"),
        "[{ percent: 10, bake: 0s }, { percent: 50, bake: 0s }, 100]",
    ))
}

/// A scheduled run at `minute`, whose reason never names the token.
async fn run(bench: &mut Bench, minute: i64) -> DecisionRecord {
    let record = bench.run_at(minute).await;
    assert!(!record.reason.contains(TOKEN), "{}", record.reason);
    record
}

#[test]
fn the_copied_openapi_document_is_unleash_8_2_0_and_checks_the_recorded_answers() {
    let api = openapi();
    assert_eq!(api.document()["info"]["version"], "8.2.0");
    let key = "new-checkout";
    assert_valid(api.check_response("GET", &feature_path(key), 200, Some(&fixture("unleash-get-flag.json"))));
    assert_valid(api.check_response(
        "GET",
        "/api/client/features",
        200,
        Some(&fixture("unleash-client-features.json")),
    ));
    for (file, method, path, status) in [
        ("error-401.json", "GET", feature_path(key), 401),
        ("error-403-backend-token.json", "GET", feature_path(key), 403),
        ("error-404.json", "GET", feature_path(key), 404),
        (
            "change-request-403.synthetic.json",
            "PATCH",
            format!("{}/strategies/x", env_path(key)),
            403,
        ),
        (
            "change-request-403.synthetic.json",
            "POST",
            format!("{}/strategies", env_path(key)),
            403,
        ),
    ] {
        assert_valid(api.check_response(method, &path, status, Some(&fixture(file))));
    }
    // A release plan where 8.2.0 puts it: `releasePlans` on the feature's environment.
    let planned = fixture("release-plan-feature.synthetic.json");
    assert_valid(api.check_response("GET", &feature_path(key), 200, Some(&planned)));
    assert_valid(api.validate_component("releasePlanSchema", &planned["environments"][0]["releasePlans"][0]));
    // The validator is not vacuous here: featureEnvironmentSchema has additionalProperties: false.
    let mut wrong = planned.clone();
    wrong["environments"][0]["releasePlan"] = json!([]);
    assert!(!api
        .check_response("GET", &feature_path(key), 200, Some(&wrong))
        .is_empty());
}

/// Matches requests whose path is not this one.
struct PathIsNot(String);

impl wiremock::Match for PathIsNot {
    fn matches(&self, request: &Request) -> bool {
        request.url.path() != self.0
    }
}

/// Mounts `.expect(0)` on every write flagramp could send (and PUT/DELETE, which it never
/// sends), except `allowed` (method, path), so verifying the server proves nothing was written.
async fn forbid_writes(server: &MockServer, allowed: Option<(&str, &str)>) {
    for m in ["POST", "PUT", "PATCH", "DELETE"] {
        let except = match allowed {
            Some((am, ap)) if am == m => ap.to_string(),
            _ => String::new(),
        };
        Mock::given(method(m))
            .and(PathIsNot(except))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .named(format!("no {m} may be sent"))
            .with_priority(2)
            .mount(server)
            .await;
    }
}

#[tokio::test]
async fn a_release_plan_is_refused_before_anything_is_written() {
    let server = MockServer::start().await;
    let key = "new-checkout";
    let planned = fixture("release-plan-feature.synthetic.json");
    assert_valid(openapi().check_response("GET", &feature_path(key), 200, Some(&planned)));
    Mock::given(method("GET"))
        .and(path(feature_path(key)))
        .respond_with(ResponseTemplate::new(200).set_body_json(&planned))
        .mount(&server)
        .await;
    forbid_writes(&server, None).await;

    let flag = UnleashFlag::new(&server.uri(), PROJECT, ENVIRONMENT, TOKEN.into(), key);
    match flag.read().await {
        Err(ProviderError::Refused(m)) => {
            assert!(
                m.contains("release plan \"My release plan\"") && m.contains(ENVIRONMENT),
                "{m}"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    // The runner turns it into an error decision: no checks, no write, no rollback.
    let mut bench = unleash_bench(&server.uri(), key);
    let r = run(&mut bench, 0).await;
    assert_eq!(r.decision, DecisionKind::Error, "{}", r.reason);
    assert!(r.reason.contains("release plan"), "{}", r.reason);
    assert!(r.checks.is_empty());
    assert_eq!(bench.checks_run(), 0);
    server.verify().await;
}

#[tokio::test]
async fn change_requests_are_refused_with_what_a_person_must_do() {
    let key = "new-checkout";
    let refusal = fixture("change-request-403.synthetic.json");

    // Starting: creating flagramp's strategy is refused; nothing else is attempted.
    let server = MockServer::start().await;
    let fake = FakeUnleash::new(key);
    fake.mount(&server).await;
    let strategies = format!("{}/strategies", env_path(key));
    assert_valid(openapi().check_response("POST", &strategies, 403, Some(&refusal)));
    Mock::given(method("POST"))
        .and(path(strategies.as_str()))
        .respond_with(ResponseTemplate::new(403).set_body_json(&refusal))
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    forbid_writes(&server, Some(("POST", &strategies))).await;
    let mut bench = unleash_bench(&server.uri(), key);
    let r = run(&mut bench, 0).await;
    assert_eq!(r.decision, DecisionKind::Error, "{}", r.reason);
    assert!(
        r.reason.contains(
            "change requests block direct changes in development: approve the change in Unleash or disable change requests for this environment"
        ),
        "{}",
        r.reason
    );
    assert!(r.checks.is_empty());
    assert_eq!(fake.value(), FlagValue::OFF);
    server.verify().await;

    // Advancing: the rollout patch is refused; the flag stays where it was, nothing rolls back.
    let server = MockServer::start().await;
    let fake = FakeUnleash::new(key);
    fake.mount(&server).await;
    let mut bench = unleash_bench(&server.uri(), key);
    assert_eq!(run(&mut bench, 0).await.decision, DecisionKind::Start);
    assert_eq!(fake.value(), FlagValue::on(pct(10)));
    let writes_before = fake.writes().len();
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(403).set_body_json(&refusal))
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let r = run(&mut bench, 5).await;
    assert_eq!(r.decision, DecisionKind::Error, "{}", r.reason);
    assert!(
        r.reason.contains("advance was decided but not carried out"),
        "{}",
        r.reason
    );
    assert!(
        r.reason.contains("change requests block direct changes in development"),
        "{}",
        r.reason
    );
    assert_eq!(fake.value(), FlagValue::on(pct(10)));
    assert_eq!(fake.writes().len(), writes_before, "{:?}", fake.writes());
    fake.assert_conforms();
    server.verify().await;
}

#[tokio::test]
async fn a_full_rollout_on_the_fake_sends_only_documented_requests_and_never_a_put() {
    let server = MockServer::start().await;
    let key = "new-checkout";
    let fake = FakeUnleash::new(key);
    fake.mount(&server).await;
    let mut bench = unleash_bench(&server.uri(), key);
    assert_eq!(run(&mut bench, 0).await.decision, DecisionKind::Start);
    assert_eq!(run(&mut bench, 1).await.decision, DecisionKind::Advance);
    assert_eq!(fake.value(), FlagValue::on(pct(50)));
    std::fs::write(bench.root().join("check.sh"), "#!/bin/sh\necho 0\n").unwrap();
    assert_eq!(run(&mut bench, 2).await.decision, DecisionKind::Rollback);
    assert_eq!(fake.value(), FlagValue::on(pct(10)));
    assert_eq!(run(&mut bench, 3).await.decision, DecisionKind::Disable);
    assert_eq!(fake.value(), FlagValue::OFF);
    let env = env_path(key);
    let id = fake.strategy()["id"].as_str().unwrap().to_string();
    assert_eq!(
        fake.writes(),
        [
            format!("POST {env}/strategies"),
            format!("POST {env}/on"),
            format!("PATCH {env}/strategies/{id}"),
            format!("PATCH {env}/strategies/{id}"),
            format!("POST {env}/off"),
        ]
    );
    let state = fake.0.lock().unwrap();
    let create = state
        .log
        .iter()
        .find(|(m, _, _)| m == "POST")
        .unwrap()
        .2
        .clone()
        .unwrap();
    assert_eq!(
        create,
        json!({ "name": "flexibleRollout", "title": STRATEGY_TITLE, "constraints": [],
                "parameters": { "rollout": "10", "stickiness": "default", "groupId": key } })
    );
    let patches: Vec<Value> = state
        .log
        .iter()
        .filter(|(m, _, _)| m == "PATCH")
        .map(|(_, _, b)| b.clone().unwrap())
        .collect();
    assert_eq!(
        patches,
        [
            json!([{ "op": "replace", "path": "/parameters/rollout", "value": "50" }]),
            json!([{ "op": "replace", "path": "/parameters/rollout", "value": "10" }]),
        ]
    );
    drop(state);
    let strategy = fake.strategy();
    assert_eq!(strategy["parameters"]["stickiness"], "default");
    assert_eq!(strategy["parameters"]["groupId"], key);
    fake.assert_conforms();
}

/// One provider error on the read after a successful start: an `error` decision with a message
/// naming the cause, no check queried, the flag and its state untouched.
async fn read_failure(answer: ResponseTemplate, expect_in_reason: &[&str]) {
    let server = MockServer::start().await;
    let key = "new-checkout";
    let fake = FakeUnleash::new(key);
    fake.mount(&server).await;
    let mut bench = unleash_bench(&server.uri(), key);
    assert_eq!(run(&mut bench, 0).await.decision, DecisionKind::Start);
    let writes = fake.writes();
    Mock::given(method("GET"))
        .respond_with(answer)
        .with_priority(1)
        .mount(&server)
        .await;
    let r = run(&mut bench, 5).await;
    assert_eq!(r.decision, DecisionKind::Error, "{}", r.reason);
    for words in expect_in_reason {
        assert!(r.reason.contains(words), "{words:?} not in: {}", r.reason);
    }
    assert!(r.checks.is_empty(), "no check is queried");
    assert_eq!(bench.checks_run(), 0);
    assert_eq!(fake.writes(), writes, "nothing was written");
    assert_eq!(fake.value(), FlagValue::on(pct(10)), "the flag is untouched");
    // Once the server answers again, the rollout goes on from where it was: nothing rolled back.
    server.reset().await;
    fake.mount(&server).await;
    let r = run(&mut bench, 10).await;
    assert_eq!(r.decision, DecisionKind::Advance, "{}", r.reason);
    assert_eq!(fake.value(), FlagValue::on(pct(50)));
}

#[tokio::test]
async fn provider_errors_are_error_decisions_never_metric_failures_or_rollbacks() {
    let json = |status: u16, file: &str| ResponseTemplate::new(status).set_body_json(fixture(file));
    read_failure(
        json(401, "error-401.json"),
        &[
            "flag provider:",
            "the Unleash token in $UNLEASH_FAKE_TOKEN_",
            "HTTP 401",
            "admin API token",
        ],
    )
    .await;
    read_failure(
        json(403, "error-403-backend-token.json"),
        &[
            "flag provider:",
            "HTTP 403",
            "expected a different token type",
            "use an admin API token",
        ],
    )
    .await;
    read_failure(
        json(404, "error-404.json"),
        &[
            "flag provider:",
            "Unleash flag `new-checkout` (project `default`, environment `development`) was not found",
            "HTTP 404",
        ],
    )
    .await;
    read_failure(
        ResponseTemplate::new(500).set_body_string("internal error"),
        &["flag provider:", "with HTTP 500", "while reading the flag"],
    )
    .await;
    read_failure(
        ResponseTemplate::new(200).set_body_string("{\"environments\": [ truncated"),
        &["flag provider:", "not JSON"],
    )
    .await;
    read_failure(
        ResponseTemplate::new(200).set_body_json(json!({ "name": "new-checkout" })),
        &["flag provider:", "not in the shape Unleash 8 uses"],
    )
    .await;
}

#[tokio::test]
async fn a_conflict_on_write_is_decided_again_and_ends_as_an_error_without_a_write() {
    let server = MockServer::start().await;
    let key = "new-checkout";
    let fake = FakeUnleash::new(key);
    fake.mount(&server).await;
    let strategies = format!("{}/strategies", env_path(key));
    Mock::given(method("POST"))
        .and(path(strategies.as_str()))
        .respond_with(ResponseTemplate::new(409).set_body_json(fixture("error-409.json")))
        .expect(3)
        .with_priority(1)
        .mount(&server)
        .await;
    let mut bench = unleash_bench(&server.uri(), key);
    let r = run(&mut bench, 0).await;
    assert_eq!(r.decision, DecisionKind::Error, "{}", r.reason);
    assert!(
        r.reason.contains("other runs kept changing this rollout"),
        "{}",
        r.reason
    );
    assert!(r.reason.contains("HTTP 409"), "{}", r.reason);
    assert!(r.checks.is_empty());
    assert_eq!(fake.value(), FlagValue::OFF);
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());
    server.verify().await;
}

#[tokio::test]
async fn a_change_between_read_and_write_is_a_conflict() {
    let server = MockServer::start().await;
    let key = "new-checkout";
    let fake = FakeUnleash::new(key);
    fake.mount(&server).await;
    let flag = UnleashFlag::new(&server.uri(), PROJECT, ENVIRONMENT, TOKEN.into(), key);
    let seen = flag.read().await.unwrap();
    flag.set(FlagValue::on(pct(10)), &seen, &ChangeNote::default())
        .await
        .unwrap();
    let seen = flag.read().await.unwrap();
    // Someone changes the rollout after flagramp read it.
    fake.0.lock().unwrap().feature["environments"][0]["strategies"][0]["parameters"]["rollout"] = json!("20");
    let writes = fake.writes().len();
    assert!(matches!(
        flag.set(FlagValue::on(pct(50)), &seen, &ChangeNote::default()).await,
        Err(ProviderError::Conflict(_))
    ));
    assert_eq!(fake.writes().len(), writes);
    assert_eq!(fake.value(), FlagValue::on(pct(20)));
}

#[tokio::test]
async fn a_rate_limited_read_waits_for_retry_after_then_goes_on() {
    let server = MockServer::start().await;
    let key = "new-checkout";
    let fake = FakeUnleash::new(key);
    fake.mount(&server).await;
    let mut bench = unleash_bench(&server.uri(), key);
    assert_eq!(run(&mut bench, 0).await.decision, DecisionKind::Start);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let r = run(&mut bench, 5).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "waited as asked");
    assert_eq!(r.decision, DecisionKind::Advance, "{}", r.reason);
    assert_eq!(fake.value(), FlagValue::on(pct(50)));
    server.verify().await;

    // A server that keeps answering 429 is an error, not a failure.
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .with_priority(1)
        .mount(&server)
        .await;
    let r = run(&mut bench, 10).await;
    assert_eq!(r.decision, DecisionKind::Error, "{}", r.reason);
    assert!(r.reason.contains("HTTP 429 (rate limited)"), "{}", r.reason);
    assert_eq!(fake.value(), FlagValue::on(pct(50)));
}

#[tokio::test]
async fn a_server_that_does_not_answer_in_time_is_an_io_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
        .mount(&server)
        .await;
    forbid_writes(&server, None).await;
    let flag = UnleashFlag::new(&server.uri(), PROJECT, ENVIRONMENT, TOKEN.into(), "new-checkout")
        .with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    match flag.read().await {
        Err(ProviderError::Io(m)) => {
            assert!(
                m.contains("no answer from 127.0.0.1") && m.contains("within 0.3s"),
                "{m}"
            );
            assert!(!m.contains(TOKEN));
        }
        other => panic!("expected Io, got {other:?}"),
    }
    // Three bounded attempts, not a hang.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    server.verify().await;
}

#[tokio::test]
async fn every_provider_error_maps_to_its_kind_without_the_token() {
    let key = "new-checkout";
    type IsKind = fn(&ProviderError) -> bool;
    let cases: Vec<(ResponseTemplate, IsKind, &str)> = vec![
        (
            ResponseTemplate::new(401).set_body_json(fixture("error-401.json")),
            |e| matches!(e, ProviderError::Auth(_)),
            "the Unleash token in $UNLEASH_TOKEN was refused",
        ),
        (
            ResponseTemplate::new(403).set_body_json(fixture("error-403-backend-token.json")),
            |e| matches!(e, ProviderError::Auth(_)),
            "the Unleash token in $UNLEASH_TOKEN may not do this",
        ),
        (
            ResponseTemplate::new(403).set_body_json(fixture("change-request-403.synthetic.json")),
            |e| matches!(e, ProviderError::Refused(_)),
            "change requests block direct changes in development",
        ),
        (
            ResponseTemplate::new(404).set_body_json(fixture("error-404.json")),
            |e| matches!(e, ProviderError::NotFound(_)),
            "There's no feature named",
        ),
        (
            ResponseTemplate::new(409).set_body_json(fixture("error-409.json")),
            |e| matches!(e, ProviderError::Conflict(_)),
            "HTTP 409",
        ),
        (
            ResponseTemplate::new(502).set_body_string(format!("bad gateway {TOKEN}")),
            |e| matches!(e, ProviderError::Io(_)),
            "HTTP 502: bad gateway ***",
        ),
        (
            ResponseTemplate::new(200).set_body_string("<html>"),
            |e| matches!(e, ProviderError::Io(_)),
            "not JSON",
        ),
    ];
    for (answer, kind, words) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(answer).mount(&server).await;
        let flag =
            UnleashFlag::new(&server.uri(), PROJECT, ENVIRONMENT, TOKEN.into(), key).with_token_env("UNLEASH_TOKEN");
        let e = flag.read().await.unwrap_err();
        assert!(kind(&e), "{e:?}");
        let message = e.to_string();
        assert!(message.contains(words), "{words:?} not in {message}");
        assert!(!message.contains(TOKEN), "{message}");
    }
    // Nothing listens here: a connection error is an Io error.
    let flag = UnleashFlag::new("http://127.0.0.1:9", PROJECT, ENVIRONMENT, TOKEN.into(), key);
    assert!(matches!(flag.read().await, Err(ProviderError::Io(m)) if m.contains("cannot connect")));
}

#[tokio::test]
async fn stages_outside_whole_percents_are_refused_before_sending() {
    let server = MockServer::start().await;
    let key = "new-checkout";
    let fake = FakeUnleash::new(key);
    fake.mount(&server).await;
    let flag = UnleashFlag::new(&server.uri(), PROJECT, ENVIRONMENT, TOKEN.into(), key);
    let seen = flag.read().await.unwrap();
    for to in [
        FlagValue::on(Percent::from_millis(12_500).unwrap()),
        FlagValue::on(Percent::ZERO),
    ] {
        let e = flag.set(to, &seen, &ChangeNote::default()).await.unwrap_err();
        assert!(matches!(e, ProviderError::Refused(_)), "{e:?}");
        assert!(e.to_string().contains("nothing was sent"), "{e}");
    }
    assert!(fake.writes().is_empty());
    assert!(fake.0.lock().unwrap().log.len() == 1, "only the first read");
}

#[tokio::test]
async fn a_write_that_does_not_read_back_is_an_io_error_naming_both_values() {
    let server = MockServer::start().await;
    let key = "new-checkout";
    let fake = FakeUnleash::new(key);
    fake.mount(&server).await;
    // The server says yes to `/on` but the environment stays off.
    Mock::given(method("POST"))
        .and(path(format!("{}/on", env_path(key))))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(1)
        .mount(&server)
        .await;
    let flag = UnleashFlag::new(&server.uri(), PROJECT, ENVIRONMENT, TOKEN.into(), key);
    let seen = flag.read().await.unwrap();
    match flag.set(FlagValue::on(pct(10)), &seen, &ChangeNote::default()).await {
        Err(ProviderError::Io(m)) => assert!(m.contains("expected on at 10%, found off"), "{m}"),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn request_lines_are_found_after_a_body() {
    assert_eq!(request_line("GET /api/x HTTP/1.1").as_deref(), Some("GET /api/x"));
    assert_eq!(
        request_line("[{\"op\":\"replace\"}]PATCH /api/y HTTP/1.1").as_deref(),
        Some("PATCH /api/y")
    );
    assert_eq!(request_line("content-type: application/json"), None);
}
