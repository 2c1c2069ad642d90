//! One conformance suite for the [`FlagProvider`] trait, run on the trait itself (no runner, no
//! engine), against every provider: the flagd file in a local checkout, the flagd file on a
//! GitHub branch (against the fake GitHub), a real Unleash (needs services), LaunchDarkly (against
//! its fake) and the in-memory flags.
//!
//! Each scenario takes the provider of one fresh flag and a [`ByHand`] to change that flag the way
//! a person would, outside flagramp. Where a provider documents different semantics the scenario
//! says so where it adapts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use flagramp::github::GitHub;
use flagramp::percent::Percent;
use flagramp::provider::{self, ChangeNote, FlagFiles, FlagProvider, FlagReading, MemoryFlags, ProviderError};
use flagramp::secrets::Secrets;
use flagramp::state::FlagValue;

use super::flagd::FlagdHarness;
use super::launchdarkly::LaunchDarklyHarness;
use super::unleash::UnleashHarness;
use super::{unique, Harness};
use crate::support::github::FakeGitHub;
use crate::support::pct;

/// A flag system the suite runs against: flags are created and changed by hand through the
/// system itself, independently of flagramp's provider.
#[async_trait::async_trait]
pub trait FlagSystem: Send + Sync {
    /// Creates a fresh flag `key`, off, that flagramp may own.
    async fn create_flag(&self, key: &str);
    /// A person changes flag `key` outside flagramp.
    async fn set_by_hand(&self, key: &str, value: FlagValue);
    /// What the flag system says flag `key` is now, read without flagramp's provider.
    async fn observe(&self, key: &str) -> FlagValue;
    /// flagramp's provider of flag `key`.
    fn provider(&self, key: &str) -> Box<dyn FlagProvider>;
}

/// One flag of a [`FlagSystem`], changed and observed by hand.
pub struct ByHand<'a> {
    system: &'a dyn FlagSystem,
    key: String,
}

impl ByHand<'_> {
    /// A person sets the flag to `value`.
    pub async fn set(&self, value: FlagValue) {
        self.system.set_by_hand(&self.key, value).await;
    }

    /// What the flag system says the flag is.
    pub async fn observe(&self) -> FlagValue {
        self.system.observe(&self.key).await
    }
}

fn note(reason: &str) -> ChangeNote {
    ChangeNote {
        actor: "flagramp".into(),
        reason: reason.into(),
    }
}

/// A fresh flag reads off, at some version.
pub async fn a_fresh_flag_reads_off(flag: &dyn FlagProvider, hand: &ByHand<'_>, name: &str) {
    let r = flag.read().await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(r.value, FlagValue::OFF, "{name}: a fresh flag is off");
    assert!(!r.version.is_empty(), "{name}: a reading carries a version");
    assert_eq!(flag.read().await.unwrap(), r, "{name}: reading twice changes nothing");
    assert_eq!(hand.observe().await, FlagValue::OFF, "{name}");
}

/// Setting on reads back on at that percent, at a new version, and the flag system agrees.
pub async fn set_on_reads_back_at_a_new_version(flag: &dyn FlagProvider, hand: &ByHand<'_>, name: &str) {
    let seen = flag.read().await.unwrap();
    let back = flag
        .set(FlagValue::on(pct(10)), &seen, &note("start at 10%"))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(back.value, FlagValue::on(pct(10)), "{name}");
    assert_ne!(back.version, seen.version, "{name}: a change moves the version");
    assert_eq!(
        flag.read().await.unwrap(),
        back,
        "{name}: what set returned is what reads"
    );
    assert_eq!(
        hand.observe().await,
        FlagValue::on(pct(10)),
        "{name}: the flag system agrees"
    );
    let up = flag
        .set(FlagValue::on(pct(50)), &back, &ChangeNote::default())
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(up.value, FlagValue::on(pct(50)), "{name}");
    assert_ne!(up.version, back.version, "{name}");
    let off = flag
        .set(FlagValue::OFF, &up, &note("turn off"))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(off.value, FlagValue::OFF, "{name}");
    assert_eq!(hand.observe().await, FlagValue::OFF, "{name}");
}

/// A write against a reading from before a change by hand is a conflict that writes nothing.
/// Every provider documents [`ProviderError::Conflict`] for this (Unleash's check is best-effort
/// but reads the environment again just before writing, so a change made before the call is seen).
pub async fn a_stale_seen_is_a_conflict_and_writes_nothing(flag: &dyn FlagProvider, hand: &ByHand<'_>, name: &str) {
    let fresh = flag.read().await.unwrap();
    let seen = flag
        .set(FlagValue::on(pct(10)), &fresh, &note("start"))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    hand.set(FlagValue::on(pct(30))).await;
    let result = flag.set(FlagValue::on(pct(50)), &seen, &note("advance")).await;
    assert!(matches!(result, Err(ProviderError::Conflict(_))), "{name}: {result:?}");
    assert_eq!(
        hand.observe().await,
        FlagValue::on(pct(30)),
        "{name}: the hand-set value stays"
    );
    let now = flag.read().await.unwrap();
    assert_eq!(now.value, FlagValue::on(pct(30)), "{name}");
    assert_ne!(now.version, seen.version, "{name}: a change by hand moves the version");
    // Turned off by hand is drift too.
    hand.set(FlagValue::OFF).await;
    let result = flag.set(FlagValue::on(pct(50)), &now, &note("advance")).await;
    assert!(matches!(result, Err(ProviderError::Conflict(_))), "{name}: {result:?}");
    assert_eq!(hand.observe().await, FlagValue::OFF, "{name}");
}

/// Setting the value already there succeeds and leaves the flag as it was.
pub async fn setting_the_value_already_there_is_harmless(flag: &dyn FlagProvider, hand: &ByHand<'_>, name: &str) {
    let fresh = flag.read().await.unwrap();
    let again = flag
        .set(FlagValue::OFF, &fresh, &ChangeNote::default())
        .await
        .unwrap_or_else(|e| panic!("{name}: off again: {e:?}"));
    assert_eq!(again.value, FlagValue::OFF, "{name}");
    assert_eq!(flag.read().await.unwrap(), again, "{name}");
    let on = flag
        .set(FlagValue::on(pct(10)), &again, &note("start"))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let same = flag
        .set(FlagValue::on(pct(10)), &on, &note("start again"))
        .await
        .unwrap_or_else(|e| panic!("{name}: on again: {e:?}"));
    assert_eq!(same.value, FlagValue::on(pct(10)), "{name}");
    assert_eq!(flag.read().await.unwrap(), same, "{name}");
    assert_eq!(hand.observe().await, FlagValue::on(pct(10)), "{name}");
    // Still a usable reading: the next change goes through.
    let next = flag
        .set(FlagValue::on(pct(50)), &same, &note("advance"))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(next.value, FlagValue::on(pct(50)), "{name}");
}

/// A flag enabled for 0% reads as off ([`provider::reading_of`]), and can be started from there.
pub async fn enabled_at_zero_reads_as_off(flag: &dyn FlagProvider, hand: &ByHand<'_>, name: &str) {
    assert_eq!(provider::reading_of(true, Percent::ZERO), FlagValue::OFF);
    // On first through flagramp, so providers that keep their own rollout (Unleash's strategy)
    // have one for the person to turn down to 0%.
    let fresh = flag.read().await.unwrap();
    flag.set(FlagValue::on(pct(10)), &fresh, &note("start"))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    hand.set(FlagValue::on(Percent::ZERO)).await;
    let zero = flag.read().await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert_eq!(zero.value, FlagValue::OFF, "{name}: enabled for nobody reads as off");
    let started = flag
        .set(FlagValue::on(pct(10)), &zero, &note("start"))
        .await
        .unwrap_or_else(|e| panic!("{name}: starting from enabled-at-0%: {e:?}"));
    assert_eq!(started.value, FlagValue::on(pct(10)), "{name}");
    assert_eq!(hand.observe().await, FlagValue::on(pct(10)), "{name}");
}

/// A flag that does not exist is [`ProviderError::NotFound`], and a write to it creates nothing.
pub async fn a_missing_flag_is_not_found(flag: &dyn FlagProvider, name: &str) {
    let read = flag.read().await;
    assert!(matches!(read, Err(ProviderError::NotFound(_))), "{name}: {read:?}");
    let made_up = FlagReading {
        value: FlagValue::OFF,
        version: "made-up".into(),
    };
    let result = flag.set(FlagValue::on(pct(10)), &made_up, &ChangeNote::default()).await;
    // A flagd file compares the file's version before it looks for the flag in it, so a made-up
    // reading of a missing flag in an existing file is a conflict; either way nothing is written.
    assert!(
        matches!(result, Err(ProviderError::NotFound(_) | ProviderError::Conflict(_))),
        "{name}: {result:?}"
    );
    let read = flag.read().await;
    assert!(
        matches!(read, Err(ProviderError::NotFound(_))),
        "{name}: still missing: {read:?}"
    );
}

/// Every scenario, each on a fresh flag of `system`.
pub async fn run_all(system: &dyn FlagSystem, name: &str) {
    macro_rules! scenario {
        ($f:ident) => {{
            let key = unique(stringify!($f).split('_').next().unwrap());
            system.create_flag(&key).await;
            let flag = system.provider(&key);
            let hand = ByHand { system, key };
            $f(&*flag, &hand, &format!("{name}: {}", stringify!($f))).await;
        }};
    }
    scenario!(a_fresh_flag_reads_off);
    scenario!(set_on_reads_back_at_a_new_version);
    scenario!(a_stale_seen_is_a_conflict_and_writes_nothing);
    scenario!(setting_the_value_already_there_is_harmless);
    scenario!(enabled_at_zero_reads_as_off);
    let missing = system.provider(&unique("missing"));
    a_missing_flag_is_not_found(&*missing, &format!("{name}: a_missing_flag_is_not_found")).await;
}

/// A runner conformance [`Harness`] as a [`FlagSystem`]: the provider is the one a spec with the
/// harness's `flag:` block gets ([`provider::for_flag`]), flag files in the harness's root.
struct ThroughSpec<H>(H);

#[async_trait::async_trait]
impl<H: Harness> FlagSystem for ThroughSpec<H> {
    async fn create_flag(&self, key: &str) {
        self.0.create_flag(key).await;
    }

    async fn set_by_hand(&self, key: &str, value: FlagValue) {
        self.0.set_by_hand(key, value).await;
    }

    async fn observe(&self, key: &str) -> FlagValue {
        self.0.observe(key).await
    }

    fn provider(&self, key: &str) -> Box<dyn FlagProvider> {
        let token_env = self.0.token(true).unwrap_or_default();
        let spec = super::spec(&self.0.flag_block(key, &token_env), "[10, 50, 100]");
        let root = self.0.files_root().unwrap_or_else(|| ".".into());
        provider::for_flag(&spec.flag, &FlagFiles::Local(root), &Secrets::new()).unwrap()
    }
}

const FLAGS: &str = "flags/flags.flagd.json";
const FLAG_BRANCH: &str = "flagramp-flags";

/// A flagd file on a branch of the fake GitHub; a person edits it by committing to the branch.
struct FlagdOnBranch {
    fake: FakeGitHub,
    github: Arc<GitHub>,
    lock: Mutex<()>,
}

impl FlagdOnBranch {
    async fn start() -> FlagdOnBranch {
        let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
        fake.put_file(
            FLAG_BRANCH,
            FLAGS,
            br#"{"flags":{"dark-mode":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"}}}"#,
        );
        let github = Arc::new(
            GitHub::new(&fake.uri(), "ghs_conformance", "octo-org/octo-repo")
                .unwrap()
                .with_call_timeout(Duration::from_secs(10)),
        );
        FlagdOnBranch {
            fake,
            github,
            lock: Mutex::new(()),
        }
    }

    fn doc(&self) -> Value {
        serde_json::from_slice(&self.fake.file(FLAG_BRANCH, FLAGS).unwrap()).unwrap()
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let _guard = self.lock.lock().unwrap();
        let mut doc = self.doc();
        f(&mut doc);
        self.fake
            .put_file(FLAG_BRANCH, FLAGS, &serde_json::to_vec_pretty(&doc).unwrap());
    }
}

#[async_trait::async_trait]
impl FlagSystem for FlagdOnBranch {
    async fn create_flag(&self, key: &str) {
        self.edit(|doc| {
            doc["flags"][key] =
                json!({ "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" })
        });
    }

    async fn set_by_hand(&self, key: &str, value: FlagValue) {
        self.edit(|doc| super::flagd::set_by_hand(&mut doc["flags"][key], value));
    }

    async fn observe(&self, key: &str) -> FlagValue {
        super::flagd::observed(&self.doc()["flags"][key])
    }

    fn provider(&self, key: &str) -> Box<dyn FlagProvider> {
        let block = format!("{{ provider: flagd, key: {key}, flagd: {{ path: {FLAGS}, branch: {FLAG_BRANCH} }} }}");
        let spec = super::spec(&block, "[10, 50, 100]");
        let files = FlagFiles::GitHub {
            github: self.github.clone(),
            default_branch: "main".into(),
        };
        provider::for_flag(&spec.flag, &files, &Secrets::new()).unwrap()
    }
}

/// The in-memory flags; a person's change is [`MemoryFlags::set_by_hand`].
struct Memory(MemoryFlags);

#[async_trait::async_trait]
impl FlagSystem for Memory {
    async fn create_flag(&self, key: &str) {
        self.0.create(key, FlagValue::OFF);
    }

    async fn set_by_hand(&self, key: &str, value: FlagValue) {
        assert!(self.0.set_by_hand(key, value), "no flag {key}");
    }

    async fn observe(&self, key: &str) -> FlagValue {
        self.0.value(key).unwrap_or_else(|| panic!("no flag {key}"))
    }

    fn provider(&self, key: &str) -> Box<dyn FlagProvider> {
        Box::new(self.0.flag(key))
    }
}

#[tokio::test]
async fn flagd_local_file_conforms() {
    run_all(&ThroughSpec(FlagdHarness::new()), "flagd local file").await;
}

#[tokio::test]
async fn flagd_file_on_a_github_branch_conforms() {
    let system = FlagdOnBranch::start().await;
    run_all(&system, "flagd file on a branch").await;
    // The notes went into the commit messages on the branch.
    let messages: Vec<String> = system
        .fake
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with(FLAGS))
        .filter_map(|r| r.body.as_ref()?["message"].as_str().map(str::to_string))
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("Reason: start at 10%")),
        "{messages:?}"
    );
    system.fake.assert_conformant();
}

#[tokio::test]
#[ignore = "needs services: run scripts/test"]
async fn unleash_conforms() {
    run_all(&ThroughSpec(UnleashHarness::new()), "unleash").await;
}

#[tokio::test]
async fn launchdarkly_fake_conforms() {
    let system = ThroughSpec(LaunchDarklyHarness::start().await);
    run_all(&system, "launchdarkly").await;
    system.0.fake.assert_conformant();
}

#[tokio::test]
async fn memory_flags_conform() {
    run_all(&Memory(MemoryFlags::new()), "memory").await;
}
