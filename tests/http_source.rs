//! The `http` source (any endpoint answering JSON) against a local server: the fault list every
//! source must survive, JSON Pointer edge cases, POST bodies and the answer-size cap.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use flagramp::check::Measurement;
use flagramp::http::Credentials;
use flagramp::metrics::{JsonSource, MeasureRequest, MetricSource};
use flagramp::percent::Percent;
use flagramp::spec::{HttpMethod, Probe, Query};

const TOKEN: &str = "slo-token-0123456789";

fn get(path: &str, pointer: &str) -> Probe {
    Probe::Query {
        source: "slo".into(),
        query: Query::Http {
            path: path.into(),
            method: HttpMethod::Get,
            body: None,
            pointer: pointer.into(),
        },
    }
}

async fn measure_with(server: &MockServer, probe: &Probe, timeout: Duration) -> Measurement {
    let credentials = Credentials {
        headers: vec![("Authorization".into(), format!("Bearer {TOKEN}"))],
        ..Credentials::default()
    };
    let source = JsonSource::new("slo", &format!("{}/api", server.uri()), credentials, None);
    let at: DateTime<Utc> = "2026-11-24T08:59:00Z".parse().unwrap();
    let request = MeasureRequest {
        probe,
        at,
        window: None,
        timeout,
        rollout: "demo",
        percent: Percent::ZERO,
    };
    source.measure(&request).await
}

async fn measure(server: &MockServer, probe: &Probe) -> Measurement {
    measure_with(server, probe, Duration::from_secs(5)).await
}

/// Serves `template` for any request to `/api/burn`.
async fn serving(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/api/burn"))
        .respond_with(template)
        .mount(&server)
        .await;
    server
}

fn error_text(m: Measurement) -> String {
    match m {
        Measurement::Error(text) => {
            assert!(!text.contains(TOKEN), "the token leaked: {text}");
            assert!(!text.contains('\n') && text.len() < 600, "one short line: {text}");
            text
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_get_sends_the_path_query_and_headers_and_reads_the_pointer() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/burn"))
        .and(query_param("service", "checkout"))
        .and(query_param("window", "1h"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"data":{"burn_rate":1.25}}"#))
        .expect(1)
        .mount(&server)
        .await;
    let m = measure(&server, &get("/burn?service=checkout&window=1h", "/data/burn_rate")).await;
    assert_eq!(m, Measurement::Value(1.25));
}

#[tokio::test]
async fn a_post_sends_its_body_as_json() {
    let server = MockServer::start().await;
    let body = serde_json::json!({ "service": "checkout", "objectives": [0.999], "window": "1h" });
    Mock::given(method("POST"))
        .and(path("/api/slo/query"))
        .and(header("content-type", "application/json"))
        .and(body_json(&body))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"results":[{"value":"0.42"}]}"#))
        .expect(1)
        .mount(&server)
        .await;
    let probe = Probe::Query {
        source: "slo".into(),
        query: Query::Http {
            path: "/slo/query".into(),
            method: HttpMethod::Post,
            body: Some(body.clone()),
            pointer: "/results/0/value".into(),
        },
    };
    assert_eq!(measure(&server, &probe).await, Measurement::Value(0.42));
}

#[tokio::test]
async fn json_pointer_edge_cases_follow_rfc_6901() {
    let doc = r#"{"a/b":{"m~n":7},"":{"x":1},"list":[10,"2.5",null],"n":"-0.5e1"}"#;
    let server = serving(ResponseTemplate::new(200).set_body_string(doc)).await;
    let cases: &[(&str, Option<f64>)] = &[
        ("/a~1b/m~0n", Some(7.0)),
        ("//x", Some(1.0)),
        ("/list/0", Some(10.0)),
        ("/list/1", Some(2.5)),
        ("/n", Some(-5.0)),
    ];
    for (pointer, want) in cases {
        assert_eq!(
            measure(&server, &get("/burn", pointer)).await,
            Measurement::Value(want.unwrap()),
            "{pointer}"
        );
    }
    for pointer in ["/list/2", "/list/3", "/list/-", "/a/b", "/missing/deeper"] {
        assert!(
            matches!(measure(&server, &get("/burn", pointer)).await, Measurement::NoData(_)),
            "{pointer} is no data"
        );
    }
    // A number beyond f64 is an error, never infinity passing a check.
    let server = serving(ResponseTemplate::new(200).set_body_string(r#"{"big":1e400}"#)).await;
    error_text(measure(&server, &get("/burn", "/big")).await);
}

#[tokio::test]
async fn non_2xx_answers_are_errors_with_the_status_and_a_short_excerpt() {
    for status in [400u16, 401, 403, 404, 422] {
        let body = format!(
            r#"{{"data":{{"burn_rate":0.1}},"error":"denied","echo":"Bearer {TOKEN}","pad":"{}"}}"#,
            "p".repeat(4000)
        );
        let server = serving(ResponseTemplate::new(status).set_body_string(body)).await;
        let text = error_text(measure(&server, &get("/burn", "/data/burn_rate")).await);
        assert!(text.contains(&format!("HTTP {status}")), "{text}");
        assert!(text.contains("denied"), "the excerpt shows the server's reason: {text}");
    }
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times_then_an_error() {
    let server = MockServer::start().await;
    Mock::given(path("/api/burn"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .expect(3)
        .mount(&server)
        .await;
    let text = error_text(measure(&server, &get("/burn", "/v")).await);
    assert!(text.contains("HTTP 500"), "{text}");
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_timeout_holds_within_the_timeout() {
    let server = serving(ResponseTemplate::new(429).insert_header("retry-after", "20")).await;
    let started = Instant::now();
    let text = error_text(measure_with(&server, &get("/burn", "/v"), Duration::from_secs(2)).await);
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert!(text.contains("HTTP 429") && text.contains("rate limited"), "{text}");
}

#[tokio::test]
async fn a_slow_server_is_an_error_at_the_timeout() {
    let server = serving(
        ResponseTemplate::new(200)
            .set_body_string(r#"{"v":1}"#)
            .set_delay(Duration::from_secs(10)),
    )
    .await;
    let started = Instant::now();
    let text = error_text(measure_with(&server, &get("/burn", "/v"), Duration::from_secs(1)).await);
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    assert!(text.contains("slo"), "{text}");
}

#[tokio::test]
async fn bodies_that_are_not_json_or_not_numbers_are_errors() {
    for (body, words) in [
        ("<html>maintenance</html>", "not JSON"),
        (r#"{"v":"#, "not JSON"),
        (r#"{"v":"high"}"#, "not a number"),
        (r#"{"v":true}"#, "boolean"),
        (r#"{"v":[1]}"#, "array"),
    ] {
        let server = serving(ResponseTemplate::new(200).set_body_string(body)).await;
        let text = error_text(measure(&server, &get("/burn", "/v")).await);
        assert!(text.contains(words), "{body}: {text}");
    }
}

#[tokio::test]
async fn a_5_mib_answer_is_cut_at_the_cap_and_is_an_error() {
    let huge = format!(r#"{{"v":1,"pad":"{}"}}"#, "x".repeat(5 * 1024 * 1024));
    let server = serving(ResponseTemplate::new(200).set_body_string(huge)).await;
    let text = error_text(measure(&server, &get("/burn", "/v")).await);
    assert!(text.contains("1 MiB"), "{text}");
}
