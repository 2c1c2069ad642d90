//! Prometheus instant queries (`GET /api/v1/query`) evaluated at the decision time.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{quote, MeasureRequest, MetricSource};
use crate::check::Measurement;
use crate::http::{self, Credentials};
use crate::spec::{Probe, Query, WINDOW_PLACEHOLDER};

/// One Prometheus-compatible server.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    name: String,
    base_url: String,
    credentials: Credentials,
    timeout: Option<Duration>,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

impl PrometheusSource {
    /// A source named `name` (as in the spec) at `base_url`.
    pub fn new(name: &str, base_url: &str, credentials: Credentials, timeout: Option<Duration>) -> PrometheusSource {
        PrometheusSource {
            name: name.into(),
            base_url: base_url.trim_end_matches('/').into(),
            credentials,
            timeout,
        }
    }

    fn interpret(&self, answer: &http::Answer) -> Measurement {
        let name = &self.name;
        let (status, body) = (answer.status, answer.body.as_slice());
        if !answer.is_success() {
            return Measurement::Error(self.refusal(answer));
        }
        let answer: Answer = match serde_json::from_slice(body) {
            Ok(a) => a,
            Err(e) => {
                return Measurement::Error(format!(
                    "source `{name}` sent an answer that is not Prometheus JSON: {e}"
                ))
            }
        };
        if answer.status != "success" {
            return Measurement::Error(format!(
                "source `{name}` rejected the query ({}, HTTP {status}): {}",
                answer.error_type.as_deref().unwrap_or("error"),
                answer.error.as_deref().unwrap_or("no message")
            ));
        }
        let Some(data) = answer.data else {
            return Measurement::Error(format!("source `{name}` answered success without data"));
        };
        match data.result_type.as_str() {
            "vector" => {
                let series = data.result.as_array().map(Vec::as_slice).unwrap_or_default();
                match series {
                    [] => Measurement::NoData("the query matched no series".into()),
                    [one] if one.get("histogram").is_some() => Measurement::Error(
                        "the query returned a native histogram: reduce it to a number, e.g. with histogram_quantile(0.99, ...)".into(),
                    ),
                    [one] => match one.get("value").and_then(|v| v.get(1)) {
                        Some(Value::String(text)) => Measurement::from_number_text(text),
                        Some(Value::Null) | None => Measurement::NoData("the series has no value".into()),
                        Some(other) => Measurement::from_number_text(&other.to_string()),
                    },
                    many => Measurement::Error(format!(
                        "the query returned {} series where one is expected: aggregate it, e.g. with sum(...)",
                        many.len()
                    )),
                }
            }
            "scalar" => match data.result.get(1) {
                Some(Value::String(text)) => Measurement::from_number_text(text),
                _ => Measurement::NoData("the scalar has no value".into()),
            },
            "matrix" => Measurement::Error(
                "the query returned a range vector: write an instant query (e.g. rate(x[5m]), not x[5m])".into(),
            ),
            other => Measurement::Error(format!("the query returned a {other}, not a number")),
        }
    }
}

impl PrometheusSource {
    /// The error for a non-2xx answer: never a measurement, whatever the body holds (a proxy or
    /// a failing server may send a well-formed success answer with a 500). Prometheus's own
    /// error fields are quoted when the body has them (400, 422, 503).
    fn refusal(&self, answer: &http::Answer) -> String {
        let status = answer.status;
        let mut text = match serde_json::from_slice::<Answer>(&answer.body) {
            Ok(Answer {
                status: outcome,
                error_type,
                error,
                ..
            }) if outcome == "error" => format!(
                "source `{}` rejected the query ({}, HTTP {status}): {}",
                self.name,
                quote(error_type.as_deref().unwrap_or("error")),
                quote(error.as_deref().unwrap_or("no message"))
            ),
            _ => format!("source `{}` answered HTTP {status}", self.name),
        };
        text.push_str(&answer.refusal_notes());
        text
    }
}

/// A window as a Prometheus duration: `10m`, `1h`, `90s`.
fn duration_text(window: Duration) -> String {
    match window.as_secs() {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[async_trait::async_trait]
impl MetricSource for PrometheusSource {
    async fn measure(&self, request: &MeasureRequest<'_>) -> Measurement {
        let Probe::Query {
            query: Query::Prometheus(query),
            ..
        } = request.probe
        else {
            return Measurement::Error("internal: a query of another kind was sent to a Prometheus source".into());
        };
        let query = match request.window {
            Some(window) => query.replace(WINDOW_PLACEHOLDER, &duration_text(window)),
            None => query.clone(),
        };
        let time = format!("{:.3}", request.at.timestamp_millis() as f64 / 1000.0);
        let url = format!("{}/api/v1/query", self.base_url);
        // The check's timeout bounds the whole measurement, retries and waits included.
        let timeout = self.timeout.unwrap_or(request.timeout).min(request.timeout);
        let params = [("query", query.as_str()), ("time", time.as_str())];
        match http::get(&url, &params, &self.credentials, http::Deadline::after(timeout)).await {
            Ok(answer) => self.interpret(&answer),
            Err(e) => Measurement::Error(format!("source `{}`: {e}", self.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &[u8]) -> http::Answer {
        http::Answer::canned(status, body)
    }

    fn source() -> PrometheusSource {
        PrometheusSource::new("prom", "http://127.0.0.1:1", Credentials::default(), None)
    }

    #[test]
    fn reads_every_answer_shape() {
        let s = source();
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795536613.819,"0.95"]}]}}"#;
        assert_eq!(s.interpret(&answer(200, vector)), Measurement::Value(0.95));
        let scalar = br#"{"data":{"result":[1767436620,"42"],"resultType":"scalar"},"status":"success"}"#;
        assert_eq!(s.interpret(&answer(200, scalar)), Measurement::Value(42.0));
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(matches!(s.interpret(&answer(200, empty)), Measurement::NoData(_)));
        let nan = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795536613.850,"NaN"]}]}}"#;
        assert!(matches!(s.interpret(&answer(200, nan)), Measurement::NoData(_)));
        let bad = br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:16: parse error: unclosed left parenthesis"}"#;
        match s.interpret(&answer(400, bad)) {
            Measurement::Error(msg) => assert!(
                msg.contains("bad_data") && msg.contains("unclosed left parenthesis"),
                "{msg}"
            ),
            other => panic!("{other:?}"),
        }
        // A failing status is an error whatever the body says.
        for status in [500, 502, 503, 404, 301] {
            match s.interpret(&answer(status, vector)) {
                Measurement::Error(msg) => assert!(msg.contains(&format!("HTTP {status}")), "{msg}"),
                other => panic!("HTTP {status} with a success body read as {other:?}"),
            }
        }
        let long = format!(
            r#"{{"status":"error","errorType":"execution","error":"{}"}}"#,
            "x".repeat(5000)
        );
        match s.interpret(&answer(422, long.as_bytes())) {
            Measurement::Error(msg) => assert!(
                msg.contains("execution, HTTP 422") && msg.ends_with("… (cut)") && msg.len() < 700,
                "{msg}"
            ),
            other => panic!("{other:?}"),
        }
        let two = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"0"]}]}}"#;
        match s.interpret(&answer(200, two)) {
            Measurement::Error(msg) => assert!(msg.contains("2 series"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
}
