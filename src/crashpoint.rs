//! Named points in a transition where the crash-consistency suite stops the process to kill it.
//!
//! Only debug builds read `FLAGRAMP_TEST_PAUSE_AT` (`<point>`, or `<point>:<n>` for the point's
//! n-th visit); a release binary never pauses.

/// Stops the process for good, after saying so on stderr, when `FLAGRAMP_TEST_PAUSE_AT` names
/// this visit of `point` (debug builds only).
pub fn pause_at(point: &str) {
    #[cfg(debug_assertions)]
    {
        use std::io::Write;
        use std::sync::atomic::{AtomicU32, Ordering};
        // Only the named point is counted, so one counter serves.
        static VISITS: AtomicU32 = AtomicU32::new(0);

        let Ok(wanted) = std::env::var("FLAGRAMP_TEST_PAUSE_AT") else {
            return;
        };
        let (name, nth) = match wanted.split_once(':') {
            Some((name, n)) => (name, n.parse().unwrap_or(1)),
            None => (wanted.as_str(), 1),
        };
        if name != point || VISITS.fetch_add(1, Ordering::SeqCst) + 1 != nth {
            return;
        }
        let mut stderr = std::io::stderr();
        let _ = writeln!(stderr, "flagramp: paused at {wanted}");
        let _ = stderr.flush();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
