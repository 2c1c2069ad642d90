//! The flagd file provider: owns one flag, keeps everything else, writes atomically, and refuses
//! (writing nothing) when the file or flag is missing or shaped in a way it cannot own.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use flagramp::percent::Percent;
use flagramp::provider::{ChangeNote, FlagProvider, FlagdFile, ProviderError};
use flagramp::state::FlagValue;

use crate::support::pct;

const SAMPLE: &str = include_str!("fixtures/flagd/samples-example_flags.flagd.json");

/// The upstream sample file plus a `new-checkout` flag shaped as flagramp expects.
fn sample_with(flag: Value) -> Value {
    let mut doc: Value = serde_json::from_str(SAMPLE).unwrap();
    doc["flags"]["new-checkout"] = flag;
    doc
}

fn fresh_flag() -> Value {
    json!({ "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" })
}

fn write(dir: &Path, doc: &Value) -> PathBuf {
    let path = dir.join("flags.flagd.json");
    std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    path
}

fn provider(path: &Path, key: &str) -> FlagdFile {
    FlagdFile::new(path.parent().unwrap(), Path::new(path.file_name().unwrap()), key.into())
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn sets_a_fractional_rule_with_on_first_in_thousandths_and_keeps_every_other_flag() {
    let dir = tempfile::tempdir().unwrap();
    let original = sample_with(fresh_flag());
    let path = write(dir.path(), &original);
    let p = provider(&path, "new-checkout");
    let seen = p.read().await.unwrap();
    assert_eq!(seen.value, FlagValue::OFF);

    let back = p
        .set(
            FlagValue::on(Percent::from_millis(12_500).unwrap()),
            &seen,
            &ChangeNote::default(),
        )
        .await
        .unwrap();
    assert_eq!(back.value, FlagValue::on(Percent::from_millis(12_500).unwrap()));
    let doc = read_json(&path);
    let flag = &doc["flags"]["new-checkout"];
    assert_eq!(flag["state"], "ENABLED");
    assert_eq!(
        flag["targeting"],
        json!({ "fractional": [["on", 12500], ["off", 87500]] })
    );
    assert_eq!(flag["variants"], original["flags"]["new-checkout"]["variants"]);
    assert_eq!(flag["defaultVariant"], "off");
    for (key, value) in original["flags"].as_object().unwrap() {
        if key != "new-checkout" {
            assert_eq!(&doc["flags"][key], value, "flag {key} changed");
        }
    }
    assert_eq!(doc["$schema"], original["$schema"]);
    // Key order is kept, so the diff in a pull request shows only the flag that changed.
    let keys: Vec<&String> = doc["flags"].as_object().unwrap().keys().collect();
    let original_keys: Vec<&String> = original["flags"].as_object().unwrap().keys().collect();
    assert_eq!(keys, original_keys);
}

#[tokio::test]
async fn turning_off_sets_disabled_and_keeps_the_rule_for_later() {
    let dir = tempfile::tempdir().unwrap();
    let flag = json!({ "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off",
                       "targeting": { "fractional": [["on", 50000], ["off", 50000]] } });
    let path = write(dir.path(), &sample_with(flag));
    let p = provider(&path, "new-checkout");
    let seen = p.read().await.unwrap();
    assert_eq!(seen.value, FlagValue::on(pct(50)));
    p.set(FlagValue::OFF, &seen, &ChangeNote::default()).await.unwrap();
    let doc = read_json(&path);
    assert_eq!(doc["flags"]["new-checkout"]["state"], "DISABLED");
    assert_eq!(
        doc["flags"]["new-checkout"]["targeting"]["fractional"][0],
        json!(["on", 50000])
    );
}

#[tokio::test]
async fn keeps_a_custom_bucketing_expression() {
    let dir = tempfile::tempdir().unwrap();
    let flag = json!({ "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off",
                       "targeting": { "fractional": [{ "var": "email" }, ["on", 10000], ["off", 90000]] } });
    let path = write(dir.path(), &sample_with(flag));
    let p = provider(&path, "new-checkout");
    let seen = p.read().await.unwrap();
    assert_eq!(seen.value, FlagValue::on(pct(10)));
    p.set(FlagValue::on(pct(50)), &seen, &ChangeNote::default())
        .await
        .unwrap();
    let doc = read_json(&path);
    assert_eq!(
        doc["flags"]["new-checkout"]["targeting"],
        json!({ "fractional": [{ "var": "email" }, ["on", 50000], ["off", 50000]] })
    );
}

#[tokio::test]
async fn reads_relative_weights_and_rule_free_flags() {
    let dir = tempfile::tempdir().unwrap();
    let flag = json!({ "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off",
                       "targeting": { "fractional": [["on", 25], ["off", 75]] } });
    let path = write(dir.path(), &sample_with(flag));
    assert_eq!(
        provider(&path, "new-checkout").read().await.unwrap().value,
        FlagValue::on(pct(25))
    );
    // The sample's myBoolFlag: enabled, no rule, default `on` serves everyone.
    assert_eq!(
        provider(&path, "myBoolFlag").read().await.unwrap().value,
        FlagValue::on(Percent::FULL)
    );
}

#[tokio::test]
async fn an_enabled_flag_serving_on_to_nobody_reads_as_off_so_it_can_be_started() {
    let dir = tempfile::tempdir().unwrap();
    for flag in [
        json!({ "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" }),
        json!({ "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off",
                "targeting": { "fractional": [["on", 0], ["off", 100000]] } }),
    ] {
        let path = write(dir.path(), &sample_with(flag));
        let p = provider(&path, "new-checkout");
        let seen = p.read().await.unwrap();
        assert_eq!(seen.value, FlagValue::OFF);
        assert_eq!(
            p.set(FlagValue::on(pct(10)), &seen, &ChangeNote::default())
                .await
                .unwrap()
                .value,
            FlagValue::on(pct(10))
        );
    }
}

async fn assert_refused_and_untouched(path: &Path, key: &str, expect: fn(&ProviderError) -> bool, words: &str) {
    let before = std::fs::read(path).ok();
    let p = provider(path, key);
    let err = p.read().await.unwrap_err();
    assert!(expect(&err), "unexpected error kind: {err:?}");
    assert!(err.to_string().contains(words), "`{err}` should mention `{words}`");
    let fake_seen = flagramp::provider::FlagReading {
        value: FlagValue::OFF,
        version: String::new(),
    };
    assert!(p
        .set(FlagValue::on(pct(10)), &fake_seen, &ChangeNote::default())
        .await
        .is_err());
    assert_eq!(std::fs::read(path).ok(), before, "nothing may be written");
}

#[tokio::test]
async fn a_missing_file_or_flag_is_a_clear_error_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    assert_refused_and_untouched(
        &missing,
        "new-checkout",
        |e| matches!(e, ProviderError::NotFound(_)),
        "does not exist",
    )
    .await;
    assert!(!missing.exists());
    let path = write(dir.path(), &serde_json::from_str(SAMPLE).unwrap());
    assert_refused_and_untouched(
        &path,
        "new-checkout",
        |e| matches!(e, ProviderError::NotFound(_)),
        "is not in",
    )
    .await;
}

#[tokio::test]
async fn flags_of_a_shape_it_cannot_own_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &serde_json::from_str(SAMPLE).unwrap());
    let cannot = |e: &ProviderError| matches!(e, ProviderError::CannotOwn(_));
    // Upstream sample flags: an `if` rule, and variants other than on/off.
    assert_refused_and_untouched(&path, "isColorYellow", cannot, "targeting other than").await;
    assert_refused_and_untouched(&path, "myStringFlag", cannot, "no `on` and `off` variants").await;
    // Upstream schema test: weights computed from the clock.
    let dynamic: Value = serde_json::from_str(include_str!(
        "fixtures/flagd/targeting--positive--fractional-dynamic-weights.json"
    ))
    .unwrap();
    let flag = json!({ "state": "ENABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off", "targeting": dynamic });
    let path = write(dir.path(), &sample_with(flag));
    assert_refused_and_untouched(&path, "new-checkout", cannot, "fractional rule that is not").await;
    // A third variant in the split.
    let flag = json!({ "state": "ENABLED", "variants": { "on": true, "off": false, "beta": true }, "defaultVariant": "off",
                       "targeting": { "fractional": [["on", 10], ["beta", 10], ["off", 80]] } });
    let path = write(dir.path(), &sample_with(flag));
    assert_refused_and_untouched(&path, "new-checkout", cannot, "fractional rule that is not").await;
    std::fs::write(&path, "{ not json").unwrap();
    assert_refused_and_untouched(&path, "new-checkout", cannot, "not valid JSON").await;
}

#[tokio::test]
async fn a_change_to_another_flag_of_the_file_is_kept_and_ours_applied_to_it() {
    // Another rollout of this run, or another run, wrote the file's other flag since we read
    // ours: our change is applied to the file as it is now, without deciding again.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &sample_with(fresh_flag()));
    let p = provider(&path, "new-checkout");
    let seen = p.read().await.unwrap();
    let mut theirs = sample_with(fresh_flag());
    theirs["flags"]["myBoolFlag"]["defaultVariant"] = json!("off");
    write(dir.path(), &theirs);
    let back = p
        .set(FlagValue::on(pct(10)), &seen, &ChangeNote::default())
        .await
        .unwrap();
    assert_eq!(back.value, FlagValue::on(pct(10)));
    let now = read_json(&path);
    assert_eq!(
        now["flags"]["myBoolFlag"]["defaultVariant"], "off",
        "their write survives"
    );
    assert_eq!(now["flags"]["new-checkout"]["state"], "ENABLED");
}

#[tokio::test]
async fn a_change_to_our_flag_since_it_was_read_is_a_conflict_and_the_other_write_survives() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &sample_with(fresh_flag()));
    let p = provider(&path, "new-checkout");
    let seen = p.read().await.unwrap();
    let mut theirs = sample_with(fresh_flag());
    theirs["flags"]["new-checkout"]["defaultVariant"] = json!("on");
    write(dir.path(), &theirs);
    let err = p
        .set(FlagValue::on(pct(10)), &seen, &ChangeNote::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Conflict(_)), "{err:?}");
    assert_eq!(read_json(&path), theirs);
}

#[tokio::test]
async fn writes_leave_no_temporary_files_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &sample_with(fresh_flag()));
    let p = provider(&path, "new-checkout");
    let mut seen = p.read().await.unwrap();
    for percent in [10, 50, 100] {
        seen = p
            .set(FlagValue::on(pct(percent)), &seen, &ChangeNote::default())
            .await
            .unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["flags.flagd.json".to_string()]);
    assert_eq!(
        read_json(&path)["flags"]["new-checkout"]["targeting"],
        json!({ "fractional": [["on", 100000], ["off", 0]] })
    );
}
