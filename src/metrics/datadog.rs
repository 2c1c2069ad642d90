//! Datadog's scalar query API (`POST /api/v2/query/scalar`): named metric queries and a formula,
//! each series reduced to one number over the check's window.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{quote, MeasureRequest, MetricSource};
use crate::check::Measurement;
use crate::http::{self, Credentials};
use crate::spec::{Probe, Query, Reduce, DEFAULT_DATADOG_WINDOW};

/// One Datadog API host (`https://api.<site>`, or a proxy).
#[derive(Debug, Clone)]
pub struct DatadogSource {
    name: String,
    base_url: String,
    credentials: Credentials,
    timeout: Option<Duration>,
    /// The variables holding the API key and the application key, named in 401/403 errors.
    key_envs: [String; 2],
}

#[derive(Deserialize)]
struct Answer {
    data: AnswerData,
}

#[derive(Deserialize)]
struct AnswerData {
    #[serde(default)]
    attributes: Option<Attributes>,
}

#[derive(Deserialize)]
struct Attributes {
    #[serde(default)]
    columns: Option<Vec<Column>>,
}

#[derive(Deserialize)]
struct Column {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    values: Option<Vec<Value>>,
}

/// Datadog's error body: `{"errors": ["..."]}`.
#[derive(Deserialize)]
struct Refusal {
    errors: Vec<Value>,
}

impl DatadogSource {
    /// A source named `name` (as in the spec) at `base_url`; `credentials` carry the
    /// `DD-API-KEY` and `DD-APPLICATION-KEY` headers read from `key_envs` (API key, app key).
    pub fn new(
        name: &str,
        base_url: &str,
        credentials: Credentials,
        timeout: Option<Duration>,
        key_envs: [&str; 2],
    ) -> DatadogSource {
        DatadogSource {
            name: name.into(),
            base_url: base_url.trim_end_matches('/').into(),
            credentials,
            timeout,
            key_envs: key_envs.map(String::from),
        }
    }

    fn interpret(&self, answer: &http::Answer) -> Measurement {
        let name = &self.name;
        if !answer.is_success() {
            return Measurement::Error(self.refusal(answer));
        }
        let answer: Answer = match serde_json::from_slice(&answer.body) {
            Ok(a) => a,
            Err(e) => {
                return Measurement::Error(format!(
                    "source `{name}` sent an answer that is not Datadog JSON: {}",
                    self.quote(&e.to_string())
                ))
            }
        };
        let columns = answer.data.attributes.and_then(|a| a.columns).unwrap_or_default();
        if columns.is_empty() {
            return Measurement::NoData("the query returned no columns".into());
        }
        // The formula's results are the number column; group columns (from `by {...}`) only
        // name the groups. With one formula there is one, and it comes last.
        let column = columns
            .iter()
            .rev()
            .find(|c| c.kind.as_deref() == Some("number"))
            .or(match columns.as_slice() {
                [only] => Some(only),
                _ => None,
            });
        let Some(column) = column else {
            return Measurement::Error(format!(
                "source `{name}` sent an answer that is not Datadog JSON: no column of type `number`"
            ));
        };
        match column.values.as_deref().unwrap_or_default() {
            [] => Measurement::NoData("the query returned no values".into()),
            [Value::Null] => Measurement::NoData("the query's value is null".into()),
            [Value::Number(n)] => match n.as_f64() {
                Some(v) if v.is_finite() => Measurement::Value(v),
                _ => Measurement::NoData(format!("value is {n}")),
            },
            // JSON has no NaN or infinity: a server that sends one as text gets it read the way
            // Prometheus values are, so that a non-finite one is no data here too.
            [Value::String(text)] => match Measurement::from_number_text(text) {
                Measurement::Error(_) => Measurement::Error(format!(
                    "source `{name}` answered `{}` where a number is expected",
                    self.quote(text)
                )),
                read => read,
            },
            [other] => Measurement::Error(format!(
                "source `{name}` sent an answer that is not Datadog JSON: the value is {}",
                self.quote(&other.to_string())
            )),
            many => Measurement::Error(format!(
                "the query returned {} groups where one number is expected: aggregate it, e.g. sum:...{{...}} without `by {{...}}`",
                many.len()
            )),
        }
    }

    /// A server's text for a message, with any key value in it masked: a proxy or a
    /// misconfigured server may echo the request's headers.
    fn quote(&self, text: &str) -> String {
        quote(&self.credentials.mask(text))
    }

    /// The error for a non-2xx answer: never a measurement, whatever the body holds. Datadog's
    /// own `errors` texts are quoted when the body has them.
    fn refusal(&self, answer: &http::Answer) -> String {
        let status = answer.status;
        let name = &self.name;
        let quoted = serde_json::from_slice::<Refusal>(&answer.body).ok().map(|r| {
            let texts: Vec<String> = r
                .errors
                .iter()
                .map(|e| match e {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            self.quote(&texts.join("; "))
        });
        let [api_env, app_env] = &self.key_envs;
        let mut text = match status {
            401 | 403 if !http::is_rate_limited(status, &answer.headers) => format!(
                "source `{name}`: Datadog refused the keys (HTTP {status}): check the API key in {api_env} and the application key in {app_env}"
            ),
            400 => format!("source `{name}` rejected the query (HTTP 400)"),
            _ => format!("source `{name}` answered HTTP {status}"),
        };
        match quoted.as_deref() {
            Some(q) if !q.is_empty() => text.push_str(&format!(": {q}")),
            _ if status == 400 => text.push_str(": no message"),
            _ => {}
        }
        text.push_str(&answer.refusal_notes());
        text
    }
}

/// The request body: every query reduced by `reduce`, the formula over them, from `to - window`
/// to `to` (epoch milliseconds).
fn request_body(queries: &[(String, String)], formula: &str, reduce: Reduce, from: i64, to: i64) -> Value {
    let queries: Vec<Value> = queries
        .iter()
        .map(|(name, query)| {
            json!({
                "aggregator": reduce.as_str(),
                "data_source": "metrics",
                "name": name,
                "query": query,
            })
        })
        .collect();
    json!({
        "data": {
            "attributes": {
                "formulas": [{ "formula": formula }],
                "from": from,
                "queries": queries,
                "to": to,
            },
            "type": "scalar_request",
        }
    })
}

#[async_trait::async_trait]
impl MetricSource for DatadogSource {
    async fn measure(&self, request: &MeasureRequest<'_>) -> Measurement {
        let Probe::Query {
            query:
                Query::Datadog {
                    queries,
                    formula,
                    reduce,
                },
            ..
        } = request.probe
        else {
            return Measurement::Error("internal: a query of another kind was sent to a Datadog source".into());
        };
        let window = request.window.unwrap_or(DEFAULT_DATADOG_WINDOW.to_std());
        let to = request.at.timestamp_millis();
        let from = to.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
        let body = request_body(queries, formula, *reduce, from, to);
        let mut headers = self.credentials.header_list();
        headers.push(("content-type", "application/json".into()));
        headers.push(("accept", "application/json".into()));
        let url = format!("{}/api/v2/query/scalar", self.base_url);
        // The check's timeout bounds the whole measurement, retries and waits included.
        let timeout = self.timeout.unwrap_or(request.timeout).min(request.timeout);
        // A scalar query reads and changes nothing, so repeating it is harmless.
        let deadline = http::Deadline::after(timeout);
        let sent = http::send(reqwest::Method::POST, &url, &headers, Some(&body), deadline, true).await;
        sent.map_or_else(
            |e| Measurement::Error(format!("source `{}`: {e}", self.name)),
            |answer| self.interpret(&answer),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> DatadogSource {
        DatadogSource::new(
            "dd",
            "http://127.0.0.1:1",
            Credentials::default(),
            None,
            ["DD_API_KEY", "DD_APP_KEY"],
        )
    }

    fn error_of(m: Measurement) -> String {
        match m {
            Measurement::Error(msg) => msg,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn reads_every_answer_shape() {
        let s = source();
        let one = br#"{"data":{"type":"scalar_response","attributes":{"columns":[{"values":[6.5],"name":"a","meta":{"unit":null},"type":"number"}]}}}"#;
        assert_eq!(s.interpret(&http::Answer::canned(200, one)), Measurement::Value(6.5));
        // A group column before the number column, as `by {...}` queries have.
        let grouped = br#"{"data":{"attributes":{"columns":[{"name":"env","type":"group","values":[["prod"]]},{"name":"a","type":"number","values":[0.25]}]}}}"#;
        assert_eq!(
            s.interpret(&http::Answer::canned(200, grouped)),
            Measurement::Value(0.25)
        );
        for empty in [
            &br#"{"data":{"attributes":{"columns":[]}}}"#[..],
            br#"{"data":{"attributes":{}}}"#,
            br#"{"data":{"type":"scalar_response"}}"#,
            br#"{"data":{"attributes":{"columns":[{"name":"a","type":"number","values":[]}]}}}"#,
            br#"{"data":{"attributes":{"columns":[{"name":"a","type":"number","values":[null]}]}}}"#,
            br#"{"data":{"attributes":{"columns":[{"name":"a","type":"number","values":["NaN"]}]}}}"#,
        ] {
            let got = s.interpret(&http::Answer::canned(200, empty));
            assert!(
                matches!(got, Measurement::NoData(_)),
                "{}: {got:?}",
                String::from_utf8_lossy(empty)
            );
        }
        let text = br#"{"data":{"attributes":{"columns":[{"name":"a","type":"number","values":["0.5"]}]}}}"#;
        assert_eq!(s.interpret(&http::Answer::canned(200, text)), Measurement::Value(0.5));
        let word = br#"{"data":{"attributes":{"columns":[{"name":"a","type":"number","values":["abc"]}]}}}"#;
        assert!(error_of(s.interpret(&http::Answer::canned(200, word))).contains("`abc` where a number is expected"));
        let three = br#"{"data":{"attributes":{"columns":[{"name":"a","type":"number","values":[1,2,3]}]}}}"#;
        assert!(error_of(s.interpret(&http::Answer::canned(200, three))).contains("3 groups"));
        for bad in [
            &b"<html>"[..],
            b"[]",
            br#"{"errors":["x"]}"#,
            br#"{"data":{"attributes":{"columns":{}}}}"#,
        ] {
            let msg = error_of(s.interpret(&http::Answer::canned(200, bad)));
            assert!(msg.contains("not Datadog JSON"), "{msg}");
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let s = source();
        let msg = error_of(s.interpret(&http::Answer::canned(
            400,
            br#"{"errors":["Queries ending outside the retention date are invalid"]}"#,
        )));
        assert!(
            msg.contains("HTTP 400") && msg.contains("Queries ending outside the retention date are invalid"),
            "{msg}"
        );
        for status in [401, 403] {
            let msg = error_of(s.interpret(&http::Answer::canned(status, br#"{"errors":["Forbidden"]}"#)));
            assert!(
                msg.contains(&format!("HTTP {status}")) && msg.contains("DD_API_KEY") && msg.contains("DD_APP_KEY"),
                "{msg}"
            );
        }
        // A failing status is an error whatever the body says.
        let ok = br#"{"data":{"attributes":{"columns":[{"name":"a","type":"number","values":[1]}]}}}"#;
        for status in [500, 502, 503, 404, 301] {
            let msg = error_of(s.interpret(&http::Answer::canned(status, ok)));
            assert!(msg.contains(&format!("HTTP {status}")), "{msg}");
        }
        let mut limited = http::Answer::canned(429, br#"{"errors":["Rate limit exceeded"]}"#);
        limited.gave_up = Some("after 3 attempts".into());
        let msg = error_of(s.interpret(&limited));
        assert!(
            msg.contains("rate limited") && msg.contains("after 3 attempts"),
            "{msg}"
        );
        let long = format!(r#"{{"errors":["{}"]}}"#, "x".repeat(5000));
        let msg = error_of(s.interpret(&http::Answer::canned(400, long.as_bytes())));
        assert!(msg.ends_with("… (cut)") && msg.len() < 700, "{msg}");
    }

    #[test]
    fn body_has_the_recorded_shape() {
        let body = request_body(
            &[("a".into(), "avg:system.cpu.user{*}".into())],
            "a",
            Reduce::Avg,
            1711391280000,
            1711394880000,
        );
        // The recorded request, without the `limit` this client does not send.
        assert_eq!(
            body.to_string(),
            r#"{"data":{"attributes":{"formulas":[{"formula":"a"}],"from":1711391280000,"queries":[{"aggregator":"avg","data_source":"metrics","name":"a","query":"avg:system.cpu.user{*}"}],"to":1711394880000},"type":"scalar_request"}}"#
        );
    }
}
