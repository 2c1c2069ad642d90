//! The LaunchDarkly provider under the conformance suite, against the stateful fake of
//! LaunchDarkly's REST API (`tests/support/launchdarkly.rs`); every request and answer of the
//! whole suite is then checked against LaunchDarkly's API description.

use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use flagramp::state::FlagValue;

use super::Harness;
use crate::support::launchdarkly::{FakeLaunchDarkly, BAD_TOKEN_ENV, ENVIRONMENT, PROJECT, TOKEN_ENV};

/// Flags live in one fake shared by the scenarios; a second server answers everything with 500.
pub struct LaunchDarklyHarness {
    pub fake: FakeLaunchDarkly,
    failing: MockServer,
}

impl LaunchDarklyHarness {
    pub async fn start() -> LaunchDarklyHarness {
        let fake = FakeLaunchDarkly::start().await;
        let failing = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(500).set_body_raw(
                r#"{"code":"internal_server_error","message":"Internal server error"}"#,
                "application/json",
            ))
            .mount(&failing)
            .await;
        LaunchDarklyHarness { fake, failing }
    }
}

/// A `flag:` block for the LaunchDarkly server at `base_url`.
pub fn block(key: &str, token_env: &str, base_url: &str) -> String {
    format!(
        "{{ provider: launchdarkly, key: {key}, launchdarkly: {{ project: {PROJECT}, environment: {ENVIRONMENT}, token_env: {token_env}, base_url: \"{base_url}\" }} }}"
    )
}

#[async_trait::async_trait]
impl Harness for LaunchDarklyHarness {
    fn flag_block(&self, key: &str, token_env: &str) -> String {
        block(key, token_env, &self.fake.uri())
    }

    fn token(&self, valid: bool) -> Option<String> {
        Some(if valid { TOKEN_ENV } else { BAD_TOKEN_ENV }.to_string())
    }

    async fn create_flag(&self, key: &str) {
        self.fake.add_boolean_flag(key);
    }

    async fn observe(&self, key: &str) -> FlagValue {
        self.fake.observe(key)
    }

    async fn set_by_hand(&self, key: &str, value: FlagValue) {
        self.fake.set_by_hand(key, value);
    }

    async fn failing_server_block(&self, key: &str, token_env: &str) -> Option<String> {
        Some(block(key, token_env, &self.failing.uri()))
    }
}

#[tokio::test]
async fn launchdarkly_passes_the_conformance_suite() {
    let harness = LaunchDarklyHarness::start().await;
    super::run_all(&harness).await;
    harness.fake.assert_conformant();
    assert!(
        harness.fake.applied_patches().len() >= 6,
        "the suite changes flags through semantic patches"
    );
}
