//! A Prometheus of a test's own, holding a metric history written as OpenMetrics text.
//!
//! Pushgateway can only add samples at the time of a scrape, so a history with a regression at
//! a known time in the past is backfilled instead: `promtool tsdb create-blocks-from openmetrics`
//! writes blocks, which are copied into the data directory before Prometheus starts (blocks
//! copied into a running server only appear after its next reload). The server listens on a
//! free port on 127.0.0.1 and is stopped when the value is dropped.
//!
//! Needs `prometheus` and `promtool` on PATH: `scripts/services install` puts them there.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// How long Prometheus may take to be ready over its backfilled blocks.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running Prometheus over a backfilled history.
pub struct BackfilledPrometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

/// One counter's samples, in time order.
pub struct Series {
    /// The metric name, ending in `_total`.
    pub name: String,
    /// `key="value"` pairs, already quoted, joined by commas.
    pub labels: String,
    /// (time, cumulative value).
    pub samples: Vec<(DateTime<Utc>, f64)>,
}

/// The OpenMetrics text of counters: one `# TYPE` per metric, each series' samples together and
/// in time order, timestamps in seconds, ending in `# EOF` (what promtool reads).
pub fn openmetrics(series: &[Series]) -> String {
    let mut out = String::new();
    let mut names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    names.dedup();
    for name in names {
        let family = name.strip_suffix("_total").unwrap_or(name);
        out.push_str(&format!("# TYPE {family} counter\n"));
        for s in series.iter().filter(|s| s.name == name) {
            for (at, value) in &s.samples {
                out.push_str(&format!("{name}{{{}}} {value} {}\n", s.labels, at.timestamp()));
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| {
        panic!("{what}: {e}; install Prometheus with scripts/services install (or run scripts/test)")
    });
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl BackfilledPrometheus {
    /// Backfills `history` (OpenMetrics text) and starts Prometheus over it.
    pub fn start(history: &str) -> BackfilledPrometheus {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().to_path_buf();
        let root = root.as_path();
        let file = root.join("history.om");
        std::fs::write(&file, history).unwrap();
        let blocks = root.join("blocks");
        run(
            Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&file)
                .arg(&blocks),
            "promtool tsdb create-blocks-from openmetrics",
        );
        let data = root.join("data");
        copy_dir(&blocks, &data);
        let config = root.join("prometheus.yml");
        std::fs::write(&config, "global: { scrape_interval: 1m }\nscrape_configs: []\n").unwrap();
        let port = free_port();
        let log = std::fs::File::create(root.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            // Far longer than the history's age, or the blocks would be deleted at start.
            .arg("--storage.tsdb.retention.time=3650d")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("prometheus: {e}; install it with scripts/services install"));
        let server = BackfilledPrometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        server.wait_ready(root);
        server
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn wait_ready(&self, root: &Path) {
        let started = Instant::now();
        loop {
            if self.ready() {
                return;
            }
            assert!(
                started.elapsed() < READY_WITHIN,
                "Prometheus over the backfilled blocks was not ready within {READY_WITHIN:?}: {}",
                std::fs::read_to_string(root.join("prometheus.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl BackfilledPrometheus {
    /// Whether `/-/ready` answers 200 (a bare HTTP/1.0 request: nothing else is needed here).
    fn ready(&self) -> bool {
        use std::io::{Read, Write};
        let address = self.url.trim_start_matches("http://");
        let Ok(mut stream) = std::net::TcpStream::connect(address) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream
            .write_all(b"GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
    }
}

impl Drop for BackfilledPrometheus {
    fn drop(&mut self) {
        // The child's own PID: nothing is stopped by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &PathBuf) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
