//! One conformance suite for the [`MetricSource`] trait, run on `measure` itself (no runner),
//! against every source: commands (scripts in a temporary directory), Prometheus answering
//! recorded JSON (a local mock server, always run), a real Prometheus (needs services), an
//! HTTP JSON endpoint and Datadog answering its recorded cassettes (local mock servers).
//!
//! The scenarios are the same for each source; each harness says how it makes them:
//! a value is `Value(x)`; an empty result is `NoData`; a failing server or command is `Error` with
//! a readable message; an answer that is not one number is `Error`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use flagramp::check::Measurement;
use flagramp::http::Credentials;
use flagramp::metrics::{CommandSource, MeasureRequest, MetricSource, PrometheusSource};
use flagramp::percent::Percent;
use flagramp::secrets::Secrets;
use flagramp::spec::Probe;

/// How a harness makes each scenario: probes and what their measurement must be.
pub struct Probes {
    /// Probes that measure one number, and that number.
    pub value: Vec<(Probe, f64)>,
    /// Probes with no usable value (an empty result, NaN).
    pub no_data: Vec<Probe>,
    /// Probes whose server or command fails, and words their error must contain.
    pub failure: Vec<(Probe, &'static str)>,
    /// Probes answered with something that is not one number, and words their error must contain.
    pub garbage: Vec<(Probe, &'static str)>,
}

/// What the suite needs from a source's test setup.
pub trait Harness {
    /// The source under test.
    fn source(&self) -> &dyn MetricSource;
    /// The probes for every scenario.
    fn probes(&self) -> Probes;
}

fn request(probe: &Probe) -> MeasureRequest<'_> {
    MeasureRequest {
        probe,
        at: "2026-11-24T09:00:00.250Z".parse::<DateTime<Utc>>().unwrap(),
        window: None,
        timeout: Duration::from_secs(10),
        rollout: "conformance",
        percent: Percent::ZERO,
    }
}

/// An error message a person can read: one line of text, not empty, not a dump, saying `words`.
fn assert_readable_error(m: Measurement, words: &str, context: &str) {
    match m {
        Measurement::Error(msg) => {
            assert!(!msg.trim().is_empty(), "{context}: empty error message");
            assert!(!msg.contains('\n'), "{context}: `{msg}` spans lines");
            assert!(msg.chars().count() <= 1000, "{context}: `{msg}` is too long");
            assert!(msg.contains(words), "{context}: `{msg}` should contain `{words}`");
        }
        other => panic!("{context}: expected an error containing `{words}`, got {other:?}"),
    }
}

/// A value is `Value(x)`.
pub async fn a_value_is_a_value(h: &dyn Harness, name: &str) {
    let probes = h.probes().value;
    assert!(!probes.is_empty(), "{name}: no value probe");
    for (probe, x) in probes {
        let m = h.source().measure(&request(&probe)).await;
        assert_eq!(m, Measurement::Value(x), "{name}: {}", probe.describe());
    }
}

/// An empty result is `NoData`, never a value or an error.
pub async fn an_empty_result_is_no_data(h: &dyn Harness, name: &str) {
    let probes = h.probes().no_data;
    assert!(!probes.is_empty(), "{name}: no empty-result probe");
    for probe in probes {
        match h.source().measure(&request(&probe)).await {
            Measurement::NoData(why) => {
                assert!(!why.trim().is_empty(), "{name}: {}: NoData says why", probe.describe())
            }
            other => panic!("{name}: {}: expected NoData, got {other:?}", probe.describe()),
        }
    }
}

/// A failing server or command is `Error` with a readable message.
pub async fn a_failure_is_an_error(h: &dyn Harness, name: &str) {
    let probes = h.probes().failure;
    assert!(!probes.is_empty(), "{name}: no failure probe");
    for (probe, words) in probes {
        let m = h.source().measure(&request(&probe)).await;
        assert_readable_error(m, words, &format!("{name}: {}", probe.describe()));
    }
}

/// Anything that is not one number is `Error`, never a value or no data.
pub async fn garbage_is_an_error(h: &dyn Harness, name: &str) {
    let probes = h.probes().garbage;
    assert!(!probes.is_empty(), "{name}: no garbage probe");
    for (probe, words) in probes {
        let m = h.source().measure(&request(&probe)).await;
        assert_readable_error(m, words, &format!("{name}: {}", probe.describe()));
    }
}

/// Every scenario, in order.
pub async fn suite(h: &dyn Harness, name: &str) {
    a_value_is_a_value(h, name).await;
    an_empty_result_is_no_data(h, name).await;
    a_failure_is_an_error(h, name).await;
    garbage_is_an_error(h, name).await;
}

// ---------------------------------------------------------------------------------------------
// Commands

struct Commands {
    _dir: tempfile::TempDir,
    source: CommandSource,
}

fn script(dir: &Path, name: &str, body: &str, mode: u32) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl Commands {
    fn new() -> Commands {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [
            ("value.sh", "echo 0.95"),
            ("arg.sh", "printf '  %s\\n\\n' \"$1\""),
            ("nan.sh", "echo NaN"),
            ("inf.sh", "echo +Inf"),
            ("fail.sh", "echo 0.99\necho 'boom: backend down' >&2\nexit 3"),
            ("garbage.sh", "echo garbage"),
            ("silent.sh", "true"),
            ("words.sh", "echo 1 2"),
        ] {
            script(dir.path(), name, body, 0o755);
        }
        script(dir.path(), "not-executable.sh", "echo 1", 0o644);
        let source = CommandSource::new(dir.path(), Secrets::new(), true);
        Commands { _dir: dir, source }
    }
}

fn command(argv: &[&str]) -> Probe {
    Probe::Command {
        argv: argv.iter().map(|a| a.to_string()).collect(),
        env: Vec::new(),
    }
}

impl Harness for Commands {
    fn source(&self) -> &dyn MetricSource {
        &self.source
    }

    fn probes(&self) -> Probes {
        Probes {
            value: vec![(command(&["./value.sh"]), 0.95), (command(&["./arg.sh", "42"]), 42.0)],
            // A command has no empty result: it prints NaN (or ±Inf) for "no data". Printing
            // nothing is a broken check, an error (the garbage scenario).
            no_data: vec![command(&["./nan.sh"]), command(&["./inf.sh"])],
            failure: vec![
                (command(&["./fail.sh"]), "`./fail.sh` exited with 3: boom: backend down"),
                (command(&["./missing.sh"]), "`./missing.sh` was not found"),
                (command(&["./not-executable.sh"]), "is not executable"),
            ],
            garbage: vec![
                (command(&["./garbage.sh"]), "printed `garbage` instead of a number"),
                (command(&["./silent.sh"]), "printed no number"),
                (command(&["./words.sh"]), "printed 2 words"),
            ],
        }
    }
}

#[tokio::test]
async fn command_source() {
    suite(&Commands::new(), "command").await;
}

// ---------------------------------------------------------------------------------------------
// Prometheus

struct Prometheus {
    _server: Option<MockServer>,
    source: PrometheusSource,
    live: bool,
}

fn query(q: &str) -> Probe {
    Probe::Query {
        source: "prom".into(),
        query: flagramp::spec::Query::Prometheus(q.into()),
    }
}

fn fixture(name: &str) -> String {
    crate::support::prometheus_fixture(name)
}

impl Prometheus {
    /// A mock server answering each query with a recorded (or documented) Prometheus answer.
    async fn recorded() -> Prometheus {
        let server = MockServer::start().await;
        let answers: [(&str, u16, String); 14] = [
            ("ratio", 200, fixture("prom-query-ratio.json")),
            ("rate", 200, fixture("prom-query-rate-ratio.json")),
            ("scalar", 200, fixture("openapi-query-scalarResult.json")),
            ("empty", 200, fixture("prom-query-empty.json")),
            ("empty-vector", 200, fixture("promtool-mock-empty-vector.json")),
            ("nan", 200, fixture("prom-query-nan.json")),
            ("tsdb-not-ready", 503, fixture("openapi-query-error-tsdbNotReady.json")),
            ("bad-gateway", 502, "<html>bad gateway</html>".into()),
            ("rejected", 400, fixture("prom-query-error.json")),
            ("not-json", 200, "{ not json".into()),
            ("two-series", 200, fixture("openapi-query-vectorResult.json")),
            ("matrix", 200, fixture("openapi-query-matrixResult.json")),
            ("histogram", 200, fixture("openapi-query-histogramResult.json")),
            ("no-data-field", 200, r#"{"status":"success"}"#.into()),
        ];
        for (q, status, body) in answers {
            Mock::given(method("GET"))
                .and(path("/api/v1/query"))
                .and(query_param("query", q))
                .and(query_param("time", "1795510800.250"))
                .respond_with(ResponseTemplate::new(status).set_body_string(body))
                .mount(&server)
                .await;
        }
        let source = PrometheusSource::new("prom", &server.uri(), Credentials::default(), None);
        Prometheus {
            _server: Some(server),
            source,
            live: false,
        }
    }

    /// The Prometheus the test services run (`FLAGRAMP_TEST_PROMETHEUS_URL`).
    fn live() -> Prometheus {
        let url = match std::env::var("FLAGRAMP_TEST_PROMETHEUS_URL") {
            Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_string(),
            _ => panic!(
                "FLAGRAMP_TEST_PROMETHEUS_URL is not set: this test needs Prometheus; run it with scripts/test \
                 (or `eval \"$(scripts/services start)\"` first)"
            ),
        };
        Prometheus {
            _server: None,
            source: PrometheusSource::new("prom", &url, Credentials::default(), None),
            live: true,
        }
    }
}

impl Harness for Prometheus {
    fn source(&self) -> &dyn MetricSource {
        &self.source
    }

    fn probes(&self) -> Probes {
        if self.live {
            // Queries whose answers need no pushed data.
            return Probes {
                value: vec![(query("vector(0.95)"), 0.95), (query("scalar(vector(42))"), 42.0)],
                no_data: vec![
                    query("flagramp_conformance_never_pushed{flag=\"none\"}"),
                    query("vector(0) / 0"),
                ],
                failure: vec![(query("sum(up"), "bad_data, HTTP 400)")],
                garbage: vec![
                    (query("vector(1)[5m:1m]"), "range vector"),
                    (query("\"not a number\""), "returned a string, not a number"),
                    (
                        query("vector(1) or label_replace(vector(2), \"a\", \"b\", \"\", \"\")"),
                        "2 series where one is expected",
                    ),
                ],
            };
        }
        Probes {
            value: vec![(query("ratio"), 0.95), (query("rate"), 0.9), (query("scalar"), 42.0)],
            no_data: vec![query("empty"), query("empty-vector"), query("nan")],
            failure: vec![
                (query("tsdb-not-ready"), "TSDB not ready"),
                (query("bad-gateway"), "source `prom` answered HTTP 502"),
                (query("rejected"), "bad_data, HTTP 400): invalid parameter"),
            ],
            garbage: vec![
                (
                    query("not-json"),
                    "source `prom` sent an answer that is not Prometheus JSON",
                ),
                (query("two-series"), "2 series where one is expected"),
                (query("matrix"), "range vector"),
                (query("histogram"), "native histogram"),
                (query("no-data-field"), "answered success without data"),
            ],
        }
    }
}

#[tokio::test]
async fn prometheus_recorded_answers() {
    suite(&Prometheus::recorded().await, "prometheus (recorded answers)").await;
}

#[tokio::test]
#[ignore = "needs services: run scripts/test"]
async fn prometheus_live() {
    suite(&Prometheus::live(), "prometheus (live)").await;
}

/// A server that cannot be reached is an error too, not a hang or a panic.
#[tokio::test]
async fn prometheus_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let source = PrometheusSource::new("prom", &url, Credentials::default(), Some(Duration::from_secs(3)));
    let probe = query("up");
    assert_readable_error(source.measure(&request(&probe)).await, "source `prom`", "unreachable");
}

// ---------------------------------------------------------------------------------------------
// HTTP JSON endpoints

struct JsonEndpoint {
    _server: MockServer,
    source: flagramp::metrics::JsonSource,
}

fn endpoint(path: &str, pointer: &str) -> Probe {
    Probe::Query {
        source: "slo".into(),
        query: flagramp::spec::Query::Http {
            path: path.into(),
            method: flagramp::spec::HttpMethod::Get,
            body: None,
            pointer: pointer.into(),
        },
    }
}

impl JsonEndpoint {
    async fn new() -> JsonEndpoint {
        let server = MockServer::start().await;
        let answers: [(&str, u16, &str); 8] = [
            ("/value", 200, r#"{"data":{"burn_rate":0.95}}"#),
            ("/string", 200, r#"{"data":{"burn_rate":"42"}}"#),
            ("/null", 200, r#"{"data":{"burn_rate":null}}"#),
            ("/empty", 200, r#"{"data":{}}"#),
            ("/unavailable", 503, r#"{"error":"SLO store unavailable"}"#),
            ("/forbidden", 403, "forbidden"),
            ("/html", 200, "<html>maintenance</html>"),
            ("/word", 200, r#"{"data":{"burn_rate":"high"}}"#),
        ];
        for (p, status, body) in answers {
            Mock::given(method("GET"))
                .and(path(format!("/api{p}")))
                .respond_with(ResponseTemplate::new(status).set_body_string(body))
                .mount(&server)
                .await;
        }
        let source =
            flagramp::metrics::JsonSource::new("slo", &format!("{}/api", server.uri()), Credentials::default(), None);
        JsonEndpoint {
            _server: server,
            source,
        }
    }
}

impl Harness for JsonEndpoint {
    fn source(&self) -> &dyn MetricSource {
        &self.source
    }

    fn probes(&self) -> Probes {
        let rate = "/data/burn_rate";
        Probes {
            value: vec![(endpoint("/value", rate), 0.95), (endpoint("/string", rate), 42.0)],
            no_data: vec![endpoint("/null", rate), endpoint("/empty", rate)],
            failure: vec![
                (
                    endpoint("/unavailable", rate),
                    "HTTP 503 (after 3 attempts): {\"error\":\"SLO store unavailable\"}",
                ),
                (endpoint("/forbidden", rate), "source `slo` answered HTTP 403"),
            ],
            garbage: vec![
                (endpoint("/html", rate), "not JSON"),
                (endpoint("/word", rate), "not a number"),
                (endpoint("/value", "/data"), "an object, not a number"),
            ],
        }
    }
}

#[tokio::test]
async fn http_json_source() {
    suite(&JsonEndpoint::new().await, "http").await;
}

// ---------------------------------------------------------------------------------------------
// Datadog

struct Datadog {
    _server: MockServer,
    source: flagramp::metrics::DatadogSource,
}

fn datadog(q: &str) -> Probe {
    Probe::Query {
        source: "dd".into(),
        query: flagramp::spec::Query::Datadog {
            queries: vec![("query".into(), q.into())],
            formula: "query".into(),
            reduce: flagramp::spec::Reduce::Avg,
        },
    }
}

/// A scalar answer with one `number` column holding `values`.
fn scalar_answer(values: &str) -> String {
    format!(
        r#"{{"data":{{"type":"scalar_response","attributes":{{"columns":[{{"name":"query","type":"number","values":{values}}}]}}}}}}"#
    )
}

impl Datadog {
    async fn new() -> Datadog {
        let server = MockServer::start().await;
        let recorded: serde_json::Value = serde_json::from_str(&crate::support::fixture_text(
            "datadog/v2-Scalar-cross-product-query-returns-OK-response.json",
        ))
        .unwrap();
        let recorded_body = recorded["http_interactions"][0]["response"]["body"]["string"]
            .as_str()
            .unwrap()
            .to_string();
        let answers: [(&str, u16, String); 9] = [
            ("avg:recorded{*}", 200, recorded_body),
            ("avg:value{*}", 200, scalar_answer("[0.95]")),
            ("avg:null{*}", 200, scalar_answer("[null]")),
            ("avg:empty{*}", 200, scalar_answer("[]")),
            (
                "avg:unavailable{*}",
                503,
                r#"{"errors":["Service unavailable"]}"#.into(),
            ),
            ("avg:forbidden{*}", 403, r#"{"errors":["Forbidden"]}"#.into()),
            ("avg:not-json{*}", 200, "<html>maintenance</html>".into()),
            ("avg:groups{*} by {host}", 200, scalar_answer("[1, 2, 3]")),
            (
                "avg:no-columns{*}",
                200,
                r#"{"data":{"type":"scalar_response"}}"#.into(),
            ),
        ];
        for (q, status, body) in answers {
            Mock::given(method("POST"))
                .and(path("/api/v2/query/scalar"))
                .and(wiremock::matchers::body_string_contains(format!("\"query\":\"{q}\"")))
                .respond_with(ResponseTemplate::new(status).set_body_string(body))
                .mount(&server)
                .await;
        }
        let credentials = Credentials {
            headers: vec![
                ("DD-API-KEY".into(), "conformance-api-key".into()),
                ("DD-APPLICATION-KEY".into(), "conformance-app-key".into()),
            ],
            ..Credentials::default()
        };
        let source =
            flagramp::metrics::DatadogSource::new("dd", &server.uri(), credentials, None, ["DD_API_KEY", "DD_APP_KEY"]);
        Datadog {
            _server: server,
            source,
        }
    }
}

impl Harness for Datadog {
    fn source(&self) -> &dyn MetricSource {
        &self.source
    }

    fn probes(&self) -> Probes {
        Probes {
            value: vec![
                (datadog("avg:recorded{*}"), 6.368151928283307),
                (datadog("avg:value{*}"), 0.95),
            ],
            no_data: vec![
                datadog("avg:null{*}"),
                datadog("avg:empty{*}"),
                datadog("avg:no-columns{*}"),
            ],
            failure: vec![
                (datadog("avg:unavailable{*}"), "503"),
                (datadog("avg:forbidden{*}"), "DD_API_KEY"),
            ],
            garbage: vec![
                (datadog("avg:not-json{*}"), "not Datadog JSON"),
                (datadog("avg:groups{*} by {host}"), "3 groups"),
            ],
        }
    }
}

#[tokio::test]
async fn datadog_recorded_answers() {
    suite(&Datadog::new().await, "datadog (recorded answers)").await;
}
