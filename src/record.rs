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
    /// Rule 5: a check errored or had no data.
    Checks,
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
