//! Decision records and rollout status: the JSON shapes of docs/rules.md §4.
//!
//! Reports are rendered from these records and never recomputed.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::check::Verdict;
use crate::percent::Percent;
use crate::secrets::{cap, Secrets, OUTSIDE_TEXT_LIMIT};

/// What one evaluation of one rollout decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The rollout began at its first stage.
    Start,
    /// The flag moved up one stage.
    Advance,
    /// Nothing changed; the reason says why.
    Hold,
    /// The flag moved down one stage.
    Rollback,
    /// The flag was turned off.
    Disable,
    /// The final bake at 100% has elapsed; nothing more to do.
    Complete,
    /// Advancing is paused by a person.
    Paused,
    /// The flag is not what flagramp last set: a person changed it; flagramp holds.
    Drift,
    /// The spec, the state or the flag provider could not be used.
    Error,
}

impl DecisionKind {
    /// The word used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Start => "start",
            DecisionKind::Advance => "advance",
            DecisionKind::Hold => "hold",
            DecisionKind::Rollback => "rollback",
            DecisionKind::Disable => "disable",
            DecisionKind::Complete => "complete",
            DecisionKind::Paused => "paused",
            DecisionKind::Drift => "drift",
            DecisionKind::Error => "error",
        }
    }

    /// Whether the decision changes the flag.
    pub fn changes_flag(self) -> bool {
        matches!(
            self,
            DecisionKind::Start | DecisionKind::Advance | DecisionKind::Rollback | DecisionKind::Disable
        )
    }
}

/// Which rule of docs/rules.md §3 decided (manual commands: the command's name; the actor shows
/// who). Records written before this field existed load with `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Rule 1: a pending transition was finished or dropped.
    Pending,
    /// Rule 1: another run's fresh claim; hold.
    Busy,
    /// Rule 2: spec, state or provider unusable.
    Error,
    /// Rule 2: the run's time budget was spent.
    Budget,
    /// Rule 3: a person changed the flag.
    Drift,
    /// Rule 4: started at stage 1.
    Start,
    /// Rules 4 and 9: complete (also `advance` at 100%).
    Complete,
    /// Rule 5: a check errored, had no data or too little.
    Checks,
    /// Rule 5: the cohorts of a `compare` check do not have the sizes the stage's percentage
    /// means (sample ratio mismatch); the data cannot be trusted either way.
    Srm,
    /// Rule 6: a check failed (rolled back, or counted below the limit); also the `rollback` command.
    Rollback,
    /// Rule 7, and the `pause` command's name is `pause`.
    Paused,
    /// Rule 8: locked after a rollback.
    Locked,
    /// Rule 9: the bake has not elapsed.
    Bake,
    /// Rules 4 and 9: outside the window.
    Window,
    /// Rule 9: advanced one stage; also the `advance` command.
    Advance,
    /// The `pause` command.
    Pause,
    /// The `resume` command.
    Resume,
}

/// How long the stage the decision was made at must bake, and how long it has (docs/rules.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BakeProgress {
    /// The stage's bake, in seconds.
    pub required_s: u64,
    /// Seconds since the stage was entered.
    pub elapsed_s: u64,
}

impl BakeProgress {
    /// `baked 30m of 1h`: how reasons and reports say it.
    pub fn describe(&self) -> String {
        let shown = |s: u64| crate::duration::SpecDuration::from_secs(s).to_string();
        // Whole minutes once there are any: `baked 30m of 1h`, not `30m13s`.
        let elapsed = if self.elapsed_s >= 60 {
            self.elapsed_s - self.elapsed_s % 60
        } else {
            self.elapsed_s
        };
        format!("baked {} of {}", shown(elapsed), shown(self.required_s))
    }
}

/// The consecutive failures counted at this decision (the one that triggered a rollback
/// included; the counter itself is reset by it) and the rollback limit (docs/rules.md §3, rule 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Failures {
    /// Consecutive failing evaluations.
    pub count: u32,
    /// `failures_to_rollback`.
    pub limit: u32,
}

/// One check's evidence in a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckRecord {
    /// The check's name.
    pub name: String,
    /// The query, or the command line.
    pub query: String,
    /// The measured value; `null` when there was none.
    pub value: Option<f64>,
    /// The pass condition, e.g. `>= 0.95`.
    pub condition: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Why there is no value, or what failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The time the value is for: the decision time minus the source's lag, so that only
    /// closed windows are judged. `null` in records written before it was kept.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    /// `false` for a shadow check: recorded and reported, never a reason to hold, block or
    /// roll back.
    #[serde(default = "gates")]
    pub gate: bool,
    /// The control query's value, for a check compared with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_value: Option<f64>,
    /// A `compare` check's evidence, when it had counts to judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<CompareRecord>,
}

/// A `compare` check's evidence (docs/statistics.md): the counts judged, the one-sided bound on
/// how much worse the canary is, and the sample ratio check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompareRecord {
    /// The exposed cohort's counts over the data judged.
    pub canary: CohortRecord,
    /// The control cohort's counts over the same data.
    pub control: CohortRecord,
    /// Where the data judged starts: the stage's entry, an earlier evaluation (for `window:
    /// stage`, the suffix that decided), or the start of the fixed window.
    pub since: DateTime<Utc>,
    /// The canary's increase over the control: rate points as a fraction (`0.009` = +0.9 pt),
    /// or, when `relative`, the relative increase (`0.9` = +90%). `null` without enough data.
    pub difference: Option<f64>,
    /// The one-sided lower bound of that increase at `level`; `null` without enough data.
    pub lower_bound: Option<f64>,
    /// The confidence of the bound (`1 − α` of this look and start point).
    pub level: Option<f64>,
    /// Whether `difference`, `lower_bound` and `allowed` are relative increases.
    pub relative: bool,
    /// The increase the check allows (`max_increase` or `max_relative_increase`).
    pub allowed: f64,
    /// The check's false-alarm budget for the whole stage.
    pub alpha: f64,
    /// Which evaluation of this check in this stage this is (1 = the first).
    pub look: u32,
    /// `stage`, or the fixed window (`30m`).
    pub window: String,
    /// Cumulative counts since the stage was entered (`window: stage` only): later evaluations
    /// test the data since this one from them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_counts: Option<StageCounts>,
    /// The sample ratio check, when the cohorts had units to count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srm: Option<SrmRecord>,
}

/// One cohort's counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CohortRecord {
    /// Events (such as failed requests).
    pub events: f64,
    /// What they are counted out of (such as requests).
    pub total: f64,
    /// `events / total`; `null` when `total` is 0.
    pub rate: Option<f64>,
    /// Distinct users or sessions, when the check counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<f64>,
}

/// Counts since the stage was entered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StageCounts {
    /// When the stage was entered.
    pub since: DateTime<Utc>,
    /// The exposed cohort.
    pub canary: CohortRecord,
    /// The control cohort.
    pub control: CohortRecord,
}

/// The sample ratio check of a `compare` check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SrmRecord {
    /// What was counted: `users` (the `units` queries) or `requests` (the `total` queries).
    pub counted: String,
    /// Units in the exposed cohort.
    pub exposed: f64,
    /// Units in both cohorts.
    pub total: f64,
    /// The exposed share the stage's percentage means.
    pub expected_share: f64,
    /// The exposed share counted.
    pub observed_share: f64,
    /// Pearson chi-square p-value (1 degree of freedom).
    pub p_value: f64,
    /// Whether the shares do not fit: the decision holds (`rule: srm`).
    pub mismatch: bool,
}

/// Records written before shadow checks existed only had gating checks.
fn gates() -> bool {
    true
}

/// The actor of automatic runs (`run`, `plan`, `status`); manual commands record the person.
pub const AUTOMATIC_ACTOR: &str = "flagramp";

/// One decision with its evidence. `plan` and `run` print an array of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionRecord {
    /// The rollout's name.
    pub rollout: String,
    /// The flag's key.
    pub flag: String,
    /// What was decided.
    pub decision: DecisionKind,
    /// When (the evaluation time).
    pub at: DateTime<Utc>,
    /// Who: `flagramp` for scheduled runs, a person for manual commands.
    pub actor: String,
    /// The flag's percentage before the decision (0 when off).
    pub from_percent: Percent,
    /// The flag's percentage after the decision (0 when off).
    pub to_percent: Percent,
    /// The 0-based stage after the decision; `null` when not started or off.
    pub stage: Option<usize>,
    /// The decision in one readable sentence, with the numbers behind it.
    pub reason: String,
    /// When the rollout may next move forward, if that is known.
    pub eligible_at: Option<DateTime<Utc>>,
    /// The checks queried for this decision (empty when none were needed).
    pub checks: Vec<CheckRecord>,
    /// A person's command that was not carried out (an advance its checks refused, a rollback of
    /// a flag that is off): nothing changed, and the command exits 3. Absent when `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// The rule that decided; `null` in records written before this field existed.
    #[serde(default)]
    pub rule: Option<Rule>,
    /// Bake progress of the stage the decision was made at; `null` before a stage was entered.
    #[serde(default)]
    pub bake: Option<BakeProgress>,
    /// The consecutive-failure counter and its limit; `null` in older records.
    #[serde(default)]
    pub failures: Option<Failures>,
    /// True for `plan` and dry runs: what the next run would do, nothing was done.
    #[serde(default)]
    pub planned: bool,
    /// After this decision the rollout is locked against advancing (a rollback happened; a
    /// person's `advance` lifts it).
    #[serde(default)]
    pub locked: bool,
    /// After this decision the rollout is paused (a person's `resume` lifts it).
    #[serde(default)]
    pub paused: bool,
    /// A backtest (`flagramp simulate`) only: the simulated percentage differs from the exposure
    /// the replayed data show, so the data judged are not what this rollout would have made.
    /// Absent when `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diverged: bool,
    /// A hold that repeats the last history entry (same decision, rule, percentages and check
    /// verdicts): the time of that entry. Nothing new was recorded. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchanged_since: Option<DateTime<Utc>>,
}

impl DecisionRecord {
    /// A record of `decision` with no evidence yet: at 0%, no stage, no checks, no rule. The
    /// engine's records start here and fill in what they decided.
    pub fn bare(
        rollout: &str,
        flag: &str,
        decision: DecisionKind,
        at: DateTime<Utc>,
        actor: &str,
        reason: String,
    ) -> DecisionRecord {
        DecisionRecord {
            rollout: rollout.to_string(),
            flag: flag.to_string(),
            decision,
            at,
            actor: actor.to_string(),
            from_percent: Percent::ZERO,
            to_percent: Percent::ZERO,
            stage: None,
            reason,
            eligible_at: None,
            checks: Vec::new(),
            refused: false,
            rule: None,
            bake: None,
            failures: None,
            planned: false,
            locked: false,
            paused: false,
            diverged: false,
            unchanged_since: None,
        }
    }
}

/// One rollout's status. `status` prints an array of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Status {
    /// The rollout's name.
    pub rollout: String,
    /// The flag's key.
    pub flag: String,
    /// The stage percentages.
    pub stages: Vec<Percent>,
    /// 0-based index of the current stage; `null` when not started or off.
    pub current_stage: Option<usize>,
    /// The flag's current percentage (0 when off).
    pub current_percent: Percent,
    /// Whether the flag is on.
    pub enabled: bool,
    /// When the rollout started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it last moved up a stage.
    pub last_advanced_at: Option<DateTime<Utc>>,
    /// When it completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Whether advancing is paused.
    pub paused: bool,
    /// Whether a rollback locked it against advancing.
    pub locked: bool,
    /// Whether the spec file still exists (state whose spec is gone is reported too).
    pub spec_found: bool,
    /// Why the flag reading is missing, when the provider could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag_error: Option<String>,
    /// Decisions, newest last (the state file keeps the last 100).
    pub history: Vec<DecisionRecord>,
}

impl CheckRecord {
    /// Redacts every text and caps the detail: what every record passes before it is stored or
    /// printed (README "Secrets").
    pub fn scrub(&mut self, secrets: &Secrets) {
        self.name = secrets.redact(&self.name);
        self.query = secrets.redact(&self.query);
        self.condition = secrets.redact(&self.condition);
        self.detail = self.detail.as_deref().map(|d| secrets.admit(d));
    }
}

impl DecisionRecord {
    /// Redacts every text and caps the reason and details (README "Secrets").
    pub fn scrub(&mut self, secrets: &Secrets) {
        self.rollout = secrets.redact(&self.rollout);
        self.flag = secrets.redact(&self.flag);
        self.actor = cap(&secrets.redact(&self.actor), OUTSIDE_TEXT_LIMIT);
        self.reason = secrets.admit(&self.reason);
        for check in &mut self.checks {
            check.scrub(secrets);
        }
    }
}

impl Status {
    /// Redacts every text, history included (README "Secrets").
    pub fn scrub(&mut self, secrets: &Secrets) {
        self.rollout = secrets.redact(&self.rollout);
        self.flag = secrets.redact(&self.flag);
        self.flag_error = self.flag_error.as_deref().map(|e| secrets.admit(e));
        for record in &mut self.history {
            record.scrub(secrets);
        }
    }
}

impl CompareRecord {
    /// `canary 1.9% vs control 1.0%: +0.9 pt, at least +0.4 pt at 99%`; `None` without a bound.
    pub fn describe(&self) -> Option<String> {
        let (difference, bound, level) = (self.difference?, self.lower_bound?, self.level?);
        let shown = |x: f64| {
            if self.relative {
                format!("{:+}%", rounded(x * 100.0, 1))
            } else {
                format!("{:+} pt", rounded(x * 100.0, 2))
            }
        };
        let allowed = if self.allowed > 0.0 {
            format!(", {} allowed", shown(self.allowed))
        } else {
            String::new()
        };
        Some(format!(
            "canary {} vs control {}: {}, at least {} at {}{allowed}",
            rate_text(self.canary.rate),
            rate_text(self.control.rate),
            shown(difference),
            shown(bound),
            percent_text(level),
        ))
    }

    /// `12,400 / 110,000 requests`: the cohorts' totals the bound is over.
    pub fn sizes(&self) -> String {
        format!(
            "{} / {} requests",
            thousands(self.canary.total),
            thousands(self.control.total)
        )
    }
}

impl SrmRecord {
    /// `sample ratio mismatch: 1,100 of 10,000 users exposed where 10% expects 1,000`.
    pub fn describe(&self) -> String {
        format!(
            "sample ratio mismatch: {} of {} {} exposed where {} expects {} (p = {})",
            thousands(self.exposed),
            thousands(self.total),
            self.counted,
            percent_text(self.expected_share),
            thousands(self.expected_share * self.total),
            crate::check::sig4(self.p_value)
        )
    }
}

/// A rate in percent, 1 decimal from 1% up and 2 below: `1.9%`, `1.0%`, `0.52%`.
fn rate_text(rate: Option<f64>) -> String {
    let Some(r) = rate else { return "n/a".into() };
    let x = r * 100.0;
    if x.abs() >= 1.0 {
        format!("{x:.1}%")
    } else {
        let two = format!("{x:.2}");
        match two.strip_suffix('0') {
            Some(one) if !one.ends_with('.') => format!("{one}%"),
            _ => format!("{two}%"),
        }
    }
}

/// `0.994` → `99.4%`, `0.99` → `99%`.
fn percent_text(fraction: f64) -> String {
    format!("{}%", rounded(fraction * 100.0, 1))
}

/// `x` rounded to `decimals` (so `{}` prints no trailing zeros), and never `-0`.
fn rounded(x: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    let r = (x * factor).round() / factor;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// `12400` → `12,400`; fractions are rounded to whole counts.
pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let whole = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x <= -0.5 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod compare_text_tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(thousands(12_400.0), "12,400");
        assert_eq!(thousands(110_000.0), "110,000");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
        assert_eq!(rate_text(Some(0.019)), "1.9%");
        assert_eq!(rate_text(Some(0.01)), "1.0%");
        assert_eq!(rate_text(Some(0.0052)), "0.52%");
        assert_eq!(rate_text(Some(0.005)), "0.5%");
        assert_eq!(percent_text(0.99), "99%");
        assert_eq!(percent_text(0.99392), "99.4%");
        assert_eq!(format!("{:+} pt", rounded(0.009 * 100.0, 2)), "+0.9 pt");
        assert_eq!(format!("{:+} pt", rounded(-0.0003 * 100.0, 2)), "-0.03 pt");
        assert_eq!(format!("{:+} pt", rounded(0.0, 2)), "+0 pt");
    }

    #[test]
    fn a_compare_record_reads_as_the_rules_show_it() {
        let cohort = |events: f64, total: f64| CohortRecord {
            events,
            total,
            rate: Some(events / total),
            units: None,
        };
        let record = CompareRecord {
            canary: cohort(235.6, 12_400.0),
            control: cohort(1_100.0, 110_000.0),
            since: "2026-11-24T08:00:00Z".parse().unwrap(),
            difference: Some(0.009),
            lower_bound: Some(0.004),
            level: Some(0.99),
            relative: false,
            allowed: 0.0,
            alpha: 0.01,
            look: 1,
            window: "stage".into(),
            stage_counts: None,
            srm: None,
        };
        assert_eq!(
            format!("{} ({})", record.describe().unwrap(), record.sizes()),
            "canary 1.9% vs control 1.0%: +0.9 pt, at least +0.4 pt at 99% (12,400 / 110,000 requests)"
        );
        let srm = SrmRecord {
            counted: "users".into(),
            exposed: 1_100.0,
            total: 10_000.0,
            expected_share: 0.1,
            observed_share: 0.11,
            p_value: 0.0009,
            mismatch: true,
        };
        assert!(srm
            .describe()
            .starts_with("sample ratio mismatch: 1,100 of 10,000 users exposed where 10% expects 1,000"));
    }
}
