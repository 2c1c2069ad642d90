//! The job summary and the pull request comment: rendered Markdown (snapshots) and GitHub's size
//! limits, whatever the number of rollouts.

use chrono::{DateTime, Utc};

use flagramp::action::comment::MARKER;
use flagramp::check::Verdict;
use flagramp::record::{BakeProgress, CheckRecord, DecisionKind, DecisionRecord, Failures, Rule};
use flagramp::report::{self, RolloutReport, COMMENT_LIMIT, SUMMARY_LIMIT};
use flagramp::spec::Diagnostic;

use crate::support::pct;

const RUN: &str = "https://github.com/octo-org/octo-repo/actions/runs/4242";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn record(
    rollout: &str,
    decision: DecisionKind,
    from: u32,
    to: u32,
    stage: Option<usize>,
    reason: &str,
) -> DecisionRecord {
    let at = t("2026-11-24T10:00:00Z");
    DecisionRecord {
        from_percent: pct(from),
        to_percent: pct(to),
        stage,
        ..DecisionRecord::bare(
            rollout,
            &rollout.replace('-', "_"),
            decision,
            at,
            "flagramp",
            reason.into(),
        )
    }
}

fn checks() -> Vec<CheckRecord> {
    vec![
        CheckRecord {
            name: "success-rate".into(),
            query: "sum(rate(http_requests_total{code!~\"5..\"}[10m])) / sum(rate(http_requests_total[10m])) | x"
                .into(),
            value: Some(0.8),
            condition: ">= 0.95".into(),
            verdict: Verdict::Fail,
            detail: None,
            at: None,
            gate: true,
            control_value: None,
            compare: None,
        },
        CheckRecord {
            name: "latency-p99".into(),
            query: "histogram_quantile(0.99, sum by (le) (rate(latency_bucket[5m])))".into(),
            value: None,
            condition: "< 300".into(),
            verdict: Verdict::NoData,
            detail: Some("the query matched no series".into()),
            at: None,
            gate: true,
            control_value: None,
            compare: None,
        },
        CheckRecord {
            name: "smoke".into(),
            query: "./scripts/smoke.sh --fast".into(),
            value: Some(1.0),
            condition: "== 1".into(),
            verdict: Verdict::Pass,
            detail: None,
            at: None,
            gate: true,
            control_value: None,
            compare: None,
        },
    ]
}

fn reports() -> Vec<RolloutReport> {
    let mut rollback = record(
        "new-checkout",
        DecisionKind::Rollback,
        50,
        10,
        Some(0),
        "success-rate 0.8 < 0.95 (needs >= 0.95): failure 1 of 1, so back to stage 1 of 3 (10%)",
    );
    rollback.checks = checks();
    rollback.rule = Some(Rule::Rollback);
    rollback.failures = Some(Failures { count: 1, limit: 1 });
    rollback.bake = Some(BakeProgress {
        required_s: 3600,
        elapsed_s: 1200,
    });
    rollback.locked = true;
    let mut hold = record(
        "search-v2",
        DecisionKind::Hold,
        10,
        10,
        Some(0),
        "the check passes; stage 1 of 3 (10%) baked 30m of 1h, its bake ends 2026-11-24 10:30 UTC",
    );
    hold.rule = Some(Rule::Bake);
    hold.bake = Some(BakeProgress {
        required_s: 3600,
        elapsed_s: 1800,
    });
    hold.eligible_at = Some(t("2026-11-24T10:30:00Z"));
    let history = vec![
        record(
            "new-checkout",
            DecisionKind::Start,
            0,
            10,
            Some(0),
            "not started yet; the first stage is stage 1 of 3 (10%)",
        ),
        record(
            "new-checkout",
            DecisionKind::Advance,
            10,
            50,
            Some(1),
            "all 3 checks pass and stage 1 of 3 (10%) baked 1h of 1h; next is stage 2 of 3 (50%)",
        ),
    ];
    vec![
        RolloutReport {
            warnings: Vec::new(),
            record: rollback,
            provider: "flagd file `flags/flags.flagd.json` on `main`".into(),
            stages: vec![pct(10), pct(50), pct(100)],
            history,
        },
        RolloutReport {
            warnings: Vec::new(),
            record: hold,
            provider: "flagd file `flags/search.json` on `main`".into(),
            stages: vec![pct(10), pct(50), pct(100)],
            history: Vec::new(),
        },
        RolloutReport {
            warnings: Vec::new(),
            record: DecisionRecord {
                actor: "octocat".into(),
                rule: Some(Rule::Rollback),
                locked: true,
                ..record(
                    "dark-mode",
                    DecisionKind::Disable,
                    10,
                    0,
                    None,
                    "rollback by octocat (incident 123) from 10%, back to off",
                )
            },
            provider: "flagd file `flags/flags.flagd.json` on `main`".into(),
            stages: vec![pct(10), pct(100)],
            history: Vec::new(),
        },
    ]
}

/// The same decisions as a plan or dry run would make them.
fn planned(reports: Vec<RolloutReport>) -> Vec<RolloutReport> {
    reports
        .into_iter()
        .map(|mut r| {
            r.record.planned = true;
            r
        })
        .collect()
}

#[test]
fn job_summary_markdown() {
    let summary = report::summary(&reports(), &[], RUN);
    // A run says what it did, with the bake behind each hold.
    assert!(summary.contains("**⏬ Rolled back** 50% → 10%"), "{summary}");
    assert!(summary.contains("· baked 30m of 1h"), "{summary}");
    assert!(!summary.contains("ould "), "{summary}");
    insta::assert_snapshot!("job_summary", summary);
}

#[test]
fn plan_summary_and_comment_say_what_would_happen() {
    let summary = report::summary(&planned(reports()), &[], RUN);
    for said in [
        "plan only, nothing was changed",
        "**⏬ Would roll back** 50% → 10%",
        "**⏸️ Would hold** at 10%",
        "**⛔ Would turn off** 10% → 0%",
    ] {
        assert!(summary.contains(said), "{said}:\n{summary}");
    }
    assert!(
        !summary.contains("Rolled back") && !summary.contains("Turned off"),
        "{summary}"
    );
    insta::assert_snapshot!("plan_summary", summary);
    // A plan of a rollout that is locked already: the step to take is real.
    let mut locked = reports()[1].clone();
    locked.record = DecisionRecord {
        rollout: "payments".into(),
        rule: Some(Rule::Locked),
        locked: true,
        eligible_at: None,
        reason: "the check passes, but it was rolled back earlier and is locked against advancing".into(),
        ..locked.record
    };
    let mut with_locked = reports();
    with_locked.push(locked);
    let comment = report::comment(
        MARKER,
        "flagramp plan for this pull request",
        &planned(with_locked),
        &[],
        RUN,
    );
    // A plan's rollback has not happened, so it names no step to undo it.
    assert!(!comment.contains("`rollout: new-checkout`"), "{comment}");
    assert!(comment.contains("**⏬ Would roll back** 50% → 10%"), "{comment}");
    // A person in GitHub is pointed at the manual workflow run, not at a CLI command.
    assert!(
        comment.contains("with `command: advance`, `rollout: payments`"),
        "{comment}"
    );
    assert!(!comment.contains("flagramp advance"), "{comment}");
    insta::assert_snapshot!("plan_comment", comment);
}

#[test]
fn pull_request_comment_markdown_with_spec_problems() {
    let problems = vec![Diagnostic {
        file: ".github/rollouts/new-checkout.yml".into(),
        line: 12,
        column: 5,
        message: "stages must strictly increase: 50% comes after 50%".into(),
        hint: Some("list each percentage once, lowest first, ending at 100".into()),
    }];
    let body = report::comment(
        MARKER,
        "flagramp plan for this pull request",
        &reports()[..1],
        &problems,
        RUN,
    );
    assert!(body.starts_with(MARKER));
    insta::assert_snapshot!("pull_request_comment", body);
}

#[test]
fn counts_cover_every_decision_kind() {
    let records: Vec<DecisionRecord> = reports().into_iter().map(|r| r.record).collect();
    let counts = report::counts(&records);
    assert_eq!(counts.len(), 9);
    assert_eq!(
        (counts["rollback"], counts["hold"], counts["disable"], counts["start"]),
        (1, 1, 1, 0)
    );
    assert_eq!(report::tallies(&records), (0, 2, 1));
}

fn many(n: usize) -> Vec<RolloutReport> {
    (0..n)
        .map(|i| {
            let mut r = reports()[0].clone();
            r.record.rollout = format!("rollout-{i:05}");
            r
        })
        .collect()
}

#[test]
fn the_summary_stays_under_one_mebibyte_whatever_the_number_of_rollouts() {
    let summary = report::summary(&many(5000), &[], RUN);
    assert!(summary.len() <= SUMMARY_LIMIT, "{} bytes", summary.len());
    assert!(summary.contains("more rollouts not shown here") && summary.contains(RUN));
    assert!(
        summary.starts_with("**flagramp** · 5000 rollouts"),
        "the counts line covers every rollout"
    );
}

#[test]
fn the_comment_stays_under_65536_characters_and_cuts_on_a_character_boundary() {
    let body = report::comment(MARKER, "status", &many(500), &[], RUN);
    assert!(body.chars().count() <= COMMENT_LIMIT);
    assert!(body.contains("more rollouts not shown here"));
    // One enormous section (multi-byte characters throughout) is cut, not dropped, and stays valid UTF-8.
    let mut huge = reports()[0].clone();
    huge.record.reason = "é✓".repeat(40_000);
    let body = report::comment(MARKER, "status", &[huge], &[], RUN);
    assert!(body.len() <= COMMENT_LIMIT, "{}", body.len());
    assert!(
        body.contains(&format!("…cut to stay under GitHub's size limit: see [the run]({RUN})")),
        "{}",
        &body[body.len() - 300..]
    );
    assert!(body.contains("é✓é✓"), "the section is cut, not dropped");
}

#[test]
fn progress_bolds_where_the_flag_really_is_not_a_stale_stage_index() {
    // Decided while the stages were [10, 50, 100] (stage index 0 = 10%); a pull request then
    // edits them to [5, 25, 100]. The flag is at 10%: between 5% and 25%.
    let stages = vec![pct(5), pct(25), pct(100)];
    let at_ten = record("new-checkout", DecisionKind::Hold, 10, 10, Some(0), "holding");
    assert_eq!(report::progress(&stages, &at_ten), "**5%** (flag at 10%) → 25% → 100%");
    let body = report::comment(
        MARKER,
        "flagramp plan for this pull request",
        &[RolloutReport {
            warnings: Vec::new(),
            record: at_ten,
            provider: "flagd file `flags/flags.flagd.json` on `main`".into(),
            stages: stages.clone(),
            history: Vec::new(),
        }],
        &[],
        RUN,
    );
    assert!(body.contains("**5%** (flag at 10%) → 25% → 100%"), "{body}");
    assert!(!body.contains("**5%** → 25%"), "{body}");
    // A stage index that points elsewhere is ignored: the percentage decides.
    let at_fifty = record("new-checkout", DecisionKind::Advance, 10, 50, Some(0), "advanced");
    assert_eq!(
        report::progress(&[pct(10), pct(50), pct(100)], &at_fifty),
        "10% → **50%** → 100%"
    );
    // Below the first stage, and off.
    let at_two = record("new-checkout", DecisionKind::Hold, 2, 2, None, "a person set 2%");
    assert_eq!(report::progress(&stages, &at_two), "**2%** · 5% → 25% → 100%");
    let off = record("new-checkout", DecisionKind::Disable, 10, 0, Some(0), "turned off");
    assert_eq!(report::progress(&stages, &off), "**off** · 5% → 25% → 100%");
}

/// A rollout's life in history (a record every 30 minutes from 08:00): started, held, advanced,
/// rolled back, advanced again by a person, and this run's hold at 50%.
fn charted() -> RolloutReport {
    let at = |i: i64| t("2026-11-24T08:00:00Z") + chrono::TimeDelta::minutes(30 * i);
    let entry = |i: i64, decision: DecisionKind, from: u32, to: u32| DecisionRecord {
        at: at(i),
        ..record("new-checkout", decision, from, to, None, "…")
    };
    let history = vec![
        entry(0, DecisionKind::Start, 0, 10),
        entry(1, DecisionKind::Hold, 10, 10),
        entry(2, DecisionKind::Advance, 10, 50),
        entry(3, DecisionKind::Rollback, 50, 10),
        entry(4, DecisionKind::Hold, 10, 10),
        DecisionRecord {
            actor: "octocat".into(),
            ..entry(5, DecisionKind::Advance, 10, 50)
        },
    ];
    let mut now = record(
        "new-checkout",
        DecisionKind::Hold,
        50,
        50,
        Some(1),
        "the check passes; stage 2 of 3 (50%) baked 30m of 1h",
    );
    now.at = at(6);
    now.rule = Some(Rule::Bake);
    RolloutReport {
        record: now,
        provider: "flagd file `flags/flags.flagd.json` on `main`".into(),
        stages: vec![pct(10), pct(50), pct(100)],
        history,
        warnings: Vec::new(),
    }
}

/// The text inside each ```` ```mermaid ```` fence of a report.
fn mermaid_blocks(markdown: &str) -> Vec<String> {
    markdown
        .split("```mermaid\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_comment_shows_each_rollouts_path_as_a_chart() {
    let body = report::comment(MARKER, "flagramp status", &[charted()], &[], RUN);
    let charts = mermaid_blocks(&body);
    assert_eq!(charts.len(), 1, "{body}");
    // Holds repeat a level and are no points; the rollback is a bar as high as where it fell from.
    assert!(charts[0].contains("\n  line [10, 50, 10, 50, 50]\n"), "{}", charts[0]);
    assert!(charts[0].contains("\n  bar [0, 0, 50, 0, 0]\n"), "{}", charts[0]);
    assert!(body.contains("bars: rollbacks"), "{body}");
    insta::assert_snapshot!("comment_with_chart", body);
}

/// What `tests/node/mermaid-parse.mjs` says of each chart: `None` when Mermaid parsed it, or
/// the parse error.
fn mermaid_parse(charts: &[String]) -> Vec<Option<String>> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    match std::env::var_os("FLAGRAMP_TEST_NODE_MODULES") {
        Some(dir) if std::path::Path::new(&dir).join("mermaid").is_dir() => {}
        _ => panic!(
            "FLAGRAMP_TEST_NODE_MODULES is not set or holds no mermaid: run these tests with scripts/test \
             (or `eval \"$(scripts/services start)\"` first, after `scripts/services install`)"
        ),
    }
    // The script imports mermaid and jsdom from its own directory: tests/node/node_modules,
    // which is where scripts/services installs them.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/mermaid-parse.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (scripts/services install installs it)");
    let input = serde_json::to_vec(charts).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "mermaid-parse.mjs failed ({}):\n{stderr}",
        output.status
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("mermaid-parse.mjs printed no JSON ({e}): {stderr}"));
    assert_eq!(results.len(), charts.len());
    results
        .into_iter()
        .map(|r| match r["ok"].as_bool() {
            Some(true) => None,
            _ => Some(r["error"].as_str().unwrap_or("no error given").to_string()),
        })
        .collect()
}

#[test]
#[ignore = "needs services: run scripts/test"]
fn every_chart_in_the_reports_parses_with_mermaid() {
    // A name no spec may have (docs/rules.md §2) still makes a chart Mermaid reads: the title's
    // escaping is the only thing between it and the parser.
    let mut hostile = charted();
    hostile.record.rollout = "a\"b`c#quot;\n```\n<img src=x>&amp; %% --> ; [1]".into();
    let mut planned_rollback = reports()[0].clone();
    planned_rollback.record.planned = true;
    let reports = vec![charted(), hostile, reports()[0].clone(), planned_rollback];
    let mut charts = mermaid_blocks(&report::comment(MARKER, "flagramp status", &reports, &[], RUN));
    charts.extend(mermaid_blocks(&report::summary(&reports, &[], RUN)));
    assert_eq!(
        charts.len(),
        8,
        "every report has a chart, in the comment and the summary"
    );
    // The parser is strict enough to catch what escaping prevents: a raw quote in the title.
    let unescaped = charts[0].replacen("title \"new-checkout\"", "title \"new\"checkout\"", 1);
    assert_ne!(unescaped, charts[0]);
    charts.push(unescaped);
    let verdicts = mermaid_parse(&charts);
    let (last, rendered) = verdicts.split_last().unwrap();
    for (chart, verdict) in charts.iter().zip(rendered) {
        assert_eq!(verdict, &None, "Mermaid rejects:\n{chart}");
    }
    assert!(
        last.is_some(),
        "an unescaped quote must not parse:\n{}",
        charts.last().unwrap()
    );
}

/// The job summary of a scheduled run, from the recorded shape of a `schedule` payload
/// (tests/fixtures/github/schedule.synthetic.json, cron `*/15 * * * *`) and a fixed start.
#[test]
fn a_scheduled_runs_summary_says_how_late_it_started() {
    let event: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/github/schedule.synthetic.json")).unwrap();
    let lag = flagramp::schedule::from_event(&event, t("2026-11-24T10:29:30Z"));
    let note = report::summary::schedule_note(&lag, Some(flagramp::SpecDuration::from_secs(3600)));
    assert_eq!(
        note,
        "This scheduled run started 14 min after its cron's latest slot 10:15 UTC (cron <code>*/15 * * * *</code>): at least that late.\n\n"
    );
    let summary = report::summary::summary_ending(&reports(), &[], RUN, &note, None);
    let mut lines = summary.lines();
    assert!(
        lines.next().unwrap().starts_with("**flagramp** · 3 rollouts"),
        "{summary}"
    );
    assert_eq!(lines.nth(1), Some(note.trim_end()), "{summary}");
    // Past a 10-minute bake, the summary warns.
    let warned = report::summary::schedule_note(&lag, Some(flagramp::SpecDuration::from_secs(600)));
    assert!(
        warned.contains("⚠️ The lag (14 min) is longer than the shortest bake of these rollouts (10m)"),
        "{warned}"
    );
}

#[test]
fn a_section_cut_to_fit_never_leaves_a_chart_open() {
    let mut cut_in_chart = 0;
    let mut huge = charted();
    for pad in (COMMENT_LIMIT - 1400..COMMENT_LIMIT - 200).step_by(13) {
        huge.record.reason = "x".repeat(pad);
        let body = report::comment(MARKER, "status", std::slice::from_ref(&huge), &[], RUN);
        assert!(body.len() <= COMMENT_LIMIT, "{}", body.len());
        let opened = body.matches("```mermaid\n").count();
        let closed = mermaid_blocks(&body)
            .iter()
            .filter(|c| body.contains(&format!("{c}```\n")))
            .count();
        assert_eq!(opened, closed, "an open chart at pad {pad}");
        // The reason ends just before the chart: a cut after it fell inside the chart.
        let cut = body.contains("…cut to stay under");
        cut_in_chart += usize::from(cut && opened == 0 && body.contains("xxx\n\n"));
    }
    assert!(cut_in_chart > 0, "some cut fell inside the chart and dropped it");
}

/// A plan's history "as it would be" ends with the planned decision, marked planned like the
/// record: the chart of a plan that would advance draws the flag where it is, never the advance
/// as if it had happened (docs/rules.md §4, `planned`).
#[tokio::test]
async fn a_plans_chart_never_draws_the_change_it_only_plans() {
    use crate::support::bench::{at_minute, lock_state, runner};
    use flagramp::runner::Mode;
    let repo = crate::support::repo::TempRepo::new();
    repo.write(
        "flags.json",
        r#"{ "flags": { "ramp": { "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off" } } }"#,
    );
    repo.script("check.sh", "echo 1");
    let text = "version: 1\nname: ramp\nflag: { provider: flagd, key: ramp, flagd: { path: flags.json } }\nstages: [{ percent: 10, bake: 0s }, 50, 100]\nchecks:\n  - { name: ok, command: [\"./check.sh\"], pass: \"== 1\" }\n";
    let (spec, _, problems) = flagramp::spec::parse_spec(std::path::Path::new("ramp.yml"), text);
    let spec = spec.unwrap_or_else(|| panic!("{problems:?}"));
    let decide = |minute: i64, mode: Mode| {
        let repo = &repo;
        let spec = spec.clone();
        async move {
            let store = lock_state(&repo.state_dir()).await;
            runner(repo.root(), repo.root(), at_minute(minute), Box::new(store))
                .decide(&spec, &mode)
                .await
        }
    };
    assert_eq!(decide(0, Mode::Run).await.record.decision, DecisionKind::Start);
    let plan = decide(5, Mode::Plan).await;
    assert_eq!(plan.record.decision, DecisionKind::Advance, "{}", plan.record.reason);
    assert!(plan.record.planned);
    let last = plan.history.last().unwrap();
    assert_eq!(last.decision, DecisionKind::Advance);
    assert!(last.planned, "the would-be entry is planned too");

    let report = RolloutReport {
        record: plan.record.clone(),
        provider: String::new(),
        stages: vec![pct(10), pct(50), pct(100)],
        history: plan.history.clone(),
        warnings: Vec::new(),
    };
    let chart = report::chart::mermaid(&report).expect("two points: the start, and now");
    let line = chart.lines().find(|l| l.trim_start().starts_with("line")).unwrap();
    assert!(
        line.contains("[10, 10]"),
        "at 10% since the start, never at 50%: {chart}"
    );
}
