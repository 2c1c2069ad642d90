//! Any HTTP endpoint answering JSON (an SLO service, an in-house dashboard): the check's path
//! is appended to the source's URL, and an RFC 6901 JSON Pointer picks the number.

use std::time::Duration;

use serde_json::Value;

use super::{quote, MeasureRequest, MetricSource};
use crate::check::Measurement;
use crate::http::{self, Credentials};
use crate::spec::{HttpMethod, Probe, Query};

/// Longest excerpt of a refused answer's body quoted in a message: enough to see the server's
/// reason, short enough that a dump of the service's internals never reaches a record.
const MAX_EXCERPT: usize = 200;

/// One HTTP JSON endpoint.
#[derive(Debug, Clone)]
pub struct JsonSource {
    name: String,
    base_url: String,
    credentials: Credentials,
    timeout: Option<Duration>,
}

impl JsonSource {
    /// A source named `name` (as in the spec) at `base_url`.
    pub fn new(name: &str, base_url: &str, credentials: Credentials, timeout: Option<Duration>) -> JsonSource {
        JsonSource {
            name: name.into(),
            base_url: base_url.trim_end_matches('/').into(),
            credentials,
            timeout,
        }
    }

    /// The number at `pointer` in a 2xx answer; anything else is an error or no data, never a
    /// value (docs/rules.md §2).
    fn interpret(&self, answer: &http::Answer, pointer: &str) -> Measurement {
        let name = &self.name;
        if !answer.is_success() {
            let excerpt: String = quote(&self.credentials.mask(&answer.text()))
                .chars()
                .take(MAX_EXCERPT)
                .collect();
            let mut text = format!("source `{name}` answered HTTP {}", answer.status);
            text.push_str(&answer.refusal_notes());
            if !excerpt.is_empty() {
                text.push_str(&format!(": {excerpt}"));
            }
            return Measurement::Error(text);
        }
        let document: Value = match serde_json::from_slice(&answer.body) {
            Ok(v) => v,
            Err(e) => return Measurement::Error(format!("source `{name}` answered with a body that is not JSON: {e}")),
        };
        match document.pointer(pointer) {
            None => Measurement::NoData(format!("the answer has nothing at `{pointer}`")),
            Some(Value::Null) => Measurement::NoData(format!("the answer has null at `{pointer}`")),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if v.is_finite() => Measurement::Value(v),
                _ => Measurement::Error(format!("the number at `{pointer}` is out of range")),
            },
            // SLO services often send decimals as strings, to keep their precision.
            Some(Value::String(s)) => match s.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Measurement::Value(v),
                Ok(v) => Measurement::NoData(format!("the value at `{pointer}` is {v}")),
                Err(_) => Measurement::Error(format!(
                    "the value at `{pointer}` is the string `{}`, not a number",
                    quote(s).chars().take(MAX_EXCERPT).collect::<String>()
                )),
            },
            Some(other) => Measurement::Error(format!("the value at `{pointer}` is {}, not a number", kind_of(other))),
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "a boolean",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        _ => "not a number",
    }
}

#[async_trait::async_trait]
impl MetricSource for JsonSource {
    async fn measure(&self, request: &MeasureRequest<'_>) -> Measurement {
        let Probe::Query {
            query:
                Query::Http {
                    path,
                    method,
                    body,
                    pointer,
                },
            ..
        } = request.probe
        else {
            return Measurement::Error("internal: a query of another kind was sent to an http source".into());
        };
        let url = format!("{}{path}", self.base_url);
        // The check's timeout bounds the whole measurement, retries and waits included.
        let timeout = self.timeout.unwrap_or(request.timeout).min(request.timeout);
        let mut headers = self.credentials.header_list();
        headers.push(("accept", "application/json".into()));
        let (method, body) = match method {
            HttpMethod::Get => (reqwest::Method::GET, None),
            HttpMethod::Post => {
                headers.push(("content-type", "application/json".into()));
                (reqwest::Method::POST, Some(body.clone().unwrap_or(Value::Null)))
            }
        };
        // Both methods only read: a POST here is a query with a body, safe to repeat.
        match http::send(
            method,
            &url,
            &headers,
            body.as_ref(),
            http::Deadline::after(timeout),
            true,
        )
        .await
        {
            Ok(answer) => self.interpret(&answer, pointer),
            Err(e) => Measurement::Error(format!("source `{}`: {e}", self.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> http::Answer {
        http::Answer::canned(status, body.as_bytes())
    }

    fn source() -> JsonSource {
        JsonSource::new("slo", "http://127.0.0.1:1", Credentials::default(), None)
    }

    #[test]
    fn pointers_pick_numbers_and_strings_that_hold_numbers() {
        let body = r#"{"data":{"burn_rate":1.5,"a/b":2,"m~n":3,"list":[4,"5.5"],"s":"1e-3","nul":null,"word":"high","flag":true}}"#;
        let s = source();
        let ok = answer(200, body);
        assert_eq!(s.interpret(&ok, "/data/burn_rate"), Measurement::Value(1.5));
        assert_eq!(s.interpret(&ok, "/data/a~1b"), Measurement::Value(2.0));
        assert_eq!(s.interpret(&ok, "/data/m~0n"), Measurement::Value(3.0));
        assert_eq!(s.interpret(&ok, "/data/list/0"), Measurement::Value(4.0));
        assert_eq!(s.interpret(&ok, "/data/list/1"), Measurement::Value(5.5));
        assert_eq!(s.interpret(&ok, "/data/s"), Measurement::Value(0.001));
        assert!(matches!(s.interpret(&ok, "/data/nul"), Measurement::NoData(_)));
        assert!(matches!(s.interpret(&ok, "/data/missing"), Measurement::NoData(_)));
        assert!(matches!(s.interpret(&ok, "/data/list/9"), Measurement::NoData(_)));
        assert!(matches!(s.interpret(&ok, "/data/word"), Measurement::Error(m) if m.contains("not a number")));
        assert!(matches!(s.interpret(&ok, "/data/flag"), Measurement::Error(m) if m.contains("a boolean")));
        assert!(matches!(s.interpret(&ok, "/data"), Measurement::Error(m) if m.contains("an object")));
    }

    #[test]
    fn a_refused_answer_is_an_error_with_a_short_excerpt_even_if_its_body_holds_the_number() {
        let s = source();
        let body = format!(r#"{{"data":{{"burn_rate":0.1}},"trace":"{}"}}"#, "x".repeat(5000));
        let Measurement::Error(text) = s.interpret(&answer(503, &body), "/data/burn_rate") else {
            panic!("a 503 is never a value")
        };
        assert!(text.starts_with("source `slo` answered HTTP 503: {\"data\""), "{text}");
        assert!(text.len() < 300, "{}", text.len());
        assert!(matches!(s.interpret(&answer(200, "<html>"), "/v"), Measurement::Error(m) if m.contains("not JSON")));
    }
}
