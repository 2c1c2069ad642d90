//! The Datadog source against the API's own recorded answers and its v2 description, served
//! locally.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use marked_yaml::types::MarkedMappingNode;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use flagramp::check::Measurement;
use flagramp::http::Credentials;
use flagramp::metrics::{DatadogSource, MeasureRequest, MetricSource};
use flagramp::percent::Percent;
use flagramp::spec::{Probe, Query, Reduce};

const API_KEY: &str = "test-api-key-0f3c9a";
const APP_KEY: &str = "test-app-key-7d21be";
const AT: &str = "2026-11-24T09:00:00.250Z";
const SCALAR_PATH: &str = "/api/v2/query/scalar";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/datadog/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The recorded response body of a cassette, as Datadog sent it.
fn cassette_answer(name: &str) -> (u16, String) {
    let cassette: Value = serde_json::from_str(&fixture(name)).unwrap();
    let response = &cassette["http_interactions"][0]["response"];
    (
        response["status"]["code"].as_u64().unwrap() as u16,
        response["body"]["string"].as_str().unwrap().to_string(),
    )
}

fn source(server: &MockServer) -> DatadogSource {
    DatadogSource::new(
        "dd",
        &server.uri(),
        Credentials {
            headers: vec![
                ("DD-API-KEY".into(), API_KEY.into()),
                ("DD-APPLICATION-KEY".into(), APP_KEY.into()),
            ],
            ..Default::default()
        },
        None,
        ["DD_API_KEY", "DD_APP_KEY"],
    )
}

fn error_rate_probe(reduce: Reduce) -> Probe {
    Probe::Query {
        source: "dd".into(),
        query: Query::Datadog {
            queries: vec![
                (
                    "errors".into(),
                    "sum:trace.http.request.errors{service:checkout}.as_count()".into(),
                ),
                (
                    "hits".into(),
                    "sum:trace.http.request.hits{service:checkout}.as_count()".into(),
                ),
            ],
            formula: "errors / hits".into(),
            reduce,
        },
    }
}

fn at() -> DateTime<Utc> {
    AT.parse().unwrap()
}

async fn measure_with(server: &MockServer, probe: &Probe, window: Option<Duration>, timeout: Duration) -> Measurement {
    let request = MeasureRequest {
        probe,
        at: at(),
        window,
        timeout,
        rollout: "demo",
        percent: Percent::ZERO,
    };
    source(server).measure(&request).await
}

/// Measures against a server that answers every query with `status` and `body`.
async fn measure_answer(status: u16, body: &str) -> Measurement {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SCALAR_PATH))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(&server)
        .await;
    measure_with(&server, &error_rate_probe(Reduce::Avg), None, Duration::from_secs(5)).await
}

fn number_column(values: Value) -> String {
    json!({"data":{"type":"scalar_response","attributes":{"columns":[
        {"name":"errors / hits","type":"number","values":values,"meta":{"unit":null}}
    ]}}})
    .to_string()
}

/// An error's text, checked to contain `words` and neither key.
fn assert_error(m: Measurement, words: &str) -> String {
    match m {
        Measurement::Error(msg) => {
            assert!(msg.contains(words), "`{msg}` should contain `{words}`");
            assert!(!msg.contains(API_KEY) && !msg.contains(APP_KEY), "a key leaked: {msg}");
            msg
        }
        other => panic!("expected an error containing `{words}`, got {other:?}"),
    }
}

#[tokio::test]
async fn the_recorded_value_is_read_exactly() {
    let (status, body) = cassette_answer("v2-Scalar-cross-product-query-returns-OK-response.json");
    assert_eq!(status, 200);
    assert_eq!(measure_answer(200, &body).await, Measurement::Value(6.368151928283307));
}

#[tokio::test]
async fn the_request_carries_keys_window_reduce_queries_and_formula() {
    let to = at().timestamp_millis();
    for (window, span_ms, reduce) in [
        (Some(Duration::from_secs(300)), 300_000, Reduce::Sum),
        // No window in the check: the last ten minutes.
        (None, 600_000, Reduce::Max),
    ] {
        let server = MockServer::start().await;
        let expected = json!({"data":{"attributes":{
            "formulas":[{"formula":"errors / hits"}],
            "from": to - span_ms,
            "queries":[
                {"aggregator":reduce.as_str(),"data_source":"metrics","name":"errors",
                 "query":"sum:trace.http.request.errors{service:checkout}.as_count()"},
                {"aggregator":reduce.as_str(),"data_source":"metrics","name":"hits",
                 "query":"sum:trace.http.request.hits{service:checkout}.as_count()"}
            ],
            "to": to
        },"type":"scalar_request"}});
        Mock::given(method("POST"))
            .and(path(SCALAR_PATH))
            .and(header("DD-API-KEY", API_KEY))
            .and(header("DD-APPLICATION-KEY", APP_KEY))
            .and(header("content-type", "application/json"))
            .and(header("accept", "application/json"))
            .and(body_json(&expected))
            .respond_with(ResponseTemplate::new(200).set_body_string(number_column(json!([0.02]))))
            .expect(1)
            .mount(&server)
            .await;
        let got = measure_with(&server, &error_rate_probe(reduce), window, Duration::from_secs(5)).await;
        assert_eq!(got, Measurement::Value(0.02), "{window:?}");
        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(serde_json::from_slice::<Value>(&received[0].body).unwrap(), expected);
        assert_eq!(to, 1_795_510_800_250);
    }
}

/// `components.schemas.<name>` of the v2 description.
fn schema<'a>(schemas: &'a MarkedMappingNode, name: &str) -> &'a MarkedMappingNode {
    schemas.get_mapping(name).unwrap_or_else(|| panic!("no schema {name}"))
}

fn properties(schemas: &MarkedMappingNode, name: &str) -> Vec<String> {
    schema(schemas, name)
        .get_mapping("properties")
        .unwrap_or_else(|| panic!("{name} has no properties"))
        .keys()
        .map(|k| k.as_str().to_string())
        .collect()
}

fn required(schemas: &MarkedMappingNode, name: &str) -> Vec<String> {
    schema(schemas, name)
        .get_sequence("required")
        .map(|s| s.iter().map(|n| n.as_scalar().unwrap().as_str().to_string()).collect())
        .unwrap_or_default()
}

fn enum_values(schemas: &MarkedMappingNode, name: &str) -> Vec<String> {
    schema(schemas, name)
        .get_sequence("enum")
        .unwrap_or_else(|| panic!("{name} has no enum"))
        .iter()
        .map(|n| n.as_scalar().unwrap().as_str().to_string())
        .collect()
}

/// Every key of `object` is a property of schema `name`, and every required one is there.
fn conforms(schemas: &MarkedMappingNode, name: &str, object: &Value) {
    let object = object
        .as_object()
        .unwrap_or_else(|| panic!("{name}: not an object: {object}"));
    let known = properties(schemas, name);
    for key in object.keys() {
        assert!(
            known.contains(key),
            "`{key}` is not a property of {name} (it has {known:?})"
        );
    }
    for key in required(schemas, name) {
        assert!(object.contains_key(&key), "{name} requires `{key}`");
    }
}

#[tokio::test]
async fn the_request_body_is_what_the_v2_description_accepts() {
    let text = fixture("v2-openapi.subset.yaml");
    let root = marked_yaml::parse_yaml(0, &text).unwrap();
    let api = root.as_mapping().unwrap();
    let operation = api
        .get_mapping("paths")
        .and_then(|p| p.get_mapping(SCALAR_PATH))
        .and_then(|p| p.get_mapping("post"))
        .expect("POST /api/v2/query/scalar");
    let body_ref = operation
        .get_mapping("requestBody")
        .and_then(|b| b.get_mapping("content"))
        .and_then(|c| c.get_mapping("application/json"))
        .and_then(|c| c.get_mapping("schema"))
        .and_then(|s| s.get_scalar("$ref"))
        .unwrap();
    assert_eq!(body_ref.as_str(), "#/components/schemas/ScalarFormulaQueryRequest");
    let schemas = api
        .get_mapping("components")
        .and_then(|c| c.get_mapping("schemas"))
        .unwrap();

    for reduce in Reduce::ALL.map(|(_, r)| r) {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(SCALAR_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_string(number_column(json!([1.0]))))
            .mount(&server)
            .await;
        measure_with(&server, &error_rate_probe(reduce), None, Duration::from_secs(5)).await;
        let received = server.received_requests().await.unwrap();
        let sent: Value = serde_json::from_slice(&received[0].body).unwrap();

        conforms(schemas, "ScalarFormulaQueryRequest", &sent);
        let data = &sent["data"];
        conforms(schemas, "ScalarFormulaRequest", data);
        assert!(enum_values(schemas, "ScalarFormulaRequestType").contains(&data["type"].as_str().unwrap().to_string()));
        let attributes = &data["attributes"];
        conforms(schemas, "ScalarFormulaRequestAttributes", attributes);
        for formula in attributes["formulas"].as_array().unwrap() {
            conforms(schemas, "QueryFormula", formula);
        }
        for field in ["from", "to"] {
            assert!(attributes[field].is_i64(), "`{field}` is an integer (epoch ms)");
        }
        let queries = attributes["queries"].as_array().unwrap();
        assert_eq!(queries.len(), 2);
        for query in queries {
            conforms(schemas, "MetricsScalarQuery", query);
            assert!(
                enum_values(schemas, "MetricsDataSource").contains(&query["data_source"].as_str().unwrap().to_string())
            );
            assert!(
                enum_values(schemas, "MetricsAggregator").contains(&query["aggregator"].as_str().unwrap().to_string()),
                "{reduce:?}"
            );
        }
    }
}

#[tokio::test]
async fn null_and_empty_answers_are_no_data() {
    let empty_columns = json!({"data":{"type":"scalar_response","attributes":{"columns":[]}}}).to_string();
    for body in [number_column(json!([null])), number_column(json!([])), empty_columns] {
        let got = measure_answer(200, &body).await;
        assert!(matches!(got, Measurement::NoData(_)), "{body}: {got:?}");
    }
}

#[tokio::test]
async fn several_groups_are_an_error_naming_the_count() {
    let msg = assert_error(
        measure_answer(200, &number_column(json!([0.1, 0.2, 0.3]))).await,
        "3 groups",
    );
    assert!(msg.contains("by {"), "{msg}");
}

#[tokio::test]
async fn a_bad_request_quotes_datadogs_errors() {
    let (status, body) = cassette_answer("v2-Scalar-cross-product-query-returns-Bad-Request-response.json");
    assert_eq!(status, 400);
    let msg = assert_error(
        measure_answer(400, &body).await,
        "Queries ending outside the retention date are invalid",
    );
    assert!(msg.contains("400"), "{msg}");
}

#[tokio::test]
async fn refused_keys_name_both_variables() {
    for status in [401, 403] {
        // A proxy that echoes the headers it got must not get a key into the message.
        let body = json!({"errors": [format!("Forbidden: {API_KEY} / {APP_KEY}")]}).to_string();
        let msg = assert_error(measure_answer(status, &body).await, "DD_API_KEY");
        assert!(msg.contains("DD_APP_KEY") && msg.contains(&status.to_string()), "{msg}");
    }
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_within_the_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SCALAR_PATH))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-RateLimit-Reset", "1")
                .set_body_string(r#"{"errors":["Rate limit exceeded"]}"#),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SCALAR_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string(number_column(json!([0.5]))))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let got = measure_with(&server, &error_rate_probe(Reduce::Avg), None, Duration::from_secs(5)).await;
    assert_eq!(got, Measurement::Value(0.5));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "retried after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_timeout_gives_up_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SCALAR_PATH))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-RateLimit-Reset", "20")
                .set_body_string(r#"{"errors":["Rate limit exceeded"]}"#),
        )
        .mount(&server)
        .await;
    let timeout = Duration::from_secs(2);
    let started = Instant::now();
    let got = measure_with(&server, &error_rate_probe(Reduce::Avg), None, timeout).await;
    assert_error(got, "rate limited");
    assert!(
        started.elapsed() < timeout + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_error_is_an_error_with_its_status() {
    assert_error(
        measure_answer(500, r#"{"errors":["Internal Server Error"]}"#).await,
        "500",
    );
    // Even with a well-formed answer in it.
    assert_error(measure_answer(503, &number_column(json!([1.0]))).await, "503");
}

#[tokio::test]
async fn no_answer_within_the_timeout_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SCALAR_PATH))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(number_column(json!([1.0])))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let got = measure_with(&server, &error_rate_probe(Reduce::Avg), None, timeout).await;
    assert_error(got, "no answer");
    assert!(
        started.elapsed() < timeout + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_answer_that_is_not_datadog_json_is_an_error() {
    let echo = json!({"data": {"attributes": {"columns": format!("{API_KEY} {APP_KEY}")}}}).to_string();
    for body in [
        &echo,
        "{\"data\":",
        "<html>bad gateway</html>",
        "[1,2]",
        r#"{"data":{"attributes":{"columns":"x"}}}"#,
    ] {
        assert_error(measure_answer(200, body).await, "not Datadog JSON");
    }
}
