//! Faults between flagramp and the real Prometheus and Unleash, injected by a TCP proxy of the
//! test's own ([`super::server::FaultProxy`]): the servers stay healthy for every other test.

use std::time::Instant;

use flagramp::record::DecisionKind;
use flagramp::runner::Mode;

use super::server::{Fault, FaultProxy, FaultServer, ProxyMode};
use super::{
    judge, parse, passing_check, prometheus_spec, spec_text, started_then_decided_at, unleash_block, Bench, Case,
    Outcome, CHECK_TIMEOUT, PROVIDER_TIMEOUT, SLACK, UNLEASH_TOKEN_ENV,
};

/// Prometheus has samples only near the real clock: the rollout starts two hours before now.
fn two_hours_ago() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::hours(2)
}

fn env_addr(var: &str) -> String {
    let url = std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: these tests need the services; run them with scripts/test"));
    let url = reqwest::Url::parse(url.trim()).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port_or_known_default().unwrap())
}

/// `Pass`, then each fault; `None` is a refused connection (no proxy at all).
fn modes() -> Vec<(Option<ProxyMode>, &'static str, &'static [&'static str])> {
    vec![
        (None, "refused", &["cannot connect to 127.0.0.1"]),
        (Some(ProxyMode::Stall), "stall", &["no answer from 127.0.0.1"]),
        (Some(ProxyMode::CutHead(40)), "cut inside the head", &["127.0.0.1"]),
        (Some(ProxyMode::CutBody(20)), "cut inside the body", &["broke off"]),
    ]
}

async fn through(upstream: &str, mode: Option<ProxyMode>) -> (String, Option<FaultProxy>, Option<FaultServer>) {
    match mode {
        Some(mode) => {
            let proxy = FaultProxy::start(upstream, mode).await;
            (proxy.url(), Some(proxy), None)
        }
        None => {
            let refused = FaultServer::start(Fault::Refused).await;
            (refused.url(), None, Some(refused))
        }
    }
}

#[tokio::test]
#[ignore = "needs services: run scripts/test"]
async fn real_prometheus_behind_a_faulty_proxy_holds() {
    let upstream = env_addr("FLAGRAMP_TEST_PROMETHEUS_URL");
    // Control: through a proxy that passes everything, the same setup advances (`up` is 1).
    let (url, _proxy, _) = through(&upstream, Some(ProxyMode::Pass)).await;
    let bench = Bench::new(None);
    let control = started_then_decided_at(&bench, &prometheus_spec(&url), two_hours_ago(), chrono::Utc::now()).await;
    assert_eq!(
        control.decided.record.decision,
        DecisionKind::Advance,
        "{:?}",
        control.decided.record
    );

    let mut failures = Vec::new();
    for (mode, fault, expect) in modes() {
        let (url, _proxy, _refused) = through(&upstream, mode).await;
        let bench = Bench::new(None);
        let outcome =
            started_then_decided_at(&bench, &prometheus_spec(&url), two_hours_ago(), chrono::Utc::now()).await;
        let case = Case {
            fault: fault.into(),
            expect: expect.iter().map(|s| s.to_string()).collect(),
            limit: CHECK_TIMEOUT + SLACK,
        };
        if let Err(e) = judge("real prometheus", &case, &outcome) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
#[ignore = "needs services: run scripts/test"]
async fn real_unleash_behind_a_faulty_proxy_is_an_error() {
    std::env::set_var(
        UNLEASH_TOKEN_ENV,
        std::env::var("FLAGRAMP_TEST_UNLEASH_ADMIN_TOKEN").expect("FLAGRAMP_TEST_UNLEASH_ADMIN_TOKEN"),
    );
    let upstream = env_addr("FLAGRAMP_TEST_UNLEASH_URL");
    let mut failures = Vec::new();
    // Control: through a passing proxy the real server answers (a flag no test creates is 404).
    let mut cases = vec![(Some(ProxyMode::Pass), "control (pass)", &["was not found"][..])];
    cases.extend(modes());
    for (mode, fault, expect) in cases {
        let (url, _proxy, _refused) = through(&upstream, mode).await;
        let bench = Bench::new(None);
        let block = unleash_block(&url).replace("key: demo", "key: flagramp-faults-never-created");
        let spec = parse(&spec_text(&block, passing_check()));
        let before = super::snapshot(&bench);
        let clock = Instant::now();
        let decided = bench.runner(super::t0()).decide(&spec, &Mode::Run).await;
        let outcome = Outcome {
            decided,
            elapsed: clock.elapsed(),
            before,
            after: super::snapshot(&bench),
        };
        let case = Case {
            fault: fault.into(),
            expect: expect.iter().map(|s| s.to_string()).collect(),
            limit: PROVIDER_TIMEOUT + SLACK,
        };
        if outcome.decided.record.decision != DecisionKind::Error {
            failures.push(format!("unleash × {fault}: not an error: {:?}", outcome.decided.record));
        }
        if let Err(e) = judge("real unleash", &case, &outcome) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
