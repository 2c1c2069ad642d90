//! The one HTTP client setup: rustls with the ring provider, timeouts and bounded retries.

use std::sync::OnceLock;
use std::time::Duration;

/// Resolved credentials for one HTTP source; secret values never leave this struct.
#[derive(Clone, Default)]
pub struct Credentials {
    /// `Authorization: Bearer …`.
    pub bearer: Option<String>,
    /// HTTP basic auth (user, password).
    pub basic: Option<(String, String)>,
    /// Extra headers (name, value).
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print values: only which kinds of credentials are set.
        f.debug_struct("Credentials")
            .field("bearer", &self.bearer.as_ref().map(|_| "***"))
            .field("basic", &self.basic.as_ref().map(|_| "***"))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Attempts per request: one, plus two retries on connection errors, 429 and 5xx.
const ATTEMPTS: u32 = 3;

/// Installs ring as the process-wide rustls provider; reqwest and octocrab share it.
pub fn install_crypto_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // Another caller may have installed the same provider first: that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        install_crypto_provider();
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // A run sends a handful of requests, minutes apart at times (slow checks): a fresh
            // connection each time costs little and never meets one the server closed meanwhile.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("flagramp/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is static")
    })
}

/// GETs `url` with `query` parameters and `credentials`, through [`send`] (retried: a GET is
/// idempotent); returns the status and body of the last attempt.
///
/// `timeout` bounds each attempt. Errors carry no credentials and no query string.
pub async fn get(
    url: &str,
    query: &[(&str, &str)],
    credentials: &Credentials,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    use base64::Engine;
    let url = reqwest::Url::parse_with_params(url, query).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let mut headers: Vec<(&str, String)> = Vec::new();
    if let Some(token) = &credentials.bearer {
        headers.push(("authorization", format!("Bearer {token}")));
    }
    if let Some((user, password)) = &credentials.basic {
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.push(("authorization", format!("Basic {pair}")));
    }
    for (name, value) in &credentials.headers {
        headers.push((name.as_str(), value.clone()));
    }
    let answer = send(reqwest::Method::GET, url.as_str(), &headers, None, timeout, true)
        .await
        .map_err(|e| format!("{e} (after {ATTEMPTS} attempts)"))?;
    Ok((answer.status, answer.body))
}

fn describe(error: reqwest::Error, timeout: Duration) -> String {
    let host = error.url().and_then(|u| {
        u.host_str()
            .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(0)))
    });
    let target = host.unwrap_or_else(|| "the server".into());
    if error.is_timeout() {
        format!("no answer from {target} within {}s", timeout.as_secs_f64())
    } else if error.is_connect() {
        format!("cannot connect to {target}")
    } else {
        format!("request to {target} failed: {}", error.without_url())
    }
}

/// One HTTP exchange's outcome.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Answer {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Longest wait a 429 may ask for before the request is given up.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);

/// How long a 429 asks to wait: `Retry-After` (seconds) or `X-Ratelimit-Reset` (epoch
/// milliseconds, as LaunchDarkly sends it), bounded by [`MAX_RATE_LIMIT_WAIT`].
pub fn rate_limit_wait(answer: &Answer, now_ms: i64) -> Option<Duration> {
    if let Some(secs) = answer.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs).min(MAX_RATE_LIMIT_WAIT));
    }
    let reset = answer
        .header("x-ratelimit-reset")
        .and_then(|v| v.trim().parse::<i64>().ok())?;
    let wait_ms = u64::try_from((reset - now_ms).max(0)).unwrap_or(0);
    Some(Duration::from_millis(wait_ms).min(MAX_RATE_LIMIT_WAIT))
}

/// Sends one request with `headers` and an optional JSON `body`, within `timeout` per attempt.
///
/// Retries, a bounded number of times: connection errors and 5xx only when `idempotent`
/// (a repeated write could apply twice), and 429 always, after the wait the server asked for
/// (a rate-limited request was not applied). Errors never include header values.
pub async fn send(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, String)],
    body: Option<&serde_json::Value>,
    timeout: Duration,
    idempotent: bool,
) -> Result<Answer, String> {
    let mut last_error = String::new();
    for attempt in 1..=ATTEMPTS {
        let mut request = client().request(method.clone(), url).timeout(timeout);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.body(serde_json::to_vec(body).map_err(|e| e.to_string())?);
        }
        let wait = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response
                    .headers()
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_ascii_lowercase(),
                            v.to_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                let body = match response.bytes().await {
                    Ok(b) => b.to_vec(),
                    Err(e) => {
                        last_error = describe(e, timeout);
                        if !idempotent {
                            break;
                        }
                        continue;
                    }
                };
                let answer = Answer { status, headers, body };
                let retry = attempt < ATTEMPTS && (status == 429 || (idempotent && status >= 500));
                if !retry {
                    return Ok(answer);
                }
                last_error = format!("HTTP {status}");
                if status == 429 {
                    rate_limit_wait(&answer, chrono::Utc::now().timestamp_millis())
                } else {
                    None
                }
            }
            Err(e) => {
                // A failed connect sent nothing, so even a write may try again.
                let retryable = e.is_connect() || (idempotent && (e.is_timeout() || e.is_request()));
                last_error = describe(e, timeout);
                if !retryable {
                    break;
                }
                None
            }
        };
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait.unwrap_or(Duration::from_millis(200 * u64::from(attempt)))).await;
        }
    }
    Err(last_error)
}
