//! Named points in a transition where the crash-consistency suite stops the process to kill it.
//!
//! Only debug builds read `FLAGRAMP_TEST_PAUSE_AT`; a release binary never pauses.

/// Stops the process for good, after saying so on stderr, when `FLAGRAMP_TEST_PAUSE_AT` names
/// `point` (debug builds only).
pub fn pause_at(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("FLAGRAMP_TEST_PAUSE_AT").is_ok_and(|p| p == point) {
        use std::io::Write;
        let mut stderr = std::io::stderr();
        let _ = writeln!(stderr, "flagramp: paused at {point}");
        let _ = stderr.flush();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}
