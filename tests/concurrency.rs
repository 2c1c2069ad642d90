//! Rollouts decided side by side (docs/rules.md §2, "Sources"): the records come back in spec
//! order whatever order the work finishes in, no source ever has more than its
//! `max_concurrency` requests in flight, `--concurrency` bounds the rollouts at work, and a query
//! asked by several rollouts for the same time is sent once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::repo::{json_of, TempRepo};

const START: &str = "2026-11-24T09:00:00Z";
const LATER: &str = "2026-11-24T10:00:00Z";

/// A Prometheus stand-in that answers every query with 1 after `delay`, and counts how many
/// requests it held at once, at most.
struct CountingServer {
    url: String,
    most: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

impl CountingServer {
    async fn start(delay: Duration) -> CountingServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (now, most, total) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (most_c, total_c) = (most.clone(), total.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (now, most, total) = (now.clone(), most_c.clone(), total_c.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // Every request here is a GET: it ends with its blank line.
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let held = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(held, Ordering::SeqCst);
                    total.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1795510800,"1"]}]}}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        CountingServer { url, most, total }
    }
}

/// A repository with `n` rollouts `r0`…, each with its own flag in one flagd file and one check
/// on `url`; `query(i)` is rollout i's query.
fn repo(n: usize, url: &str, max_concurrency: u32, query: impl Fn(usize) -> String) -> TempRepo {
    let repo = TempRepo::new();
    let flags: Vec<String> = (0..n)
        .map(|i| format!("\"r{i}\": {{ \"state\": \"DISABLED\", \"variants\": {{ \"on\": true, \"off\": false }}, \"defaultVariant\": \"off\" }}"))
        .collect();
    repo.write(
        "flags.flagd.json",
        &format!("{{ \"flags\": {{ {} }} }}\n", flags.join(", ")),
    );
    for i in 0..n {
        repo.write(
            &format!(".github/rollouts/r{i}.yml"),
            &format!(
                "version: 1\nname: r{i}\nflag: {{ provider: flagd, key: r{i}, flagd: {{ path: flags.flagd.json }} }}\nstages: [{{ percent: 10, bake: 0s }}, 100]\nsources:\n  prom: {{ provider: prometheus, url: '{url}', max_concurrency: {max_concurrency}, lag: 0s }}\nchecks:\n  - {{ name: up, source: prom, query: '{}', pass: '>= 1' }}\n",
                query(i)
            ),
        );
    }
    repo
}

/// Starts every rollout (no query), then runs once more with `extra` arguments: every rollout
/// queries its check and advances. Returns the second run's records.
async fn start_then_run(repo: &TempRepo, extra: &[&str]) -> Vec<Value> {
    let root = repo.root().to_path_buf();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let run = |now: &str, extra: &[String]| {
            let mut cmd = crate::support::repo::flagramp_in(&root);
            cmd.args(["run", "--now", now, "--output", "json"]).args(extra);
            let out = cmd.output().unwrap();
            json_of::<Vec<Value>>(&out, &["run"], 0)
        };
        let started = run(START, &[]);
        assert!(started.iter().all(|r| r["decision"] == "start"), "{started:#?}");
        run(LATER, &extra)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_never_has_more_than_its_max_concurrency_in_flight_and_records_keep_spec_order() {
    let server = CountingServer::start(Duration::from_millis(300)).await;
    // Queries that differ, so none is shared: eight requests for a source that takes two.
    let repo = repo(8, &server.url, 2, |i| format!("vector({i}) * 0 + 1"));
    let records = start_then_run(&repo, &[]).await;
    let names: Vec<&str> = records.iter().map(|r| r["rollout"].as_str().unwrap()).collect();
    assert_eq!(names, ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"], "spec order");
    assert!(records.iter().all(|r| r["decision"] == "advance"), "{records:#?}");
    assert_eq!(server.total.load(Ordering::SeqCst), 8);
    assert_eq!(
        server.most.load(Ordering::SeqCst),
        2,
        "at most max_concurrency, and that many at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_bounds_the_rollouts_at_work() {
    let server = CountingServer::start(Duration::from_millis(200)).await;
    let repo = repo(4, &server.url, 16, |i| format!("vector({i}) * 0 + 1"));
    let records = start_then_run(&repo, &["--concurrency", "1"]).await;
    assert!(records.iter().all(|r| r["decision"] == "advance"), "{records:#?}");
    assert_eq!(server.most.load(Ordering::SeqCst), 1, "one rollout at a time");
    let server = CountingServer::start(Duration::from_millis(200)).await;
    let repo = self::repo(4, &server.url, 16, |i| format!("vector({i}) * 0 + 1"));
    start_then_run(&repo, &[]).await;
    assert_eq!(server.most.load(Ordering::SeqCst), 4, "all four at once by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_asked_by_several_rollouts_for_the_same_time_is_sent_once() {
    let server = CountingServer::start(Duration::from_millis(50)).await;
    // Five rollouts with the same query on the same server: one request.
    let repo = repo(5, &server.url, 16, |_| "sum(up)".to_string());
    let records = start_then_run(&repo, &[]).await;
    assert!(records.iter().all(|r| r["decision"] == "advance"), "{records:#?}");
    assert!(records.iter().all(|r| r["checks"][0]["value"] == 1.0));
    assert_eq!(server.total.load(Ordering::SeqCst), 1, "sent once, shared by five");
}
