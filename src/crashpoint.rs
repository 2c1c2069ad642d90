//! Test hooks of debug builds: named points in a transition where the crash-consistency suite
//! stops the process to kill it, and a rollout whose evaluation panics (to prove the panic
//! guard). The front end reads their variables (`FLAGRAMP_TEST_PAUSE_AT`,
//! `FLAGRAMP_TEST_PANIC_IN_ROLLOUT`) and arms them here; a release binary never arms them.

use std::sync::OnceLock;

/// What the front end armed.
#[derive(Debug, Default)]
pub struct Hooks {
    /// `<point>`, or `<point>:<n>` for the point's n-th visit: stop there for good.
    pub pause_at: Option<String>,
    /// Says where the process stopped, before it stops (the front end writes it to stderr).
    pub announce: Option<fn(&str)>,
    /// Deciding the rollout of this name panics.
    pub panic_in_rollout: Option<String>,
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();

/// Arms the hooks for this process (debug builds only; the first call wins).
pub fn arm(hooks: Hooks) {
    if cfg!(debug_assertions) {
        let _ = HOOKS.set(hooks);
    }
}

/// Stops the process for good, after announcing it, when the armed `pause_at` names this visit
/// of `point`.
pub fn pause_at(point: &str) {
    use std::sync::atomic::{AtomicU32, Ordering};
    // Only the named point is counted, so one counter serves.
    static VISITS: AtomicU32 = AtomicU32::new(0);

    let Some(hooks) = HOOKS.get() else { return };
    let Some(wanted) = hooks.pause_at.as_deref() else {
        return;
    };
    let (name, nth) = match wanted.split_once(':') {
        Some((name, n)) => (name, n.parse().unwrap_or(1)),
        None => (wanted, 1),
    };
    if name != point || VISITS.fetch_add(1, Ordering::SeqCst) + 1 != nth {
        return;
    }
    if let Some(announce) = hooks.announce {
        announce(&format!("flagramp: paused at {wanted}"));
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Whether deciding `rollout` must panic.
pub fn panics_in(rollout: &str) -> bool {
    HOOKS
        .get()
        .and_then(|h| h.panic_in_rollout.as_deref())
        .is_some_and(|r| r == rollout)
}
