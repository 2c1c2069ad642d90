//! The crate root's curated API is enough to embed flagramp: parse a spec, decide with the pure
//! engine, carry the decision out on the in-memory flag and state store, and report it. Only
//! root items are used here, so this fails to build if the API loses one.

use std::path::Path;

use flagramp::{
    evaluate, parse_spec, report, ChangeNote, DecisionKind, FlagProvider, FlagValue, Input, MemoryFlags,
    MemoryStateStore, Rule, StateStore, Step,
};

const SPEC: &str = "version: 1
name: checkout
flag: { key: new-checkout, provider: flagd, flagd: { path: flags.json } }
stages: [{ percent: 10, bake: 1h }, { percent: 100, bake: 1h }]
checks:
  - { name: ok, command: [\"./ok.sh\"], pass: \"== 1\" }
";

#[tokio::test]
async fn the_root_api_starts_a_rollout_in_memory() {
    let (spec, _, problems) = parse_spec(Path::new("checkout.yml"), SPEC);
    assert!(problems.is_empty(), "{problems:?}");
    let spec = spec.expect("a valid spec");
    let flags = MemoryFlags::new();
    flags.create("new-checkout", FlagValue::OFF);
    let flag = flags.flag("new-checkout");
    let store = MemoryStateStore::new();

    let reading = flag.read().await.expect("the flag reads");
    let now = "2026-11-24T09:00:00Z".parse().unwrap();
    let input = Input {
        spec: &spec,
        state: None,
        flag: Ok(reading.value),
        now,
        actor: "flagramp",
    };
    let Step::Decided(evaluation) = evaluate(input, None) else {
        panic!("a rollout that has not started needs no checks to start");
    };
    assert_eq!(evaluation.record.decision, DecisionKind::Start);
    assert_eq!(evaluation.record.rule, Some(Rule::Start));
    let to = evaluation.flag_change.expect("a start sets the flag");
    flag.set(to, &reading, &ChangeNote::default())
        .await
        .expect("the flag is set");
    let state = evaluation.state.expect("a start is recorded");
    store.save(&state, None).await.expect("the state is saved");

    assert_eq!(flags.value("new-checkout"), Some(FlagValue::on(to.percent)));
    let stored = store.load("checkout").await.unwrap().expect("state is there");
    assert_eq!(stored.state.history.last(), Some(&evaluation.record));
    let text = report::text::decisions(std::slice::from_ref(&evaluation.record), report::Target::Cli);
    assert!(text.starts_with("checkout (new-checkout): started 0% → 10%"), "{text}");
}
