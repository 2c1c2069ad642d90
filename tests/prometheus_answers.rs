//! The Prometheus source against the API's own recorded and documented answers, served locally.

use chrono::{DateTime, Utc};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use flagramp::check::Measurement;
use flagramp::http::Credentials;
use flagramp::metrics::{MeasureRequest, MetricSource, PrometheusSource};
use flagramp::percent::Percent;
use flagramp::spec::Probe;

async fn measure_answer(status: u16, body: &str) -> Measurement {
    let server = MockServer::start().await;
    let at: DateTime<Utc> = "2026-11-24T09:00:00.250Z".parse().unwrap();
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param("query", "up"))
        .and(query_param("time", "1795510800.250"))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        // Server errors are retried, a bounded number of times; answers are not.
        .expect(if status >= 500 { 3 } else { 1 })
        .mount(&server)
        .await;
    let source = PrometheusSource::new("prom", &server.uri(), Credentials::default(), None);
    let probe = Probe::Query {
        source: "prom".into(),
        query: flagramp::spec::Query::Prometheus("up".into()),
    };
    let request = MeasureRequest {
        probe: &probe,
        at,
        window: None,
        timeout: std::time::Duration::from_secs(5),
        rollout: "demo",
        percent: Percent::ZERO,
    };
    source.measure(&request).await
}

fn fixture(name: &str) -> String {
    crate::support::prometheus_fixture(name)
}

fn assert_error(m: Measurement, words: &str) {
    match m {
        Measurement::Error(msg) => assert!(msg.contains(words), "`{msg}` should contain `{words}`"),
        other => panic!("expected an error containing `{words}`, got {other:?}"),
    }
}

#[tokio::test]
async fn recorded_values_are_read_exactly() {
    assert_eq!(
        measure_answer(200, &fixture("prom-query-ratio.json")).await,
        Measurement::Value(0.95)
    );
    assert_eq!(
        measure_answer(200, &fixture("prom-query-rate-ratio.json")).await,
        Measurement::Value(0.9)
    );
    assert_eq!(
        measure_answer(200, &fixture("openapi-query-scalarResult.json")).await,
        Measurement::Value(42.0)
    );
}

#[tokio::test]
async fn empty_results_and_nan_are_no_data() {
    for name in [
        "prom-query-empty.json",
        "promtool-mock-empty-vector.json",
        "prom-query-nan.json",
    ] {
        assert!(
            matches!(measure_answer(200, &fixture(name)).await, Measurement::NoData(_)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn several_series_range_vectors_and_histograms_are_errors_that_say_why() {
    assert_error(
        measure_answer(200, &fixture("openapi-query-vectorResult.json")).await,
        "2 series where one is expected",
    );
    assert_error(
        measure_answer(200, &fixture("docs-query-vector.json")).await,
        "2 series",
    );
    assert_error(
        measure_answer(200, &fixture("openapi-query-matrixResult.json")).await,
        "range vector",
    );
    assert_error(
        measure_answer(200, &fixture("openapi-query-histogramResult.json")).await,
        "native histogram",
    );
}

#[tokio::test]
async fn rejected_queries_carry_prometheus_own_words() {
    assert_error(
        measure_answer(400, &fixture("prom-query-error.json")).await,
        "bad_data, HTTP 400): invalid parameter",
    );
    assert_error(
        measure_answer(503, &fixture("openapi-query-error-tsdbNotReady.json")).await,
        "TSDB not ready",
    );
    assert_error(measure_answer(502, "<html>bad gateway</html>").await, "HTTP 502");
    assert_error(measure_answer(200, "{ not json").await, "not Prometheus JSON");
}
