//! The one HTTP policy for every client flagramp has (metric sources, flag providers, GitHub):
//! deadlines, bounded retries, rate-limit waits, answer size caps and redirects.
//!
//! - **Deadlines.** A request is given a [`Deadline`], not a per-attempt timeout: every attempt
//!   gets the time that is left, and no retry or rate-limit wait ever runs past it. A check's
//!   `timeout` therefore bounds the whole check.
//! - **Retries.** At most [`ATTEMPTS`] attempts. Connection failures are retried always (nothing
//!   was sent); timeouts, broken answers and 5xx only for idempotent requests (a repeated write
//!   could apply twice); rate limits always, after the wait the server asked for (a rate-limited
//!   request was not applied).
//! - **Answers** are read with a cap ([`MAX_ANSWER_BYTES`]); a larger one is an error, never a
//!   partial body.
//! - **Redirects** are followed here, at most [`MAX_REDIRECTS`] hops. A hop to another origin
//!   (scheme, host, port) carries none of the caller's headers but `Accept` and `Content-Type`:
//!   no `Authorization`, no configured header. No request sends `Referer`.
//! - **Encoding.** Every name put into a URL (a flag key, a project, a branch, a file path) goes
//!   through [`encode_segment`] or [`encode_path`]: one rule, RFC 3986 unreserved characters
//!   kept, every other byte percent-encoded.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use tokio::time::Instant;

/// Every byte but the RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) is encoded.
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes one URL path segment or query value: a `/` in it is encoded too.
pub fn encode_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

/// Percent-encodes a `/`-separated path (a file in a repository), keeping its `/`s.
pub fn encode_path(path: &str) -> String {
    path.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

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

impl Credentials {
    /// The request headers these credentials add: `Authorization` (bearer or basic) and the
    /// extra headers, for [`send`].
    /// `text` with every credential value in it replaced by `***`, for quoting a server's
    /// answer: a proxy or a misconfigured server may echo the request's headers. Records are
    /// redacted again where they are made (`Secrets::admit`); this keeps the source's own
    /// messages clean too.
    pub fn mask(&self, text: &str) -> String {
        let mut values: Vec<&str> = self.headers.iter().map(|(_, v)| v.as_str()).collect();
        values.extend(self.bearer.as_deref());
        if let Some((user, password)) = &self.basic {
            values.extend([user.as_str(), password.as_str()]);
        }
        values.retain(|v| !v.trim().is_empty());
        // Longest first, so a value containing another is masked whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values
            .iter()
            .fold(text.to_string(), |text, v| text.replace(v.trim(), "***"))
    }

    pub fn header_list(&self) -> Vec<(&str, String)> {
        use base64::Engine;
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Some(token) = &self.bearer {
            headers.push(("authorization", format!("Bearer {token}")));
        }
        if let Some((user, password)) = &self.basic {
            let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            headers.push(("authorization", format!("Basic {pair}")));
        }
        for (name, value) in &self.headers {
            headers.push((name.as_str(), value.clone()));
        }
        headers
    }
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

/// Attempts per request at most: one, plus two retries.
pub const ATTEMPTS: u32 = 3;

/// The largest answer body read from a metric source or flag provider.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Redirect hops followed at most.
pub const MAX_REDIRECTS: usize = 5;

/// Longest wait a rate limit may ask for before the request is given up.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);

/// Headers that still go along on a redirect to another origin: they describe the request and
/// carry nothing secret. Every other header the caller set is dropped there.
const CROSS_ORIGIN_HEADERS: &[&str] = &["accept", "content-type"];

/// The instant a whole request (all attempts and waits) must be done by.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    /// `total` from now.
    pub fn after(total: Duration) -> Deadline {
        Deadline::since(Instant::now(), total)
    }

    /// `total` from `start`.
    pub fn since(start: Instant, total: Duration) -> Deadline {
        // An absurd total (centuries) is as good as a year, and must not overflow the clock.
        let at = start
            .checked_add(total)
            .or_else(|| start.checked_add(Duration::from_secs(365 * 86_400)))
            .unwrap_or(start);
        Deadline { at, total }
    }

    /// Time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether no time is left.
    pub fn passed(&self) -> bool {
        self.remaining().is_zero()
    }

    /// The instant itself.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// `5s`, `0.3s`, `10m`: the whole time given, for messages.
    pub fn describe(&self) -> String {
        let secs = self.total.as_secs();
        if self.total.subsec_nanos() == 0 && secs >= 60 && secs.is_multiple_of(60) {
            format!("{}m", secs / 60)
        } else {
            format!("{}s", self.total.as_secs_f64())
        }
    }
}

impl From<Duration> for Deadline {
    /// A duration given where a deadline is expected means "that long from now".
    fn from(total: Duration) -> Deadline {
        Deadline::after(total)
    }
}

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
            // Keep-alive within a run: a run of many rollouts sends many requests to each host.
            // An idle connection is dropped before servers usually close theirs (often 60 s or
            // more), so a request rarely meets one the server closed meanwhile.
            .pool_idle_timeout(Duration::from_secs(20))
            // Redirects are followed by `exchange`, which decides what a hop may carry.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .user_agent(concat!("flagramp/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is static")
    })
}

/// A URL as `url` fails to parse it.
type UrlError = url::ParseError;

/// Why a request got no answer: every way [`get`], [`send`] and [`with_retries`] fail. The
/// messages carry no credentials and no query string.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL given to [`get`] does not parse (its text is named: it has no query yet).
    #[error("`{url}` is not a URL: {source}")]
    NotAUrl {
        /// The text given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: UrlError,
    },
    /// The URL given to [`send`] does not parse (not named: it may carry a query).
    #[error("not a URL: {0}")]
    BadUrl(#[source] UrlError),
    /// The JSON body could not be serialized.
    #[error("{0}")]
    Body(#[source] serde_json::Error),
    /// The deadline passed before an answer came.
    #[error("no answer from {target} within {within}")]
    NoAnswer {
        /// `host:port`.
        target: String,
        /// The whole time given ([`Deadline::describe`]).
        within: String,
    },
    /// The request could not be sent or its answer not received.
    #[error("{}", describe(.source, .target))]
    Transport {
        /// `host:port`.
        target: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// More than [`MAX_REDIRECTS`] hops.
    #[error("{target} redirected more than {MAX_REDIRECTS} times")]
    TooManyRedirects {
        /// `host:port` of the last hop.
        target: String,
    },
    /// A redirect whose `Location` is not a URL.
    #[error("{target} redirected to something that is not a URL: {source}")]
    BadRedirect {
        /// `host:port` of the hop.
        target: String,
        /// Why the location does not parse.
        #[source]
        source: UrlError,
    },
    /// An answer over the size cap.
    #[error("{target} sent an answer larger than {}", crate::fsutil::size_text(*.cap as u64))]
    TooLarge {
        /// `host:port`.
        target: String,
        /// The cap, in bytes.
        cap: usize,
    },
    /// The answer's body broke off.
    #[error("the answer from {target} broke off before its end ({})", kind_of(.source))]
    BrokeOff {
        /// `host:port`.
        target: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// A failure another client's attempt reported ([`AttemptError`], e.g. GitHub's).
    #[error("{0}")]
    Attempt(String),
    /// The last failure, after more than one attempt.
    #[error("{last} ({made} attempts within {within})")]
    GaveUp {
        /// The last attempt's failure.
        #[source]
        last: Box<HttpError>,
        /// Attempts made.
        made: u32,
        /// The whole time given ([`Deadline::describe`]).
        within: String,
    },
}

/// GETs `url` with `query` parameters and `credentials`, through [`send`] (retried: a GET is
/// idempotent); returns the last answer, whatever its status.
///
/// Errors carry no credentials and no query string.
pub async fn get(
    url: &str,
    query: &[(&str, &str)],
    credentials: &Credentials,
    deadline: Deadline,
) -> Result<Answer, HttpError> {
    let url = reqwest::Url::parse_with_params(url, query).map_err(|source| HttpError::NotAUrl {
        url: url.to_string(),
        source,
    })?;
    send(
        reqwest::Method::GET,
        url.as_str(),
        &credentials.header_list(),
        None,
        deadline,
        true,
    )
    .await
}

/// `host:port` of a URL, for messages (never the path or query, which may carry secrets).
fn target_of(url: &reqwest::Url) -> String {
    match url.host_str() {
        Some(h) => format!("{h}:{}", url.port_or_known_default().unwrap_or(0)),
        None => "the server".into(),
    }
}

fn describe(error: &reqwest::Error, target: &str) -> String {
    if error.is_connect() {
        return format!("cannot connect to {target}");
    }
    // reqwest's own text names the URL, whose query may carry secrets: say what kind of failure
    // it was, then its causes (hyper and io errors name no URL).
    let mut text = format!("request to {target} failed: {}", kind_of(error));
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn kind_of(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_body() || error.is_decode() {
        "incomplete body"
    } else {
        "error sending request"
    }
}

/// One HTTP exchange's outcome.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body bytes (at most the cap the request was read with).
    pub body: Vec<u8>,
    /// Why a retry the status called for was not made (no time left for the wait asked for,
    /// or attempts used up), for messages.
    pub gave_up: Option<String>,
}

impl Answer {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Why a refused answer is refused besides its status, for messages: ` (rate limited; …)`
    /// with the reason a retry was not made, or nothing.
    pub fn refusal_notes(&self) -> String {
        let mut notes = Vec::new();
        if is_rate_limited(self.status, &self.headers) {
            notes.push("rate limited");
        }
        if let Some(why) = &self.gave_up {
            notes.push(why);
        }
        if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        }
    }

    /// An answer with `status` and `body` and no headers, for tests of what sources make of it.
    #[cfg(test)]
    pub(crate) fn canned(status: u16, body: &[u8]) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: body.to_vec(),
            gave_up: None,
        }
    }

    /// Whether the status is 2xx: only those answers carry data (any other is an error,
    /// whatever its body says).
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A header's value by name, any case: the first of that name.
pub fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether an answer is a rate limit: 429, or a 403 that says so (GitHub's secondary rate
/// limit sends `retry-after`, its primary one `x-ratelimit-remaining: 0`).
pub fn is_rate_limited(status: u16, headers: &[(String, String)]) -> bool {
    status == 429
        || (status == 403
            && (header_in(headers, "retry-after").is_some()
                || header_in(headers, "x-ratelimit-remaining").map(str::trim) == Some("0")))
}

/// How long a rate limit asks to wait: `Retry-After` (seconds), else `X-Ratelimit-Reset` (seconds
/// from now as Datadog sends it, or an epoch time: seconds as GitHub sends it, milliseconds as
/// LaunchDarkly does), bounded by
/// [`MAX_RATE_LIMIT_WAIT`]. `None` when the answer names no time.
pub fn rate_limit_wait(headers: &[(String, String)], now_ms: i64) -> Option<Duration> {
    if let Some(secs) = header_in(headers, "retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs).min(MAX_RATE_LIMIT_WAIT));
    }
    let reset = header_in(headers, "x-ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok())?;
    // Datadog sends the seconds left in the period; no epoch time of this century is that
    // small. Epoch seconds stay below 10^11 until the year 5138; epoch milliseconds are above it.
    let reset_ms = if reset < 1_000_000_000 {
        now_ms.saturating_add(reset.saturating_mul(1000))
    } else if reset < 100_000_000_000 {
        reset.saturating_mul(1000)
    } else {
        reset
    };
    let wait_ms = u64::try_from(reset_ms.saturating_sub(now_ms)).unwrap_or(0);
    Some(Duration::from_millis(wait_ms).min(MAX_RATE_LIMIT_WAIT))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * u64::from(attempt))
}

/// What to do after an answer to attempt number `attempt`: `None` takes it as it is,
/// `Some(wait)` tries again after `wait`.
pub fn retry_after_answer(
    status: u16,
    headers: &[(String, String)],
    attempt: u32,
    idempotent: bool,
    now_ms: i64,
) -> Option<Duration> {
    if attempt >= ATTEMPTS {
        return None;
    }
    if is_rate_limited(status, headers) {
        return Some(rate_limit_wait(headers, now_ms).unwrap_or_else(|| backoff(attempt)));
    }
    (idempotent && status >= 500).then(|| backoff(attempt))
}

/// One attempt's failure before an answer, as a client outside this module reports it.
#[derive(Debug, Clone)]
pub struct AttemptError {
    /// What happened (no header values, no query string).
    pub message: String,
    /// Whether trying again is safe and may help.
    pub retryable: bool,
}

/// One attempt's failure before an answer, as [`with_retries`] takes it.
pub trait Failure: Into<HttpError> {
    /// Whether trying again is safe and may help.
    fn retryable(&self) -> bool;
}

impl Failure for AttemptError {
    fn retryable(&self) -> bool {
        self.retryable
    }
}

impl From<AttemptError> for HttpError {
    fn from(e: AttemptError) -> HttpError {
        HttpError::Attempt(e.message)
    }
}

/// One of this module's own attempts' failures.
#[derive(Debug)]
struct Failed {
    error: HttpError,
    retryable: bool,
}

impl Failure for Failed {
    fn retryable(&self) -> bool {
        self.retryable
    }
}

impl From<Failed> for HttpError {
    fn from(f: Failed) -> HttpError {
        f.error
    }
}

/// Runs `attempt` under the retry policy above until an answer is final, attempts are used up
/// or `deadline` has passed; `target` (`host:port`) names the server in messages. Each call of
/// `attempt` is cut off at the deadline. Used by [`send`] and by the GitHub client, so both
/// follow one policy.
pub async fn with_retries<F, Fut, E>(
    deadline: Deadline,
    idempotent: bool,
    target: &str,
    mut attempt: F,
) -> Result<Answer, HttpError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Answer, E>>,
    E: Failure,
{
    let no_answer = || HttpError::NoAnswer {
        target: target.to_string(),
        within: deadline.describe(),
    };
    let mut last_error = no_answer();
    let mut made = 0;
    while made < ATTEMPTS && !deadline.passed() {
        made += 1;
        let outcome = match tokio::time::timeout_at(deadline.instant(), attempt()).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err((e.retryable(), e.into())),
            Err(_) => Err((false, no_answer())),
        };
        let wait = match outcome {
            Ok(mut answer) => {
                let now_ms = chrono::Utc::now().timestamp_millis();
                let Some(wait) = retry_after_answer(answer.status, &answer.headers, made, idempotent, now_ms) else {
                    if made > 1 && (answer.status >= 500 || is_rate_limited(answer.status, &answer.headers)) {
                        answer.gave_up = Some(format!("after {made} attempts"));
                    }
                    return Ok(answer);
                };
                if wait >= deadline.remaining() {
                    answer.gave_up = Some(format!(
                        "a wait of {}s does not fit in the {} the request was given",
                        wait.as_secs_f64(),
                        deadline.describe()
                    ));
                    return Ok(answer);
                }
                wait
            }
            Err((retryable, e)) => {
                last_error = e;
                if !retryable {
                    break;
                }
                if made == ATTEMPTS {
                    break;
                }
                backoff(made)
            }
        };
        if wait >= deadline.remaining() {
            break;
        }
        tokio::time::sleep(wait).await;
    }
    Err(if made > 1 {
        HttpError::GaveUp {
            last: Box::new(last_error),
            made,
            within: deadline.describe(),
        }
    } else {
        last_error
    })
}

/// Sends one request with `headers` and an optional JSON `body`, done by `deadline` (a
/// [`Duration`] means that long from now), under the retry policy of [`with_retries`] (`idempotent`:
/// repeating it is harmless). Returns the last answer, whatever its status: callers treat
/// anything but 2xx as an error. Errors never include header values.
pub async fn send(
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, String)],
    body: Option<&serde_json::Value>,
    deadline: impl Into<Deadline>,
    idempotent: bool,
) -> Result<Answer, HttpError> {
    let deadline = deadline.into();
    let url = reqwest::Url::parse(url).map_err(HttpError::BadUrl)?;
    let body = match body {
        Some(b) => Some(serde_json::to_vec(b).map_err(HttpError::Body)?),
        None => None,
    };
    let target = target_of(&url);
    with_retries(deadline, idempotent, &target, || {
        exchange(&method, &url, headers, body.as_deref(), idempotent)
    })
    .await
}

/// One attempt: the request and the redirects it leads to, with the answer read under the cap.
async fn exchange(
    method: &reqwest::Method,
    first: &reqwest::Url,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
    idempotent: bool,
) -> Result<Answer, Failed> {
    let mut url = first.clone();
    let mut method = method.clone();
    let mut body = body;
    let mut same_origin = true;
    for hop in 0..=MAX_REDIRECTS {
        let target = target_of(&url);
        let mut request = client().request(method.clone(), url.clone());
        for (name, value) in headers {
            if same_origin || CROSS_ORIGIN_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                request = request.header(*name, value);
            }
        }
        if let Some(body) = body {
            request = request.body(body.to_vec());
        }
        let response = request.send().await.map_err(|source| Failed {
            // A failed connect sent nothing, so even a write may try again.
            retryable: source.is_connect() || idempotent,
            error: HttpError::Transport {
                target: target.clone(),
                source,
            },
        })?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let follow = match (status, &location) {
            (307 | 308, Some(_)) => true,
            // These turn the request into a GET: never for a write, whose answer would then look
            // like a success without the write having happened.
            (301..=303, Some(_)) => method == reqwest::Method::GET || method == reqwest::Method::HEAD,
            _ => false,
        };
        if !follow {
            return read_answer(response, status, &target, MAX_ANSWER_BYTES, idempotent).await;
        }
        if hop == MAX_REDIRECTS {
            return Err(Failed {
                error: HttpError::TooManyRedirects { target },
                retryable: false,
            });
        }
        let next = url
            .join(location.as_deref().unwrap_or_default())
            .map_err(|source| Failed {
                error: HttpError::BadRedirect { target, source },
                retryable: false,
            })?;
        if next.origin() != first.origin() {
            same_origin = false;
        }
        if status == 303 {
            method = reqwest::Method::GET;
            body = None;
        }
        url = next;
    }
    unreachable!("the loop returns at its last hop")
}

/// Response headers as (lower-case name, value) pairs; a value that is not text reads as empty.
pub fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Reads a response's headers and body, failing once the body exceeds `cap` bytes. A body
/// that broke off is worth another try only for an `idempotent` request (a write may have
/// been applied).
async fn read_answer(
    mut response: reqwest::Response,
    status: u16,
    target: &str,
    cap: usize,
    idempotent: bool,
) -> Result<Answer, Failed> {
    let headers = header_pairs(response.headers());
    let too_large = || Failed {
        error: HttpError::TooLarge {
            target: target.to_string(),
            cap,
        },
        retryable: false,
    };
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(source) => {
                return Err(Failed {
                    error: HttpError::BrokeOff {
                        target: target.to_string(),
                        source,
                    },
                    retryable: idempotent,
                })
            }
        }
    }
    Ok(Answer {
        status,
        headers,
        body,
        gave_up: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn rate_limits_are_recognized_and_their_waits_bounded() {
        assert!(is_rate_limited(429, &[]));
        assert!(is_rate_limited(403, &headers(&[("retry-after", "60")])));
        assert!(is_rate_limited(403, &headers(&[("x-ratelimit-remaining", "0")])));
        assert!(!is_rate_limited(403, &headers(&[("x-ratelimit-remaining", "12")])));
        assert!(!is_rate_limited(403, &[]));
        let now_ms = 1_795_510_800_000;
        assert_eq!(
            rate_limit_wait(&headers(&[("Retry-After", "10")]), now_ms),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            rate_limit_wait(&headers(&[("retry-after", "3600")]), now_ms),
            Some(MAX_RATE_LIMIT_WAIT)
        );
        // GitHub: epoch seconds; LaunchDarkly: epoch milliseconds.
        assert_eq!(
            rate_limit_wait(&headers(&[("x-ratelimit-reset", "1795510805")]), now_ms),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            rate_limit_wait(&headers(&[("x-ratelimit-reset", "1795510802500")]), now_ms),
            Some(Duration::from_millis(2500))
        );
        // Datadog: seconds until the period resets.
        assert_eq!(
            rate_limit_wait(&headers(&[("X-RateLimit-Reset", "7")]), now_ms),
            Some(Duration::from_secs(7))
        );
        assert_eq!(rate_limit_wait(&[], now_ms), None);
    }

    #[test]
    fn only_safe_answers_are_retried() {
        assert!(retry_after_answer(503, &[], 1, true, 0).is_some());
        assert!(retry_after_answer(503, &[], 1, false, 0).is_none());
        assert!(retry_after_answer(429, &[], 1, false, 0).is_some());
        assert!(retry_after_answer(429, &[], ATTEMPTS, true, 0).is_none());
        assert!(retry_after_answer(404, &[], 1, true, 0).is_none());
        assert!(retry_after_answer(403, &[], 1, true, 0).is_none());
    }

    #[test]
    fn names_are_encoded_once_one_way() {
        assert_eq!(encode_segment("my-flag_1.x~"), "my-flag_1.x~");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_segment("é?&#%"), "%C3%A9%3F%26%23%25");
        assert_eq!(encode_path("flags/a b/c.json"), "flags/a%20b/c.json");
        assert_eq!(encode_path("/x/"), "/x/");
    }

    #[tokio::test]
    async fn failed_attempts_keep_their_message_and_chain_the_last_failure() {
        let mut calls = 0;
        let err = with_retries(Deadline::after(Duration::from_secs(5)), true, "example:443", || {
            calls += 1;
            std::future::ready(Err::<Answer, _>(AttemptError {
                message: format!("boom {calls}"),
                retryable: true,
            }))
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "boom 3 (3 attempts within 5s)");
        assert!(matches!(&err, HttpError::GaveUp { made: 3, .. }), "{err:?}");
        let last = std::error::Error::source(&err).expect("the last failure is the source");
        assert_eq!(last.to_string(), "boom 3");

        let once = with_retries(Deadline::after(Duration::from_secs(5)), true, "example:443", || {
            std::future::ready(Err::<Answer, _>(AttemptError {
                message: "refused".into(),
                retryable: false,
            }))
        })
        .await
        .unwrap_err();
        assert_eq!(once.to_string(), "refused");
    }

    #[tokio::test]
    async fn a_url_that_does_not_parse_is_named_with_its_cause() {
        let err = get(
            "not a url",
            &[],
            &Credentials::default(),
            Deadline::after(Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, HttpError::NotAUrl { .. }), "{err:?}");
        assert_eq!(err.to_string(), "`not a url` is not a URL: relative URL without a base");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(crate::fsutil::size_text(MAX_ANSWER_BYTES as u64), "1 MiB");
    }
}
