//! The metric sources of one run, shared by all its rollouts (docs/rules.md §2, "Sources").
//!
//! Rollouts are decided concurrently, so a run of a thousand rollouts could send thousands of
//! queries at once. The pool keeps at most a source's `max_concurrency` requests in flight
//! (one limit per metrics server and credentials, however many specs declare it), and sends a
//! query asked for again at the same evaluation time only once, sharing its answer.
//! Commands are never shared: each gets its rollout's environment.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::Semaphore;

use super::{MeasureRequest, MetricSource};
use crate::check::Measurement;
use crate::http::Credentials;
use crate::percent::Percent;
use crate::spec::Probe;

/// One source as the pool knows it: the client, who it is and how many requests it may take.
#[derive(Debug, Clone)]
pub struct PooledSource {
    /// The client.
    pub source: Arc<dyn MetricSource>,
    /// Which server, with which credentials: sources with the same identity share their limit
    /// and their answers.
    pub identity: SourceIdentity,
    /// At most this many requests in flight.
    pub max_concurrency: u32,
}

/// What makes two declared sources the same: provider, URL and credentials (two tenants of one
/// server, told apart by a header, are two sources). Credentials are kept as a hash only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceIdentity(String);

impl SourceIdentity {
    /// The identity of a `provider` source at `url` sending `credentials`.
    pub fn new(provider: &str, url: &str, credentials: &Credentials) -> SourceIdentity {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        credentials.bearer.hash(&mut hasher);
        credentials.basic.hash(&mut hasher);
        credentials.headers.hash(&mut hasher);
        SourceIdentity(format!("{provider} {url} {:016x}", hasher.finish()))
    }
}

/// An answer asked for once and awaited by every rollout that asks the same.
type SharedAnswer = Shared<BoxFuture<'static, Measurement>>;

/// The same query of the same source at the same time, over the same window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AnswerKey {
    source: SourceIdentity,
    probe: String,
    at: DateTime<Utc>,
    window: Option<Duration>,
}

/// The sources of one run: limits and answers, shared by every rollout of the run.
#[derive(Debug, Default)]
pub struct SourcePool {
    limits: Mutex<HashMap<SourceIdentity, Arc<Semaphore>>>,
    answers: Mutex<HashMap<AnswerKey, SharedAnswer>>,
    sent: std::sync::atomic::AtomicU64,
}

impl SourcePool {
    /// A pool with no sources yet.
    pub fn new() -> SourcePool {
        SourcePool::default()
    }

    /// How many queries this pool has sent (answers shared are counted once).
    pub fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn limit(&self, source: &PooledSource) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        limits
            .entry(source.identity.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(source.max_concurrency.max(1) as usize)))
            .clone()
    }

    /// Measures `request` on `source`: the answer of an identical earlier request of this run,
    /// or a new request sent when the source has a free slot. Waiting for the slot counts
    /// towards the request's timeout, so a busy source delays only the rollouts that use it.
    pub async fn measure(&self, source: &PooledSource, request: &MeasureRequest<'_>) -> Measurement {
        let key = AnswerKey {
            source: source.identity.clone(),
            // Two requests with the same text ask the same: the probe's fields, in full.
            probe: format!("{:?}", request.probe),
            at: request.at,
            window: request.window,
        };
        let shared = {
            let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
            answers
                .entry(key)
                .or_insert_with(|| self.ask(source, request).boxed().shared())
                .clone()
        };
        shared.await
    }

    /// The request, owned, sent when the source's limit lets it.
    fn ask(
        &self,
        source: &PooledSource,
        request: &MeasureRequest<'_>,
    ) -> impl std::future::Future<Output = Measurement> + Send + 'static {
        let limit = self.limit(source);
        let client = source.source.clone();
        let owned = Owned {
            probe: request.probe.clone(),
            at: request.at,
            window: request.window,
            timeout: request.timeout,
            rollout: request.rollout.to_string(),
            percent: request.percent,
        };
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            // A free slot costs no time; only a wait for one is taken from the timeout.
            let (permit, timeout) = match limit.clone().try_acquire_owned() {
                Ok(permit) => (permit, owned.timeout),
                Err(_) => {
                    let asked = Instant::now();
                    match tokio::time::timeout(owned.timeout, limit.acquire_owned()).await {
                        Ok(Ok(permit)) => (permit, owned.timeout.saturating_sub(asked.elapsed())),
                        _ => {
                            return Measurement::Error(format!(
                                "the source had no free slot within {}s: its other requests of this run were still running (raise its `max_concurrency` or the check's `timeout`)",
                                owned.timeout.as_secs()
                            ))
                        }
                    }
                }
            };
            let request = MeasureRequest {
                probe: &owned.probe,
                at: owned.at,
                window: owned.window,
                timeout,
                rollout: &owned.rollout,
                percent: owned.percent,
            };
            let answer = client.measure(&request).await;
            drop(permit);
            answer
        }
    }
}

/// A request that outlives the rollout that asked first.
struct Owned {
    probe: Probe,
    at: DateTime<Utc>,
    window: Option<Duration>,
    timeout: Duration,
    rollout: String,
    percent: Percent,
}
