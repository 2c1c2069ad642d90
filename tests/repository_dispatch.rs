//! The fast path for rollback (issue 12): a `repository_dispatch` of event type `flagramp` whose
//! `client_payload` is `{command, rollout, reason}` acts like a manual command, end to end against
//! the fake GitHub; a payload flagramp does not accept (another event type, an unknown command,
//! `advance`, which must not bypass the approval of the workflow's `advance` job, no rollout, keys
//! it does not read) fails the step with a clear error and changes nothing.

use serde_json::{json, Value};

use crate::action::{fixture, flag_on_branch, octo_repo, spec, state_on_branch, stdout, Job};

/// GitHub's documented repository_dispatch payload (tests/fixtures/README.md), with flagramp's
/// event type and `client_payload`.
fn dispatch(client_payload: Value) -> Value {
    let mut event = fixture("repository_dispatch.json");
    event["action"] = json!(flagramp::action::REPOSITORY_DISPATCH_TYPE);
    event["client_payload"] = client_payload;
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_dispatch_rolls_back_with_its_reason_and_the_summary_says_so() {
    let fake = octo_repo().await;
    let job = Job::new(&spec("report: { pull_request: none }\n"));
    let schedule = fixture("schedule.synthetic.json");
    // Two ticks: started at 10%, then advanced to 50% (the spec's bakes are 0s).
    for _ in 0..2 {
        let out = job
            .run(&fake, "octo-org/octo-repo", "schedule", &schedule, &[], &[])
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    }
    assert_eq!(
        flag_on_branch(&fake, "main")["targeting"]["fractional"][0],
        json!(["on", 50000])
    );

    // The reason comes from outside: it may be long, and try to forge a log line or HTML.
    let reason = format!(
        "alert: checkout 5xx\n::warning::forged <b>bold</b> {}",
        "x".repeat(10_000)
    );
    let event = dispatch(json!({ "command": "rollback", "rollout": "new-checkout", "reason": reason }));
    let out = job
        .run(&fake, "octo-org/octo-repo", "repository_dispatch", &event, &[], &[])
        .await;
    let log = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("rollback on `repository_dispatch`"), "{log}");

    let flag = flag_on_branch(&fake, "main");
    assert_eq!(flag["state"], "ENABLED");
    assert_eq!(
        flag["targeting"]["fractional"][0],
        json!(["on", 10000]),
        "one stage back"
    );
    let state = state_on_branch(&fake);
    assert_eq!(
        state["locked"], true,
        "locked against advancing until a person advances"
    );
    let last = state["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["rule"], "rollback", "{last:#}");
    assert_eq!(last["actor"], "octocat", "{last:#}");
    let recorded = last["reason"].as_str().unwrap();
    assert!(
        recorded.starts_with("“alert: checkout 5xx\n::warning::forged"),
        "{last:#}"
    );
    assert!(
        recorded.len() <= flagramp::secrets::OUTSIDE_TEXT_LIMIT && recorded.ends_with(flagramp::secrets::CUT_MARK),
        "capped as it entered the record: {} bytes",
        recorded.len()
    );
    assert!(!log.lines().any(|l| l.starts_with("::warning::forged")), "{log}");

    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    assert_eq!(decisions[0]["decision"], "rollback");
    assert_eq!(job.outputs()["rolled_back"], "1");
    let summary = job.summary();
    assert!(summary.contains("1 rolled back"), "{summary}");
    assert!(summary.contains("alert: checkout 5xx"), "{summary}");
    assert!(!summary.contains("<b>bold</b>"), "escaped for Markdown: {summary}");
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_come_by_repository_dispatch_too() {
    let fake = octo_repo().await;
    let job = Job::new(&spec("report: { pull_request: none }\n"));
    for (command, paused) in [("pause", true), ("resume", false)] {
        let event = dispatch(json!({ "command": command, "rollout": "new-checkout" }));
        let out = job
            .run(&fake, "octo-org/octo-repo", "repository_dispatch", &event, &[], &[])
            .await;
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stdout(&out));
        assert_eq!(state_on_branch(&fake)["paused"], paused, "{command}");
    }
    assert_eq!(
        flag_on_branch(&fake, "main")["state"],
        "DISABLED",
        "neither exposes anyone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_flagramp_does_not_accept_is_a_clear_error_and_changes_nothing() {
    let fake = octo_repo().await;
    let job = Job::new(&spec("report: { pull_request: none }\n"));
    let rollback = json!({ "command": "rollback", "rollout": "new-checkout" });
    let mut other_type = dispatch(rollback.clone());
    other_type["action"] = json!("on-demand-test");
    let mut no_type = dispatch(rollback.clone());
    no_type.as_object_mut().unwrap().remove("action");
    let mut no_payload = dispatch(Value::Null);
    no_payload.as_object_mut().unwrap().remove("client_payload");
    let cases = [
        (
            other_type,
            "repository_dispatch event type `on-demand-test` is not `flagramp`",
        ),
        (no_type, "repository_dispatch event type (missing) is not `flagramp`"),
        (no_payload, "repository_dispatch client_payload is missing"),
        (dispatch(json!(["rollback"])), "client_payload is not an object"),
        (
            dispatch(json!({ "command": "deploy", "rollout": "new-checkout" })),
            "client_payload `command` is `deploy`; send",
        ),
        (
            dispatch(json!({ "command": "run" })),
            "client_payload `command` is `run`; send",
        ),
        (
            dispatch(json!({ "command": "advance", "rollout": "new-checkout" })),
            "`advance` cannot come by repository_dispatch",
        ),
        (
            dispatch(json!({ "command": "ADVANCE ", "rollout": "new-checkout" })),
            "`advance` cannot come by repository_dispatch",
        ),
        (
            dispatch(json!({ "command": "rollback" })),
            "client_payload has no `rollout` for `rollback`",
        ),
        (
            dispatch(json!({ "rollout": "new-checkout" })),
            "client_payload has no `command`",
        ),
        (
            dispatch(json!({ "command": 1, "rollout": "new-checkout" })),
            "client_payload `command` is not a string",
        ),
        (
            dispatch(json!({ "command": "rollback", "rollout": "new-checkout", "dry_run": true })),
            "client_payload has `dry_run`, which flagramp does not read",
        ),
        (
            dispatch(json!({ "command": "rollback", "rollout": "../new-checkout" })),
            "the rollout `../new-checkout` (input or dispatch input `rollout`) is not a rollout name",
        ),
        (
            dispatch(json!({ "command": "rollback", "rollout": "nope" })),
            "unknown rollout `nope`",
        ),
    ];
    for (event, words) in cases {
        let out = job
            .run(&fake, "octo-org/octo-repo", "repository_dispatch", &event, &[], &[])
            .await;
        let log = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{words}: {log}");
        assert!(log.contains("::error title=") && log.contains(words), "{words}: {log}");
    }
    assert_eq!(fake.writes(), 0, "nothing was written");
    assert!(!fake.branch_exists(crate::action::STATE_BRANCH));
    assert_eq!(flag_on_branch(&fake, "main")["state"], "DISABLED");
}
