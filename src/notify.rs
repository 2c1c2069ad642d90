//! Notifications (docs/rules.md §5): after a run's decisions are recorded, the people a spec's
//! `notify:` names are told about those that changed a rollout, and about drift and errors when
//! they first appear. Each place a notification goes is a [`Sink`] (`slack`, `webhook`).
//!
//! A notification is about a decision already stored, so it is sent after the run's last state
//! batch, and never changes the decision: a failure becomes a warning on the rollout's
//! [`Decided`]. `last_notified` is written in one more state batch, only for the rollouts a
//! notification went out for; a change it does not cover is still owed ([`owed`]) and a later
//! run sends it, so a change is notified at least once (twice after a crash between sending and
//! that write).

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::http::{self, Deadline, HttpError};
use crate::record::{DecisionKind, DecisionRecord};
use crate::runner::{Decided, Runner};
use crate::secrets::{SecretError, Secrets};
use crate::spec::{NotifySpec, NotifyTarget, RolloutSpec};
use crate::state::{LastNotified, RolloutState, StateVersion, StateWrite};

/// How long one notification may take, retries included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a run's notifications may take together: a run that notifies many rollouts at once
/// (a flag system down for all of them) must not go on for long after its decisions are made.
pub const PHASE_TIMEOUT: Duration = Duration::from_secs(60);

/// How much of a refusing hook's answer a warning quotes (after redaction).
const STATUS_EXCERPT: usize = 200;

/// How many notifications are sent at once.
pub const SEND_CONCURRENCY: usize = 8;

/// An unchanged error is sent again once this much time has passed since it was last sent.
pub const RESEND_UNCHANGED_ERROR_AFTER: chrono::Duration = chrono::Duration::hours(24);

/// The header with the body's signature: `sha256=<hex HMAC-SHA256 of the body>`, the scheme of
/// GitHub's `X-Hub-Signature-256`.
pub const SIGNATURE_HEADER: &str = "X-Flagramp-Signature-256";

/// The header naming the decision.
pub const EVENT_HEADER: &str = "X-Flagramp-Event";

/// Whether `record` is due a notification under `events`, given what was last notified
/// (docs/rules.md §5). Pure: the runner passes the time.
///
/// - A change (start, advance, rollback, disable, complete) notifies when it was carried out
///   (`changed_state`): a rollout reported complete again, a plan or a refused command do not.
/// - Drift notifies when it is first seen: that is the run that records it.
/// - An error notifies when it differs from the last notification, or that was sent at least
///   [`RESEND_UNCHANGED_ERROR_AFTER`] ago.
/// - A hold or a pause never notifies.
pub fn is_due(
    record: &DecisionRecord,
    changed_state: bool,
    events: &BTreeSet<DecisionKind>,
    last: Option<&LastNotified>,
    now: DateTime<Utc>,
) -> bool {
    if record.planned || record.refused || !events.contains(&record.decision) {
        return false;
    }
    match record.decision {
        DecisionKind::Start
        | DecisionKind::Advance
        | DecisionKind::Rollback
        | DecisionKind::Disable
        | DecisionKind::Complete
        | DecisionKind::Drift => changed_state,
        DecisionKind::Error => match last {
            Some(last) if last.decision == DecisionKind::Error && last.reason == record.reason => {
                now - last.at >= RESEND_UNCHANGED_ERROR_AFTER
            }
            _ => true,
        },
        DecisionKind::Hold | DecisionKind::Paused => false,
    }
}

/// How far back a rollout that has never been notified looks for a change it is owed:
/// turning notifications on must not replay a rollout's past.
pub const OWED_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// The change a rollout is still owed a notification for: the newest change or drift in its
/// `history` that `events` names and that is newer than what was last notified (without any,
/// no older than [`OWED_WINDOW`]). A send that failed, or a run stopped between recording a
/// decision and sending it, leaves one; the next run sends it (docs/rules.md §5). Pure.
pub fn owed<'h>(
    history: &'h [DecisionRecord],
    events: &BTreeSet<DecisionKind>,
    last: Option<&LastNotified>,
    now: DateTime<Utc>,
) -> Option<&'h DecisionRecord> {
    let newest = history.iter().rev().find(|r| {
        !r.planned
            && !r.refused
            && events.contains(&r.decision)
            && (r.decision.changes_flag() || matches!(r.decision, DecisionKind::Complete | DecisionKind::Drift))
    })?;
    let unsent = match last {
        Some(last) => newest.at > last.at,
        None => now - newest.at <= OWED_WINDOW,
    };
    unsent.then_some(newest)
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` keyed with `secret`, as [`SIGNATURE_HEADER`] carries
/// it. A receiver computes the same over the raw body and compares in constant time.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a notification did not go out. Messages name the sink and the variable, never a URL
/// of Slack's or a secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A secret the sink needs is not there.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// No answer.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The run's notifications ran out of time before this one was sent.
    #[error("the run's {}s for notifications ran out first", PHASE_TIMEOUT.as_secs())]
    OutOfTime,
    /// An answer that is not 2xx.
    #[error("answered HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The answer's text, capped.
        body: String,
    },
}

/// What a notification is about.
#[derive(Debug, Clone, Copy)]
pub struct Notification<'a> {
    /// The decision, as recorded (scrubbed).
    pub record: &'a DecisionRecord,
    /// The workflow run that decided, when in GitHub Actions.
    pub run_url: Option<&'a str>,
}

/// One place notifications go.
#[async_trait]
pub trait Sink: std::fmt::Debug + Send + Sync {
    /// What warnings call it: `slack (SLACK_ROLLOUTS_WEBHOOK)`, `webhook hooks.example.com`.
    fn name(&self) -> String;
    /// Sends one notification, within `deadline`.
    async fn send(&self, notification: Notification<'_>, deadline: Deadline) -> Result<(), NotifyError>;
}

/// A webhook: the decision record as JSON, signed with [`SIGNATURE_HEADER`].
pub struct Webhook {
    url: String,
    secret: String,
}

// By hand: the key must not show in any `{:?}`.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A webhook to `url`, signed with `secret`.
    pub fn new(url: &str, secret: &str) -> Webhook {
        Webhook {
            url: url.to_string(),
            secret: secret.to_string(),
        }
    }
}

#[async_trait]
impl Sink for Webhook {
    fn name(&self) -> String {
        let host = url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        format!("webhook {host}")
    }

    async fn send(&self, notification: Notification<'_>, deadline: Deadline) -> Result<(), NotifyError> {
        // The same JSON every output has for a record (docs/rules.md §4); signed as sent:
        // `http::send` serializes the value with the same serializer, to the same bytes.
        let value = serde_json::to_value(notification.record).map_err(HttpError::Body)?;
        let body = serde_json::to_vec(&value).map_err(HttpError::Body)?;
        let headers = [
            ("content-type", "application/json".to_string()),
            (SIGNATURE_HEADER, signature(self.secret.as_bytes(), &body)),
            (EVENT_HEADER, notification.record.decision.as_str().to_string()),
        ];
        let answer = http::send(
            reqwest::Method::POST,
            &self.url,
            &headers,
            Some(&value),
            deadline,
            false,
        )
        .await?;
        answered(answer)
    }
}

/// A Slack incoming webhook: a short message with the evidence and a link to the run.
pub struct Slack {
    variable: String,
    url: String,
}

// By hand: Slack's URL is the credential, so only the variable it came from shows.
impl std::fmt::Debug for Slack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slack")
            .field("variable", &self.variable)
            .finish_non_exhaustive()
    }
}

impl Slack {
    /// A Slack webhook at `url`, read from `variable`.
    pub fn new(variable: &str, url: &str) -> Slack {
        Slack {
            variable: variable.to_string(),
            url: url.to_string(),
        }
    }
}

#[async_trait]
impl Sink for Slack {
    fn name(&self) -> String {
        format!("slack ({})", self.variable)
    }

    async fn send(&self, notification: Notification<'_>, deadline: Deadline) -> Result<(), NotifyError> {
        let body = serde_json::json!({ "text": slack_text(notification) });
        let headers = [("content-type", "application/json".to_string())];
        let answer = http::send(reqwest::Method::POST, &self.url, &headers, Some(&body), deadline, false).await?;
        answered(answer)
    }
}

fn answered(answer: http::Answer) -> Result<(), NotifyError> {
    if answer.is_success() {
        Ok(())
    } else {
        // Whole (the HTTP layer caps what it reads): it is redacted before it is cut short
        // (`notify_all`), so that no cut leaves the start of a secret in a warning.
        Err(NotifyError::Status {
            status: answer.status,
            body: answer.text(),
        })
    }
}

/// The Slack message: rollout, decision, from → to, each check's verdict and value, the reason
/// and the run. Every text from a record is escaped for Slack (`escape::slack`).
pub fn slack_text(notification: Notification<'_>) -> String {
    use crate::escape::slack;
    let record = notification.record;
    let mut text = format!(
        "*flagramp* · *{}* ({}): {}, {}\n{}",
        slack(&record.rollout),
        slack(&record.flag),
        slack(&crate::report::verb(record)),
        slack(&crate::report::transition(record)),
        slack(&record.reason),
    );
    for check in &record.checks {
        text.push_str(&format!(
            "\n• {}: {} ({}, pass {})",
            slack(&crate::report::check_label(check)),
            check.verdict.as_str(),
            slack(&crate::report::value_text(check, "no value")),
            slack(&check.condition),
        ));
    }
    if let Some(url) = notification.run_url {
        text.push_str(&format!("\n<{}|the run>", slack(url)));
    }
    text
}

/// The sinks of `spec`, their secrets read (and so registered for redaction); a sink whose
/// secret is missing is a warning instead.
fn sinks(spec: &NotifySpec, secrets: &Secrets) -> (Vec<Box<dyn Sink>>, Vec<String>) {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let mut warnings = Vec::new();
    for target in &spec.to {
        match target {
            NotifyTarget::Slack { webhook_env } => match secrets.read(webhook_env) {
                Ok(url) if is_safe_url(&url) => sinks.push(Box::new(Slack::new(webhook_env, &url))),
                // Not echoed: the value is the credential.
                Ok(_) => warnings.push(format!(
                    "notification to slack ({webhook_env}) not sent: {webhook_env} does not hold an https URL (Slack's incoming webhook URL, https://hooks.slack.com/services/…)"
                )),
                Err(e) => warnings.push(format!("notification to slack ({webhook_env}) not sent: {e}")),
            },
            NotifyTarget::Webhook { url, secret_env } => match secrets.read(secret_env) {
                Ok(secret) => sinks.push(Box::new(Webhook::new(url, &secret))),
                Err(e) => warnings.push(format!(
                    "notification to {} not sent: {e}",
                    Webhook::new(url, "").name()
                )),
            },
        }
    }
    (sinks, warnings)
}

/// Whether a URL read from the environment may be posted to: https, or http to loopback (as
/// the spec's URLs, docs/rules.md §5).
fn is_safe_url(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text.trim()) else {
        return false;
    };
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return false,
    };
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

/// One rollout due a notification.
struct Due {
    index: usize,
    state: Option<(RolloutState, StateVersion)>,
    /// What to send: this run's decision, or an earlier change it is still owed ([`owed`]).
    record: DecisionRecord,
}

/// Sends the notifications `decided` are due (in spec order with `specs`), at most
/// [`SEND_CONCURRENCY`] at once and each within [`SEND_TIMEOUT`]; records `last_notified` for
/// the rollouts one went out for, in one state batch. Every failure is a warning on its
/// rollout's [`Decided`]; no decision changes.
pub async fn notify_all(runner: &Runner, specs: &[RolloutSpec], decided: &mut [Decided], run_url: Option<&str>) {
    // Every rollout that notifies reads its state: what was last notified decides whether an
    // error is due, and whether an earlier change is still owed a notification.
    let candidates: Vec<usize> = (0..specs.len().min(decided.len()))
        .filter(|&i| specs[i].notify.is_some() && !decided[i].record.planned)
        .collect();
    // A state that cannot be read notifies this run's decision if it is due (and says so once
    // it cannot be written either).
    let loaded: Vec<Option<(RolloutState, StateVersion)>> = futures::stream::iter(candidates.iter().copied())
        .map(|i| async move {
            match runner.store.load(&specs[i].name).await {
                Ok(stored) => stored.map(|s| (s.state, s.version)),
                Err(_) => None,
            }
        })
        .buffered(SEND_CONCURRENCY)
        .collect()
        .await;
    let mut due = Vec::new();
    for (index, state) in candidates.into_iter().zip(loaded) {
        let (d, Some(notify)) = (&decided[index], specs[index].notify.as_ref()) else {
            continue;
        };
        let last = state.as_ref().and_then(|(s, _)| s.last_notified.as_ref());
        let record = if is_due(&d.record, d.changed_state, &notify.events, last, runner.now) {
            Some(d.record.clone())
        } else {
            state
                .as_ref()
                .and_then(|(s, _)| owed(&s.history, &notify.events, last, runner.now))
                .cloned()
        };
        if let Some(record) = record {
            due.push(Due { index, state, record });
        }
    }
    if due.is_empty() {
        return;
    }

    let mut jobs = Vec::new();
    for d in &due {
        let spec = &specs[d.index];
        let Some(notify) = &spec.notify else { continue };
        let (built, warnings) = sinks(notify, &runner.secrets);
        decided[d.index].warnings.extend(warnings);
        // Scrubbed again with the secrets just read: the record may carry one of them.
        let mut record = d.record.clone();
        record.scrub(&runner.secrets);
        for sink in built {
            jobs.push((d.index, record.clone(), sink));
        }
    }
    let phase = Deadline::after(PHASE_TIMEOUT);
    let results: Vec<(usize, String, Result<(), NotifyError>)> = futures::stream::iter(jobs)
        .map(|(index, record, sink)| async move {
            let notification = Notification {
                record: &record,
                run_url,
            };
            let result = if phase.passed() {
                Err(NotifyError::OutOfTime)
            } else {
                let deadline = Deadline::after(SEND_TIMEOUT.min(phase.remaining()));
                sink.send(notification, deadline).await
            };
            (index, sink.name(), result)
        })
        .buffer_unordered(SEND_CONCURRENCY)
        .collect()
        .await;
    // A rollout counts as notified only when every one of its sinks took it: one that failed
    // must get it again from a later run, not wait out a day behind `last_notified`.
    let mut sent = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for (index, name, result) in results {
        match result {
            Ok(()) => {
                sent.insert(index);
            }
            Err(e) => {
                failed.insert(index);
                let e = match e {
                    NotifyError::Status { status, body } => NotifyError::Status {
                        status,
                        body: crate::secrets::cap(&runner.secrets.redact(&body), STATUS_EXCERPT),
                    },
                    e => e,
                };
                decided[index].warnings.push(
                    runner
                        .secrets
                        .admit(&format!("notification to {name} not sent: {e}; the decision stands")),
                );
            }
        }
    }
    let sent: BTreeSet<usize> = sent.difference(&failed).copied().collect();

    let mut writes = Vec::new();
    let mut written = Vec::new();
    for d in due.into_iter().filter(|d| sent.contains(&d.index)) {
        let spec = &specs[d.index];
        let (mut state, expected) = match d.state {
            // Another run's claim: writing now would change the version its record is about
            // to be written against and make its write fail. What was notified goes unrecorded
            // (the next run may notify again) rather than break a change in flight.
            Some((state, _)) if state.pending.is_some() => {
                decided[d.index].warnings.push(runner.secrets.admit(&format!(
                    "notified, but another run is changing {} right now, so the notification is not recorded; the next run may notify again",
                    spec.name
                )));
                continue;
            }
            Some((state, version)) => (state, Some(version)),
            None => (
                RolloutState::new(&spec.name, &spec.flag.key, spec.stage_percents()),
                None,
            ),
        };
        let record = &d.record;
        state.last_notified = Some(LastNotified {
            decision: record.decision,
            at: record.at,
            reason: record.reason.clone(),
        });
        state.scrub(&runner.secrets);
        writes.push(StateWrite { state, expected });
        written.push(d.index);
    }
    if writes.is_empty() {
        return;
    }
    for (index, result) in written.into_iter().zip(runner.store.save_batch(&writes).await) {
        if let Err(e) = result {
            decided[index].warnings.push(runner.secrets.admit(&format!(
                "notified, but recording it failed: {e}; the next run may notify again"
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(decision: DecisionKind, reason: &str) -> DecisionRecord {
        DecisionRecord::bare(
            "r",
            "f",
            decision,
            "2026-11-24T09:00:00Z".parse().unwrap(),
            "flagramp",
            reason.into(),
        )
    }

    fn all() -> BTreeSet<DecisionKind> {
        crate::spec::NOTIFY_EVENTS.iter().copied().collect()
    }

    #[test]
    fn holds_pauses_plans_and_refusals_never_notify() {
        let now = "2026-11-24T09:00:00Z".parse().unwrap();
        for kind in [DecisionKind::Hold, DecisionKind::Paused] {
            assert!(!is_due(&record(kind, "x"), true, &all(), None, now));
        }
        let mut planned = record(DecisionKind::Rollback, "x");
        planned.planned = true;
        assert!(!is_due(&planned, true, &all(), None, now));
        let mut refused = record(DecisionKind::Rollback, "x");
        refused.refused = true;
        assert!(!is_due(&refused, true, &all(), None, now));
        // A change that was not carried out (a complete rollout reported again) does not either.
        assert!(!is_due(&record(DecisionKind::Complete, "x"), false, &all(), None, now));
        assert!(is_due(&record(DecisionKind::Complete, "x"), true, &all(), None, now));
    }

    #[test]
    fn the_newest_change_newer_than_the_last_notification_is_owed_and_no_older_past() {
        let at: DateTime<Utc> = "2026-11-24T09:00:00Z".parse().unwrap();
        let rollback = record(DecisionKind::Rollback, "errors");
        let mut hold = record(DecisionKind::Hold, "locked");
        hold.at = at + chrono::Duration::minutes(30);
        let history = vec![record(DecisionKind::Start, "go"), rollback.clone(), hold];
        let hours = |h| at + chrono::Duration::hours(h);
        // Never notified: owed within a day of the change, not after.
        assert_eq!(owed(&history, &all(), None, hours(1)), Some(&rollback));
        assert_eq!(owed(&history, &all(), None, hours(25)), None);
        // Notified at the rollback's time: paid; notified before it: still owed.
        let notified = |at| LastNotified {
            decision: DecisionKind::Start,
            at,
            reason: String::new(),
        };
        assert_eq!(owed(&history, &all(), Some(&notified(at)), hours(1)), None);
        let earlier = notified(at - chrono::Duration::minutes(5));
        assert_eq!(owed(&history, &all(), Some(&earlier), hours(1)), Some(&rollback));
        // Events it does not name, and errors, are never owed.
        let only_start: BTreeSet<_> = [DecisionKind::Start].into();
        assert_eq!(
            owed(&history, &only_start, Some(&earlier), hours(1)).map(|r| r.decision),
            Some(DecisionKind::Start)
        );
        let errors = vec![record(DecisionKind::Error, "down")];
        assert_eq!(owed(&errors, &all(), None, hours(1)), None);
    }

    #[test]
    fn an_error_is_sent_when_it_differs_or_a_day_has_passed() {
        let at: DateTime<Utc> = "2026-11-24T09:00:00Z".parse().unwrap();
        let last = LastNotified {
            decision: DecisionKind::Error,
            at,
            reason: "flag provider: down".into(),
        };
        let same = record(DecisionKind::Error, "flag provider: down");
        let other = record(DecisionKind::Error, "state: unreadable");
        let hours = |h| at + chrono::Duration::hours(h);
        assert!(!is_due(&same, false, &all(), Some(&last), hours(23)));
        assert!(is_due(&same, false, &all(), Some(&last), hours(24)));
        assert!(is_due(&other, false, &all(), Some(&last), hours(1)));
        let only_changes: BTreeSet<_> = [DecisionKind::Rollback].into();
        assert!(!is_due(&other, false, &only_changes, Some(&last), hours(1)));
    }

    #[test]
    fn urls_from_the_environment_are_https_or_loopback() {
        assert!(is_safe_url("https://hooks.slack.com/services/T/B/x"));
        assert!(is_safe_url("http://127.0.0.1:8080/x"));
        assert!(!is_safe_url("http://hooks.slack.com/services/T/B/x"));
        assert!(!is_safe_url("hooks.slack.com/services"));
        assert!(!is_safe_url("file:///etc/passwd"));
    }
}
