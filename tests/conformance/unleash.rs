//! The Unleash provider under the conformance suite, against a real Unleash 8.2.0 (started by
//! `scripts/services`). The harness creates, observes and changes flags through Unleash's admin
//! API itself, independently of flagramp's provider.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::{Mock, MockServer, ResponseTemplate};

use flagramp::percent::Percent;
use flagramp::state::FlagValue;

use super::{unique, Harness};

/// The project and environment every scenario uses (both exist on a fresh server).
pub const PROJECT: &str = "default";
pub const ENVIRONMENT: &str = "development";

fn required_env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: these tests need a real Unleash server; run scripts/test (or `eval \"$(scripts/services start)\"` first)")
    })
}

/// The real server, reached with the test tokens `scripts/services` created.
#[derive(Clone)]
pub struct Server {
    /// Base URL.
    pub url: String,
    /// An admin API token.
    pub admin_token: String,
    /// A backend (client API) token for `default:development`.
    pub backend_token: String,
    client: reqwest::Client,
}

/// An HTTP answer: status and JSON body (`Null` when empty or not JSON).
pub type Reply = (u16, Value);

impl Server {
    /// From `FLAGRAMP_TEST_UNLEASH_*`; panics naming scripts/test when they are unset.
    pub fn from_env() -> Server {
        flagramp::http::install_crypto_provider();
        Server {
            url: required_env("FLAGRAMP_TEST_UNLEASH_URL")
                .trim_end_matches('/')
                .to_string(),
            admin_token: required_env("FLAGRAMP_TEST_UNLEASH_ADMIN_TOKEN"),
            backend_token: required_env("FLAGRAMP_TEST_UNLEASH_BACKEND_TOKEN"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.url))
            .header("authorization", token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// An admin API call.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, &self.admin_token, body).await
    }

    /// `/api/admin/projects/default/features/<key>`.
    pub fn feature_path(key: &str) -> String {
        format!("/api/admin/projects/{PROJECT}/features/{key}")
    }

    /// `…/features/<key>/environments/development`.
    pub fn env_path(key: &str) -> String {
        format!("{}/environments/{ENVIRONMENT}", Self::feature_path(key))
    }

    /// Creates a release flag, off in every environment and without strategies.
    pub async fn create_flag(&self, key: &str) {
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                &format!("/api/admin/projects/{PROJECT}/features"),
                Some(json!({ "name": key, "type": "release", "description": "flagramp test" })),
            )
            .await;
        assert_eq!(status, 201, "creating flag {key}: {body}");
    }

    /// The flag's `development` environment as the admin API shows it.
    pub async fn environment(&self, key: &str) -> Value {
        let (status, body) = self.admin(reqwest::Method::GET, &Self::feature_path(key), None).await;
        assert_eq!(status, 200, "reading flag {key}: {body}");
        body["environments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == ENVIRONMENT)
            .cloned()
            .unwrap_or_else(|| panic!("flag {key} has no {ENVIRONMENT} environment: {body}"))
    }

    /// flagramp's strategy (titled `flagramp`) in `development`, if any.
    pub async fn our_strategy(&self, key: &str) -> Option<Value> {
        let env = self.environment(key).await;
        env["strategies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["title"] == flagramp::provider::unleash::STRATEGY_TITLE)
            .cloned()
    }

    /// A JSON patch of one strategy, as a person (or a script) would send it.
    pub async fn patch_strategy(&self, key: &str, id: &str, patch: Value) {
        let path = format!("{}/strategies/{id}", Self::env_path(key));
        let (status, body) = self.admin(reqwest::Method::PATCH, &path, Some(patch)).await;
        assert_eq!(status, 200, "PATCH {path}: {body}");
    }

    /// Turns `development` on or off.
    pub async fn switch(&self, key: &str, on: bool) {
        let path = format!("{}/{}", Self::env_path(key), if on { "on" } else { "off" });
        let (status, body) = self.admin(reqwest::Method::POST, &path, None).await;
        assert_eq!(status, 200, "POST {path}: {body}");
    }

    /// The flag as SDKs see it: `GET /api/client/features/<key>` with the backend token.
    pub async fn client_feature(&self, key: &str) -> Reply {
        self.call(
            reqwest::Method::GET,
            &format!("/api/client/features/{key}"),
            &self.backend_token,
            None,
        )
        .await
    }
}

/// Reads an environment the way a person would: off, or on at our strategy's rollout.
pub fn value_of(env: &Value) -> FlagValue {
    if env["enabled"] != true {
        return FlagValue::OFF;
    }
    let ours = env["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["title"] == flagramp::provider::unleash::STRATEGY_TITLE)
        .unwrap_or_else(|| panic!("enabled without flagramp's strategy: {env}"));
    let rollout: u32 = ours["parameters"]["rollout"].as_str().unwrap().parse().unwrap();
    if rollout == 0 {
        FlagValue::OFF
    } else {
        FlagValue::on(Percent::from_millis(rollout * 1000).unwrap())
    }
}

/// Flags live on the real server; failing servers are wiremock servers kept for the harness's
/// lifetime.
pub struct UnleashHarness {
    server: Server,
    failing: Mutex<Vec<MockServer>>,
}

impl UnleashHarness {
    pub fn new() -> UnleashHarness {
        UnleashHarness {
            server: Server::from_env(),
            failing: Mutex::new(Vec::new()),
        }
    }

    fn block(&self, url: &str, key: &str, token_env: &str) -> String {
        format!(
            "{{ provider: unleash, key: {key}, unleash: {{ url: \"{url}\", project: {PROJECT}, environment: {ENVIRONMENT}, token_env: {token_env} }} }}"
        )
    }
}

#[async_trait::async_trait]
impl Harness for UnleashHarness {
    fn flag_block(&self, key: &str, token_env: &str) -> String {
        self.block(&self.server.url, key, token_env)
    }

    fn token(&self, valid: bool) -> Option<String> {
        let var = unique("FLAGRAMP_TEST_UNLEASH_TOKEN").replace('-', "_").to_uppercase();
        let value = if valid {
            self.server.admin_token.clone()
        } else {
            "*:*.not-a-token-this-server-knows".to_string()
        };
        // Edition 2021: set_var is safe; each variable has a name of its own.
        std::env::set_var(&var, value);
        Some(var)
    }

    async fn create_flag(&self, key: &str) {
        self.server.create_flag(key).await;
    }

    async fn observe(&self, key: &str) -> FlagValue {
        value_of(&self.server.environment(key).await)
    }

    async fn set_by_hand(&self, key: &str, value: FlagValue) {
        if !value.enabled {
            self.server.switch(key, false).await;
            return;
        }
        let ours = self
            .server
            .our_strategy(key)
            .await
            .unwrap_or_else(|| panic!("flag {key} has no flagramp strategy to change by hand"));
        let rollout = (value.percent.millis() / 1000).to_string();
        self.server
            .patch_strategy(
                key,
                ours["id"].as_str().unwrap(),
                json!([{ "op": "replace", "path": "/parameters/rollout", "value": rollout }]),
            )
            .await;
        if self.server.environment(key).await["enabled"] != true {
            self.server.switch(key, true).await;
        }
    }

    async fn failing_server_block(&self, key: &str, token_env: &str) -> Option<String> {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(500).set_body_string("internal error"))
            .mount(&server)
            .await;
        let block = self.block(&server.uri(), key, token_env);
        self.failing.lock().unwrap().push(server);
        Some(block)
    }
}

#[tokio::test]
#[ignore = "needs services: run scripts/test"]
async fn unleash_passes_the_conformance_suite() {
    super::run_all(&UnleashHarness::new()).await;
}
