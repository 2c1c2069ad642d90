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
            .user_agent(concat!("flagramp/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is static")
    })
}

/// GETs `url` with `query` parameters; returns the status and body of the last attempt.
///
/// `timeout` bounds each attempt. Errors carry no credentials and no query string.
pub async fn get(
    url: &str,
    query: &[(&str, &str)],
    credentials: &Credentials,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let mut last_error = String::new();
    for attempt in 1..=ATTEMPTS {
        let mut request = client().get(url).query(query).timeout(timeout);
        if let Some(token) = &credentials.bearer {
            request = request.bearer_auth(token);
        }
        if let Some((user, password)) = &credentials.basic {
            request = request.basic_auth(user, Some(password));
        }
        for (name, value) in &credentials.headers {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retryable = status == 429 || status >= 500;
                match response.bytes().await {
                    Ok(body) if !(retryable && attempt < ATTEMPTS) => return Ok((status, body.to_vec())),
                    Ok(_) => last_error = format!("HTTP {status}"),
                    Err(e) => last_error = describe(e, timeout),
                }
            }
            Err(e) => {
                let retryable = e.is_connect() || e.is_timeout() || e.is_request();
                last_error = describe(e, timeout);
                if !retryable {
                    break;
                }
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }
    Err(format!("{last_error} (after {ATTEMPTS} attempts)"))
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
