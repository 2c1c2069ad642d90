//! The GitHub REST calls flagramp makes: octocrab's typed models for the answers, requests
//! sent under the project's HTTP policy.
//!
//! octocrab is the GitHub client flagramp is built on, split in two here. Its typed models
//! decode the answers: `issues::Comment` (listing and updating comments), `repos::Content`
//! (directory listings), `repos::Ref` / `repos::Object` (reading and creating a branch),
//! `repos::FileUpdate` (a contents write) and `repos::DiffEntry` (`pulls::FileDiff`, a pull
//! request's files). A field is read by name and type, not by walking a `serde_json::Value`, and
//! an answer GitHub would never give fails as an unexpected answer instead of reading as an empty
//! one. A few answers keep a small local struct, each saying why (see `Contents`).
//!
//! Its request builders (`octo.issues(…).list_comments(…)`, `octo.repos(…).get_content()`, …)
//! are not used: they read whole bodies without a bound and retry on their own, and the
//! project's trust rules want every read bounded in bytes and time and retried under one
//! policy. So each request goes through `GitHub::send`: octocrab's raw `_get` / `_put` /
//! `_post` / `_patch`, under `crate::http::with_retries`, the body read under
//! `MAX_ANSWER_BYTES`; the typed model is applied to the bytes afterwards.
//!
//! Two questions are asked of the GraphQL API instead: which pull request last changed each spec
//! file ([`GitHub::last_pull_requests_for`]), for every spec in one query, where REST needs two
//! calls per spec; and what the state branch holds ([`GitHub::branch_dir`] and
//! [`GitHub::blob_texts`]): its tree in one query and its documents a hundred per query, where
//! the contents API needs one call per file (docs/state-branch.md). The state branch is written
//! with the git data API (`create_tree`, `create_commit`, `fast_forward`).
//!
//! Every request is counted, and the last `x-ratelimit-*` headers kept ([`GitHub::api_use`]), for
//! the job summary. octocrab's `graphql()` is not used either: besides the unbounded read, it
//! posts to `/graphql` under the REST base path, which on GitHub Enterprise Server
//! (`https://HOST/api/v3`) is not where GraphQL lives (`https://HOST/api/graphql`, the runner's
//! `GITHUB_GRAPHQL_URL`). So a second octocrab client is rooted at the GraphQL URL, and its
//! requests go through the same `send`; a query reads nothing, so it is retried like a GET.
//!
//! Every call maps the status itself, so callers can tell a stale-sha conflict from a refusal by
//! branch protection, a rate limit from a read-only token (both can be 403), and either from a
//! server fault. Requests follow the one policy of `crate::http` (deadline, bounded retries,
//! `Retry-After` / `x-ratelimit-reset`): GETs are retried on failures and 5xx, writes only when
//! rate-limited (a repeated POST could create a second comment; a rate-limited one was not applied).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use octocrab::models::issues::Comment as IssueComment;
use octocrab::models::repos::{Content, DiffEntry, FileUpdate, Object, Ref};

use crate::http::{self, encode_path, Answer, AttemptError, Deadline};

/// How long one call may take, its retries and rate-limit waits included.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest answer read: lists of 100 long comments, and base64 files of up to 1 MB in JSON.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Why a GitHub call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    /// The file changed since its sha was read (409 on a contents write).
    #[error("{0}")]
    Conflict(String),
    /// The token may not do this (403), e.g. a read-only token on a fork's pull request.
    #[error("{0}")]
    Forbidden(String),
    /// GitHub's rate limit (429, or a 403 with `retry-after` or `x-ratelimit-remaining: 0`) still
    /// held when the call's time was up.
    #[error("{0}")]
    RateLimited(String),
    /// Branch protection or a repository rule refused the write: the write was answered 409 or
    /// 422 although the file was still at the sha it was written against.
    #[error("{0}")]
    Refused(String),
    /// The request was invalid as GitHub validates it (422 `validation-error`), for a reason
    /// the caller had not ruled out.
    #[error("{0}")]
    Invalid(String),
    /// Not there (404).
    #[error("{0}")]
    NotFound(String),
    /// Anything else: a status with GitHub's message, or a transport error.
    #[error("{0}")]
    Other(String),
}

/// A file's content and blob sha, the compare-and-swap token for writing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// The bytes.
    pub content: Vec<u8>,
    /// The blob sha.
    pub sha: String,
}

/// An issue or pull request comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Its id, for editing.
    pub id: u64,
    /// Its author's login.
    pub author: String,
    /// Its Markdown body.
    pub body: String,
}

/// One repository on one GitHub (github.com or Enterprise Server, from `GITHUB_API_URL`).
#[derive(Debug, Clone)]
pub struct GitHub {
    octo: octocrab::Octocrab,
    /// `host:port` of the API, for messages.
    host: String,
    /// A client rooted at the GraphQL endpoint (see the module's notes), the path to post to,
    /// and its `host:port`.
    graphql: octocrab::Octocrab,
    graphql_path: String,
    graphql_host: String,
    /// How long one call may take, its retries and waits included.
    call_timeout: Duration,
    owner: String,
    repo: String,
    /// What this client (and its clones: one run) used of the API, for the job summary.
    usage: Arc<Usage>,
}

/// Requests sent, commits landed and the last rate limit GitHub reported, counted as they
/// happen; shared by the clones of one [`GitHub`].
#[derive(Debug, Default)]
struct Usage {
    rest: AtomicU64,
    graphql: AtomicU64,
    commits: AtomicU64,
    /// By GitHub's `x-ratelimit-resource` (`core`, `graphql`): REST and GraphQL have separate
    /// budgets.
    limits: Mutex<BTreeMap<String, RateLimit>>,
}

/// A rate limit as GitHub last reported it in `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// `x-ratelimit-remaining`.
    pub remaining: u64,
    /// `x-ratelimit-limit`, if sent.
    pub limit: Option<u64>,
    /// `x-ratelimit-reset` (Unix seconds), if sent.
    pub reset: Option<i64>,
}

/// What a run used of GitHub's API so far ([`GitHub::api_use`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiUse {
    /// REST requests sent, each retry counted.
    pub rest_requests: u64,
    /// GraphQL requests sent, each retry counted.
    pub graphql_requests: u64,
    /// Commits that landed on a branch: contents-API writes and fast-forwarded commits.
    pub commits: u64,
    /// The last rate limit reported per resource (`core`, `graphql`), by name.
    pub rate_limits: Vec<(String, RateLimit)>,
}

impl ApiUse {
    /// Requests of both kinds.
    pub fn requests(&self) -> u64 {
        self.rest_requests + self.graphql_requests
    }
}

impl Usage {
    /// Counts one request and remembers the rate limit its answer reports. The headers come
    /// from outside: only numbers are read, and a resource name only when it is a short word.
    fn count(&self, graphql: bool, headers: &[(String, String)]) {
        let counter = if graphql { &self.graphql } else { &self.rest };
        counter.fetch_add(1, Ordering::Relaxed);
        let number = |name: &str| http::header_in(headers, name).and_then(|v| v.trim().parse::<u64>().ok());
        let Some(remaining) = number("x-ratelimit-remaining") else {
            return;
        };
        let resource = http::header_in(headers, "x-ratelimit-resource")
            .map(str::trim)
            .filter(|r| !r.is_empty() && r.len() <= 32 && r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .unwrap_or(if graphql { "graphql" } else { "core" });
        let limit = RateLimit {
            remaining,
            limit: number("x-ratelimit-limit"),
            reset: number("x-ratelimit-reset").and_then(|r| i64::try_from(r).ok()),
        };
        self.limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(resource.to_string(), limit);
    }
}

/// Percent-encodes a path segment, keeping `/` between segments.
/// Longest subject or trailer value in a commit message flagramp writes.
const COMMIT_LINE_LIMIT: usize = 500;

/// A commit message: the subject, a blank line, then one `Name: value` line per non-empty
/// value. Each part comes from outside (flag keys, actors, reasons), so each is folded to one
/// line, without control or bidirectional formatting characters, and cut to
/// [`COMMIT_LINE_LIMIT`] characters: a value can never forge another trailer or hide text.
pub fn commit_message(subject: &str, trailers: &[(&str, &str)]) -> String {
    let one_line = |text: &str| -> String {
        let folded = text
            .chars()
            .map(|c| {
                let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
                if c.is_control() || bidi || matches!(c, '\u{2028}' | '\u{2029}') {
                    ' '
                } else {
                    c
                }
            })
            .collect::<String>();
        let words: Vec<&str> = folded.split_whitespace().collect();
        let line = words.join(" ");
        if line.chars().count() <= COMMIT_LINE_LIMIT {
            line
        } else {
            line.chars().take(COMMIT_LINE_LIMIT - 1).collect::<String>() + "…"
        }
    };
    let mut message = one_line(subject);
    let body: Vec<String> = trailers
        .iter()
        .map(|(name, value)| (name, one_line(value)))
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    if !body.is_empty() {
        message.push_str("\n\n");
        message.push_str(&body.join("\n"));
    }
    message
}

fn message_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

impl GitHub {
    /// A client for `owner/repo` at `api_url`, authenticated with `token`; GraphQL at
    /// [`graphql_url_for`]`(api_url)`.
    pub fn new(api_url: &str, token: &str, owner_repo: &str) -> Result<GitHub, GitHubError> {
        GitHub::with_graphql(api_url, &graphql_url_for(api_url), token, owner_repo)
    }

    /// A client for `owner/repo` at `api_url`, with GraphQL at `graphql_url` (a runner's
    /// `GITHUB_GRAPHQL_URL`), authenticated with `token`.
    pub fn with_graphql(
        api_url: &str,
        graphql_url: &str,
        token: &str,
        owner_repo: &str,
    ) -> Result<GitHub, GitHubError> {
        crate::http::install_crypto_provider();
        let (owner, repo) = owner_repo
            .split_once('/')
            .ok_or_else(|| GitHubError::Other(format!("GITHUB_REPOSITORY `{owner_repo}` is not owner/repo")))?;
        let octo = client("GITHUB_API_URL", api_url, token)?;
        let graphql = client("GITHUB_GRAPHQL_URL", graphql_url, token)?;
        let graphql_path = reqwest::Url::parse(graphql_url)
            .map(|u| u.path().to_string())
            .map_err(|e| GitHubError::Other(format!("GITHUB_GRAPHQL_URL `{graphql_url}` is not a URL: {e}")))?;
        Ok(GitHub {
            octo,
            host: host_port(api_url),
            graphql,
            graphql_path,
            graphql_host: host_port(graphql_url),
            call_timeout: CALL_TIMEOUT,
            owner: owner.into(),
            repo: repo.into(),
            usage: Arc::default(),
        })
    }

    /// The same client with another bound on each call, its retries and waits included
    /// (default 60 s).
    pub fn with_call_timeout(mut self, timeout: Duration) -> GitHub {
        self.call_timeout = timeout;
        self
    }

    fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", encode_path(&self.owner), encode_path(&self.repo))
    }

    /// Sends one REST request under the HTTP policy; returns the last answer, whatever its
    /// status. Transport errors are `Other`.
    async fn send(&self, method: &str, uri: &str, body: Option<&Value>) -> Result<Answer, GitHubError> {
        self.send_on(&self.octo, &self.host, method, uri, body, method == "GET")
            .await
    }

    /// What this client and its clones used of the API so far.
    pub fn api_use(&self) -> ApiUse {
        let limits = self
            .usage
            .limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ApiUse {
            rest_requests: self.usage.rest.load(Ordering::Relaxed),
            graphql_requests: self.usage.graphql.load(Ordering::Relaxed),
            commits: self.usage.commits.load(Ordering::Relaxed),
            rate_limits: limits.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }

    fn count_commit(&self) {
        self.usage.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends one request with `octo` under the HTTP policy; `idempotent` requests are retried
    /// on failures and 5xx.
    async fn send_on(
        &self,
        octo: &octocrab::Octocrab,
        host: &str,
        method: &str,
        uri: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<Answer, GitHubError> {
        let graphql = std::ptr::eq(octo, &self.graphql);
        http::with_retries(Deadline::after(self.call_timeout), idempotent, host, || {
            attempt(octo, method, uri, body, idempotent, &self.usage, graphql)
        })
        .await
        .map_err(|e| GitHubError::Other(format!("{method} {uri}: {e}")))
    }

    fn classify(method: &str, uri: &str, answer: &Answer) -> GitHubError {
        let status = answer.status;
        let message = message_of(&answer.text());
        let what = format!("{method} {uri}: HTTP {status}: {message}");
        if http::is_rate_limited(status, &answer.headers) {
            let why = answer.gave_up.as_deref().unwrap_or("the rate limit still held");
            return GitHubError::RateLimited(format!(
                "GitHub rate-limited {method} {uri} (HTTP {status}: {message}; {why}): it is tried again on the next run"
            ));
        }
        // By status alone, as the REST description documents them: the message is GitHub's
        // prose and only ever shown. What a 409 or 422 on a write means is settled by the
        // caller, which can look at the resource again (see `put_file`, `create_branch`).
        match status {
            404 => GitHubError::NotFound(what),
            403 => GitHubError::Forbidden(what),
            409 => GitHubError::Conflict(what),
            422 => GitHubError::Invalid(what),
            _ => GitHubError::Other(what),
        }
    }

    async fn get_json<T: DeserializeOwned>(&self, uri: &str) -> Result<T, GitHubError> {
        let answer = self.send("GET", uri, None).await?;
        if !answer.is_success() {
            return Err(Self::classify("GET", uri, &answer));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| GitHubError::Other(format!("GET {uri}: unexpected answer: {e}")))
    }

    async fn write_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        uri: &str,
        body: &B,
    ) -> Result<T, GitHubError> {
        let body = serde_json::to_value(body).map_err(|e| GitHubError::Other(e.to_string()))?;
        let answer = self.send(method, uri, Some(&body)).await?;
        if !answer.is_success() {
            return Err(Self::classify(method, uri, &answer));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| GitHubError::Other(format!("{method} {uri}: unexpected answer: {e}")))
    }

    /// Pages through a list endpoint (100 per page) until a short page.
    async fn get_all<T: DeserializeOwned>(&self, uri: &str) -> Result<Vec<T>, GitHubError> {
        let mut out = Vec::new();
        let joiner = if uri.contains('?') { '&' } else { '?' };
        for page in 1.. {
            let items: Vec<T> = self.get_json(&format!("{uri}{joiner}per_page=100&page={page}")).await?;
            let n = items.len();
            out.extend(items);
            // A hard stop keeps a misbehaving server from looping us forever.
            if n < 100 || page >= 100 {
                break;
            }
        }
        Ok(out)
    }

    /// The repository's default branch.
    pub async fn default_branch(&self) -> Result<String, GitHubError> {
        let repo: RepositoryBranch = self.get_json(&self.repo_path("")).await?;
        repo.default_branch
            .ok_or_else(|| GitHubError::Other("the repository answer has no default_branch".into()))
    }

    /// The commit sha a branch points at, or `None` when it does not exist.
    pub async fn branch_sha(&self, branch: &str) -> Result<Option<String>, GitHubError> {
        match self
            .get_json::<Ref>(&self.repo_path(&format!("/git/ref/heads/{}", encode_path(branch))))
            .await
        {
            Ok(r) => Ok(object_sha(&r.object)),
            Err(GitHubError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates `branch` at `sha`; a branch created meanwhile by another run is fine.
    pub async fn create_branch(&self, branch: &str, sha: &str) -> Result<(), GitHubError> {
        let body = json!({ "ref": format!("refs/heads/{branch}"), "sha": sha });
        match self
            .write_json::<_, Ref>("POST", &self.repo_path("/git/refs"), &body)
            .await
        {
            Ok(_) => Ok(()),
            // A 422 for a ref that exists now is the branch another run created meanwhile.
            Err(GitHubError::Invalid(msg)) => match self.branch_sha(branch).await {
                Ok(Some(_)) => Ok(()),
                _ => Err(GitHubError::Invalid(msg)),
            },
            Err(e) => Err(e),
        }
    }

    /// What the contents endpoint answers for `path` on `branch`, or `None` when it is not there.
    async fn contents(&self, branch: &str, path: &str) -> Result<Option<Contents>, GitHubError> {
        let uri = self.repo_path(&format!("/contents/{}?ref={}", encode_path(path), encode_path(branch)));
        let answer: Value = match self.get_json(&uri).await {
            Ok(answer) => answer,
            Err(GitHubError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        // Dispatched on the shape, as octocrab's `ContentItems` does, so a decoding error names
        // the field at fault.
        let contents = if answer.is_array() {
            serde_json::from_value(answer).map(Contents::Dir)
        } else {
            serde_json::from_value(answer).map(Contents::Item)
        };
        contents
            .map(Some)
            .map_err(|e| GitHubError::Other(format!("GET {uri}: unexpected answer: {e}")))
    }

    /// A file on a branch, or `None` when it does not exist.
    pub async fn get_file(&self, branch: &str, path: &str) -> Result<Option<RepoFile>, GitHubError> {
        let file = match self.contents(branch, path).await? {
            None => return Ok(None),
            Some(Contents::Item(file)) if file.r#type == "file" => file,
            Some(_) => return Err(GitHubError::Other(format!("{path} on {branch} is not a file"))),
        };
        // Not `Content::decoded_content`: it panics on bad base64 and makes text of the bytes.
        // The whitespace is GitHub's line wrapping of the base64.
        let encoded: String = file.content.as_deref().unwrap_or_default().split_whitespace().collect();
        if file.encoding.as_deref() != Some("base64") {
            return Err(GitHubError::Other(format!(
                "{path} on {branch} is too large for the contents API (over 1 MB)"
            )));
        }
        let content = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| GitHubError::Other(format!("{path}: bad base64 from GitHub: {e}")))?;
        Ok(Some(RepoFile { content, sha: file.sha }))
    }

    /// The names of the files in a directory on a branch (empty when it does not exist).
    pub async fn list_dir(&self, branch: &str, path: &str) -> Result<Vec<String>, GitHubError> {
        match self.contents(branch, path).await? {
            Some(Contents::Dir(items)) => Ok(items
                .into_iter()
                .filter(|i| i.r#type == "file")
                .map(|i| i.name)
                .collect()),
            Some(Contents::Item(_)) | None => Ok(Vec::new()),
        }
    }

    /// Writes a file if it is still at `sha` (`None`: must not exist yet); returns the new sha.
    pub async fn put_file(
        &self,
        branch: &str,
        path: &str,
        content: &[u8],
        sha: Option<&str>,
        message: &str,
    ) -> Result<String, GitHubError> {
        let mut body = json!({
            "message": message,
            "content": base64::engine::general_purpose::STANDARD.encode(content),
            "branch": branch,
        });
        if let Some(sha) = sha {
            body["sha"] = json!(sha);
        }
        let written = self
            .write_json::<_, FileUpdate>(
                "PUT",
                &self.repo_path(&format!("/contents/{}", encode_path(path))),
                &body,
            )
            .await;
        let answer = match written {
            Ok(answer) => answer,
            Err(GitHubError::Conflict(msg) | GitHubError::Invalid(msg)) => {
                return Err(self.why_not_written(branch, path, sha, msg).await)
            }
            Err(e) => return Err(e),
        };
        self.count_commit();
        Ok(answer.content.sha)
    }

    /// What a contents write answered 409 or 422 means, settled by reading the file again: it
    /// changed since `sha` (or exists, when it was to be created) → another writer got there
    /// first; still at `sha` → the write itself was refused, by a branch rule or protection.
    async fn why_not_written(&self, branch: &str, path: &str, sha: Option<&str>, msg: String) -> GitHubError {
        match self.get_file(branch, path).await {
            Ok(now) if now.as_ref().map(|f| f.sha.as_str()) != sha => GitHubError::Conflict(msg),
            Ok(_) => GitHubError::Refused(format!(
                "{msg} (the file is unchanged, so a branch rule or protection refused the write)"
            )),
            // Unknown: the safe reading is that nothing was written and nothing is known.
            Err(_) => GitHubError::Other(msg),
        }
    }

    /// Sends a write that is safe to repeat, under the HTTP policy: creating a git object that
    /// already exists makes the same object, one that nothing points to is never seen, and
    /// moving a ref to where it already is changes nothing; so a 5xx or a broken answer is
    /// retried as a read is.
    async fn write_repeatable<T: DeserializeOwned>(
        &self,
        method: &str,
        uri: &str,
        body: &Value,
    ) -> Result<T, GitHubError> {
        let answer = self
            .send_on(&self.octo, &self.host, method, uri, Some(body), true)
            .await?;
        if !answer.is_success() {
            return Err(Self::classify(method, uri, &answer));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| GitHubError::Other(format!("{method} {uri}: unexpected answer: {e}")))
    }

    /// Creates a tree (`POST /git/trees`): `base` and `items` on top of it, or `items` alone
    /// without a base; returns its sha.
    pub async fn create_tree(&self, base: Option<&str>, items: &[TreeItem]) -> Result<String, GitHubError> {
        let tree: Vec<Value> = items.iter().map(TreeItem::to_json).collect();
        let mut body = json!({ "tree": tree });
        if let Some(base) = base {
            body["base_tree"] = json!(base);
        }
        let created: CreatedObject = self
            .write_repeatable("POST", &self.repo_path("/git/trees"), &body)
            .await?;
        Ok(created.sha)
    }

    /// Creates a commit of `tree` on `parents` (none: a root commit, as the API description
    /// allows); returns its sha. It is on no branch until a ref is moved to it.
    pub async fn create_commit(&self, message: &str, tree: &str, parents: &[String]) -> Result<String, GitHubError> {
        let body = json!({ "message": message, "tree": tree, "parents": parents });
        let created: CreatedObject = self
            .write_repeatable("POST", &self.repo_path("/git/commits"), &body)
            .await?;
        Ok(created.sha)
    }

    /// Moves `branch` to the commit `sha`, only as a fast-forward (`force: false`): the
    /// compare-and-swap of a commit made on the head that was read. A 422 is either another
    /// writer's commit (not a fast-forward) or a rule refusing the update; the caller tells
    /// them apart by reading the head again.
    pub async fn fast_forward(&self, branch: &str, sha: &str) -> Result<(), GitHubError> {
        let body = json!({ "sha": sha, "force": false });
        let uri = self.repo_path(&format!("/git/refs/heads/{}", encode_path(branch)));
        self.write_repeatable::<Ref>("PATCH", &uri, &body).await?;
        self.count_commit();
        Ok(())
    }

    /// Creates `branch` at the commit `sha`; a 422 when it exists (another run created it
    /// meanwhile) is left to the caller, unlike [`GitHub::create_branch`].
    pub async fn create_branch_at(&self, branch: &str, sha: &str) -> Result<(), GitHubError> {
        let body = json!({ "ref": format!("refs/heads/{branch}"), "sha": sha });
        self.write_json::<_, Ref>("POST", &self.repo_path("/git/refs"), &body)
            .await?;
        self.count_commit();
        Ok(())
    }

    /// The head of `branch`, its root tree's entries and the entries of the directory `dir`
    /// in it, all from one commit in one GraphQL query; `None` when the branch does not exist.
    pub async fn branch_dir(&self, branch: &str, dir: &str) -> Result<Option<BranchDir>, GitHubError> {
        let variables = json!({
            "owner": self.owner,
            "name": self.repo,
            // Qualified, as in `last_pull_requests_for`.
            "branch": format!("refs/heads/{branch}"),
            "dir": dir,
        });
        let data: BranchDirData = self.graphql(BRANCH_DIR_QUERY, variables).await?;
        let Some(commit) = data.repository.and_then(|r| r.object) else {
            return Ok(None);
        };
        let (Some(head), Some(tree)) = (commit.oid, commit.tree) else {
            return Err(GitHubError::Other(format!(
                "GraphQL: unexpected answer: refs/heads/{branch} is not a commit"
            )));
        };
        let root = tree
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.name, e.kind))
            .collect();
        let (dir_oid, entries) = match commit.file {
            Some(TreeEntryData {
                kind,
                oid,
                object: Some(ObjectData { entries: Some(entries) }),
                ..
            }) if kind == "tree" => (Some(oid), entries),
            _ => (None, Vec::new()),
        };
        Ok(Some(BranchDir {
            head,
            tree: tree.oid,
            root,
            dir: dir_oid,
            entries: entries
                .into_iter()
                .map(|e| DirEntry {
                    name: e.name,
                    oid: e.oid,
                    kind: e.kind,
                    size: e.size.unwrap_or(0),
                })
                .collect(),
        }))
    }

    /// The text of each blob in `blobs` (oid and expected size), in order: one GraphQL query per
    /// [`BLOBS_PER_QUERY`] blobs or [`BLOB_BYTES_PER_QUERY`] bytes, so no answer grows with the
    /// number of rollouts. `None` for a blob GitHub did not give whole as text (missing,
    /// binary, truncated, or not the bytes its oid names): the caller reads that one otherwise.
    pub async fn blob_texts(&self, blobs: &[(String, u64)]) -> Result<Vec<Option<Vec<u8>>>, GitHubError> {
        let mut found = Vec::with_capacity(blobs.len());
        let mut start = 0;
        while start < blobs.len() {
            let mut end = start;
            let mut bytes = 0u64;
            while end < blobs.len()
                && end - start < BLOBS_PER_QUERY
                && (end == start || bytes + blobs[end].1 <= BLOB_BYTES_PER_QUERY)
            {
                bytes += blobs[end].1;
                end += 1;
            }
            let batch = &blobs[start..end];
            let mut variables = json!({ "owner": self.owner, "name": self.repo });
            for (i, (oid, _)) in batch.iter().enumerate() {
                variables[format!("o{i}")] = json!(oid);
            }
            let data: BlobData = self.graphql(&blob_query(batch.len()), variables).await?;
            let mut objects = data.repository.unwrap_or_default();
            for (i, (oid, _)) in batch.iter().enumerate() {
                let text = objects
                    .remove(&format!("o{i}"))
                    .flatten()
                    .filter(|b| !b.is_truncated && b.is_binary != Some(true))
                    .and_then(|b| b.text)
                    .map(String::into_bytes)
                    // The text is only trusted when it is the blob its oid names.
                    .filter(|bytes| blob_sha(bytes).eq_ignore_ascii_case(oid));
                found.push(text);
            }
            start = end;
        }
        Ok(found)
    }

    /// Every comment on an issue or pull request, across all pages.
    pub async fn comments(&self, issue: u64) -> Result<Vec<Comment>, GitHubError> {
        let items: Vec<IssueComment> = self
            .get_all(&self.repo_path(&format!("/issues/{issue}/comments")))
            .await?;
        Ok(items
            .into_iter()
            .map(|c| Comment {
                id: c.id.into_inner(),
                author: c.user.login,
                body: c.body.unwrap_or_default(),
            })
            .collect())
    }

    /// Creates a comment; no retry (a retried POST could duplicate it).
    pub async fn create_comment(&self, issue: u64, body: &str) -> Result<u64, GitHubError> {
        let answer: CreatedComment = self
            .write_json(
                "POST",
                &self.repo_path(&format!("/issues/{issue}/comments")),
                &json!({ "body": body }),
            )
            .await?;
        Ok(answer.id)
    }

    /// Replaces a comment's body.
    pub async fn update_comment(&self, id: u64, body: &str) -> Result<(), GitHubError> {
        self.write_json::<_, IssueComment>(
            "PATCH",
            &self.repo_path(&format!("/issues/comments/{id}")),
            &json!({ "body": body }),
        )
        .await?;
        Ok(())
    }

    /// The files a pull request changes.
    pub async fn pull_request_files(&self, pr: u64) -> Result<Vec<String>, GitHubError> {
        let items: Vec<DiffEntry> = self.get_all(&self.repo_path(&format!("/pulls/{pr}/files"))).await?;
        Ok(items.into_iter().map(|f| f.filename).collect())
    }

    /// The pull request that last changed each of `paths` on `branch`, in order (`None` where
    /// no pull request did): for each path, the newest commit on the branch that touched it
    /// (`Commit.history(path:, first: 1)`) and the pull request associated with that commit
    /// (`Commit.associatedPullRequests(first: 1)`: the merged one that brought it to the branch).
    /// One GraphQL query per [`PATHS_PER_QUERY`] paths; the paths and the branch travel as
    /// variables, never inside the query's text.
    pub async fn last_pull_requests_for(
        &self,
        branch: &str,
        paths: &[String],
    ) -> Result<Vec<Option<u64>>, GitHubError> {
        let mut found = Vec::with_capacity(paths.len());
        for batch in paths.chunks(PATHS_PER_QUERY) {
            let mut variables = json!({
                "owner": self.owner,
                "name": self.repo,
                // Qualified: `main` alone would name a tag `main` first, as git resolves names.
                "branch": format!("refs/heads/{branch}"),
            });
            for (i, path) in batch.iter().enumerate() {
                variables[format!("p{i}")] = json!(path);
            }
            let data: HistoryData = self.graphql(&history_query(batch.len()), variables).await?;
            let histories = data
                .repository
                .and_then(|r| r.object)
                .ok_or_else(|| GitHubError::NotFound(format!("the branch {branch} does not exist")))?;
            for i in 0..batch.len() {
                let history = histories.get(&format!("p{i}")).ok_or_else(|| {
                    GitHubError::Other(format!("GraphQL: unexpected answer: no history for p{i} on {branch}"))
                })?;
                found.push(history.last_pull_request());
            }
        }
        Ok(found)
    }

    /// One GraphQL query: its `data`, or GitHub's `errors` as an error (`NOT_FOUND` as
    /// `NotFound`, `RATE_LIMITED` as `RateLimited`), even beside partial data.
    async fn graphql<T: DeserializeOwned>(&self, query: &str, variables: Value) -> Result<T, GitHubError> {
        let body = json!({ "query": query, "variables": variables });
        let path = &self.graphql_path;
        let answer = self
            .send_on(&self.graphql, &self.graphql_host, "POST", path, Some(&body), true)
            .await?;
        if !answer.is_success() {
            return Err(Self::classify("POST", path, &answer));
        }
        let reply: GraphQlReply<T> = serde_json::from_slice(&answer.body)
            .map_err(|e| GitHubError::Other(format!("POST {path}: unexpected answer: {e}")))?;
        if let Some(errors) = reply.errors.filter(|e| !e.is_empty()) {
            // GitHub's prose, only ever shown: a few, each cut like a REST message.
            let messages: Vec<String> = errors
                .iter()
                .take(3)
                .map(|e| e.message.chars().take(200).collect())
                .collect();
            let what = format!("POST {path}: GraphQL: {}", messages.join("; "));
            return Err(match errors[0].kind.as_deref() {
                Some("NOT_FOUND") => GitHubError::NotFound(what),
                Some("RATE_LIMITED") => GitHubError::RateLimited(what),
                _ => GitHubError::Other(what),
            });
        }
        reply
            .data
            .ok_or_else(|| GitHubError::Other(format!("POST {path}: unexpected answer: no data")))
    }
}

/// The most paths one GraphQL query asks about: each is a `history` lookup, and GitHub stops a
/// query that runs longer than its time limit; a hundred stays far from that on a large
/// repository, and a repository with more specs asks again.
pub const PATHS_PER_QUERY: usize = 100;

/// The query of [`GitHub::last_pull_requests_for`] for `paths` paths, aliased `p0`, `p1`, …
/// Every connection takes `first`: GitHub refuses a connection without `first` or `last`
/// (docs.github.com/graphql/guides/using-pagination-in-the-graphql-api).
fn history_query(paths: usize) -> String {
    let declared: String = (0..paths).map(|i| format!(", $p{i}: String!")).collect();
    let fields: String = (0..paths)
        .map(|i| {
            format!(
                "        p{i}: history(path: $p{i}, first: 1) {{ nodes {{ associatedPullRequests(first: 1) {{ nodes {{ number }} }} }} }}\n"
            )
        })
        .collect();
    format!(
        "query($owner: String!, $name: String!, $branch: String!{declared}) {{\n  repository(owner: $owner, name: $name) {{\n    object(expression: $branch) {{\n      ... on Commit {{\n{fields}      }}\n    }}\n  }}\n}}\n"
    )
}

/// The query of [`GitHub::branch_dir`]: the branch's commit, its root entries, and through
/// `Commit.file(path:)` the directory's entries, so all three come from the same commit.
const BRANCH_DIR_QUERY: &str = "query($owner: String!, $name: String!, $branch: String!, $dir: String!) {
  repository(owner: $owner, name: $name) {
    object(expression: $branch) {
      ... on Commit {
        oid
        tree { oid entries { name type oid } }
        file(path: $dir) { name type oid object { ... on Tree { entries { name type oid size } } } }
      }
    }
  }
}
";

/// The most blobs one query of [`GitHub::blob_texts`] asks for: aliases cost GitHub time, as
/// the histories of [`PATHS_PER_QUERY`] do.
pub const BLOBS_PER_QUERY: usize = 100;

/// The most blob bytes one query of [`GitHub::blob_texts`] asks for (a single larger blob is
/// asked alone): JSON-escaped text grows, and the answer must stay under `MAX_ANSWER_BYTES`.
pub const BLOB_BYTES_PER_QUERY: u64 = 4 * 1024 * 1024;

/// The query of [`GitHub::blob_texts`] for `blobs` blobs, aliased `o0`, `o1`, …, each oid a
/// variable.
fn blob_query(blobs: usize) -> String {
    let declared: String = (0..blobs).map(|i| format!(", $o{i}: GitObjectID!")).collect();
    let fields: String = (0..blobs)
        .map(|i| format!("    o{i}: object(oid: $o{i}) {{ ... on Blob {{ text isBinary isTruncated byteSize }} }}\n"))
        .collect();
    format!("query($owner: String!, $name: String!{declared}) {{\n  repository(owner: $owner, name: $name) {{\n{fields}  }}\n}}\n")
}

/// The git blob id of `bytes` (SHA-1 of `blob <len>\0` and the bytes): what the contents API
/// calls a file's `sha`, and what a tree names it by.
pub fn blob_sha(bytes: &[u8]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(format!("blob {}\0", bytes.len()).as_bytes());
    context.update(bytes);
    context.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// One entry of a tree to create ([`GitHub::create_tree`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeItem {
    /// A file (mode `100644`) with this text, written as a blob by GitHub.
    File {
        /// Its path from the tree's root.
        path: String,
        /// Its text.
        content: String,
    },
    /// An existing tree (a directory, mode `040000`) by its sha.
    Tree {
        /// Its path from the tree's root.
        path: String,
        /// The tree's sha.
        sha: String,
    },
}

impl TreeItem {
    fn to_json(&self) -> Value {
        match self {
            TreeItem::File { path, content } => {
                json!({ "path": path, "mode": "100644", "type": "blob", "content": content })
            }
            TreeItem::Tree { path, sha } => json!({ "path": path, "mode": "040000", "type": "tree", "sha": sha }),
        }
    }
}

/// A branch's head commit, its root tree's entries and one directory's entries
/// ([`GitHub::branch_dir`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchDir {
    /// The head commit.
    pub head: String,
    /// Its root tree.
    pub tree: String,
    /// The root tree's entries: name and type (`blob`, `tree`, `commit`).
    pub root: Vec<(String, String)>,
    /// The directory's tree, if the directory exists.
    pub dir: Option<String>,
    /// The directory's entries.
    pub entries: Vec<DirEntry>,
}

/// One entry of a directory ([`BranchDir`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name.
    pub name: String,
    /// Its object id (a file's blob sha).
    pub oid: String,
    /// `blob`, `tree` or `commit`.
    pub kind: String,
    /// Its size in bytes.
    pub size: u64,
}

/// `data` of [`BRANCH_DIR_QUERY`].
#[derive(Debug, serde::Deserialize)]
struct BranchDirData {
    repository: Option<BranchDirRepository>,
}

#[derive(Debug, serde::Deserialize)]
struct BranchDirRepository {
    object: Option<CommitTreeData>,
}

/// The commit's fields; an object that is not a commit has none of them.
#[derive(Debug, serde::Deserialize)]
struct CommitTreeData {
    oid: Option<String>,
    tree: Option<TreeData>,
    file: Option<TreeEntryData>,
}

/// `Tree`: `oid: GitObjectID!`, `entries: [TreeEntry!]`.
#[derive(Debug, serde::Deserialize)]
struct TreeData {
    oid: String,
    entries: Option<Vec<TreeEntryData>>,
}

/// `TreeEntry`: `name: String!`, `type: String!`, `oid: GitObjectID!`, `size: Int!`,
/// `object: GitObject`.
#[derive(Debug, serde::Deserialize)]
struct TreeEntryData {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    oid: String,
    size: Option<u64>,
    object: Option<ObjectData>,
}

/// A tree entry's object: a `Tree`'s entries, nothing for another kind.
#[derive(Debug, serde::Deserialize)]
struct ObjectData {
    entries: Option<Vec<TreeEntryData>>,
}

/// `data` of [`blob_query`]: the aliased objects, `null` where there is none.
#[derive(Debug, serde::Deserialize)]
struct BlobData {
    repository: Option<std::collections::HashMap<String, Option<BlobFields>>>,
}

/// `Blob`: `text: String`, `isBinary: Boolean`, `isTruncated: Boolean!`, `byteSize: Int!`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlobFields {
    text: Option<String>,
    is_binary: Option<bool>,
    #[serde(default)]
    is_truncated: bool,
}

/// The one field read of a created tree or commit (`git-tree`, `git-commit`).
#[derive(Debug, serde::Deserialize)]
struct CreatedObject {
    sha: String,
}

/// Where GitHub's GraphQL API is, given the REST API's URL: `https://api.github.com/graphql`
/// beside `https://api.github.com`, `https://HOST/api/graphql` beside GitHub Enterprise
/// Server's `https://HOST/api/v3`. A runner says so itself in `GITHUB_GRAPHQL_URL`.
pub fn graphql_url_for(api_url: &str) -> String {
    let base = api_url.trim_end_matches('/');
    match base.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api/graphql"),
        None => format!("{base}/graphql"),
    }
}

/// An octocrab client rooted at `url` (named `variable` in errors), with the token and bounded
/// connect and read times; the call's deadline bounds the rest.
fn client(variable: &str, url: &str, token: &str) -> Result<octocrab::Octocrab, GitHubError> {
    octocrab::Octocrab::builder()
        .base_uri(url)
        .map_err(|e| GitHubError::Other(format!("{variable} `{url}` is not a URL: {e}")))?
        .personal_token(token.to_string())
        .set_connect_timeout(Some(Duration::from_secs(10)))
        .set_read_timeout(Some(Duration::from_secs(30)))
        .build()
        .map_err(|e| GitHubError::Other(format!("cannot build the GitHub client: {e}")))
}

/// `host:port` of a URL, for messages and the retry policy's waits.
fn host_port(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| url.to_string())
}

/// One octocrab request, its answer read under [`MAX_ANSWER_BYTES`].
async fn attempt(
    octo: &octocrab::Octocrab,
    method: &str,
    uri: &str,
    body: Option<&Value>,
    idempotent: bool,
    usage: &Usage,
    graphql: bool,
) -> Result<Answer, AttemptError> {
    let result = match method {
        "GET" => octo._get(uri).await,
        "POST" => octo._post(uri, body).await,
        "PUT" => octo._put(uri, body).await,
        "PATCH" => octo._patch(uri, body).await,
        other => {
            return Err(AttemptError {
                message: format!("internal: unsupported method {other}"),
                retryable: false,
            })
        }
    };
    let response = result.map_err(|e| {
        usage.count(graphql, &[]);
        AttemptError {
            message: e.to_string(),
            // Whether a failed write reached GitHub is unknown: only reads are repeated.
            retryable: idempotent,
        }
    })?;
    let status = response.status().as_u16();
    let headers = http::header_pairs(response.headers());
    usage.count(graphql, &headers);
    let bytes = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| {
            let too_large = e.downcast_ref::<http_body_util::LengthLimitError>().is_some();
            AttemptError {
                message: if too_large {
                    format!(
                        "the answer is larger than {}",
                        crate::fsutil::size_text(MAX_ANSWER_BYTES as u64)
                    )
                } else {
                    format!("reading the answer: {e}")
                },
                retryable: idempotent && !too_large,
            }
        })?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body: bytes.to_vec(),
        gave_up: None,
    })
}

/// A GraphQL answer: `data`, `errors`, or both (a partial answer).
#[derive(Debug, serde::Deserialize)]
struct GraphQlReply<T> {
    data: Option<T>,
    errors: Option<Vec<GraphQlError>>,
}

/// One of a GraphQL answer's `errors`: GitHub's message, and its `type` where it gives one.
#[derive(Debug, serde::Deserialize)]
struct GraphQlError {
    #[serde(default)]
    message: String,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `data` of [`history_query`]: `repository.object` is the branch's commit, whose fields are
/// the aliased histories (an object that is not a commit has none).
#[derive(Debug, serde::Deserialize)]
struct HistoryData {
    repository: Option<HistoryRepository>,
}

#[derive(Debug, serde::Deserialize)]
struct HistoryRepository {
    object: Option<std::collections::HashMap<String, CommitHistory>>,
}

/// `CommitHistoryConnection.nodes: [Commit]`, each with `associatedPullRequests`.
#[derive(Debug, serde::Deserialize)]
struct CommitHistory {
    nodes: Option<Vec<Option<HistoryCommit>>>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryCommit {
    associated_pull_requests: Option<PullRequestNodes>,
}

/// `PullRequestConnection.nodes: [PullRequest]`, of which `number: Int!` is read.
#[derive(Debug, serde::Deserialize)]
struct PullRequestNodes {
    nodes: Option<Vec<Option<PullRequestNumber>>>,
}

#[derive(Debug, serde::Deserialize)]
struct PullRequestNumber {
    number: u64,
}

impl CommitHistory {
    /// The pull request of the newest commit, if it has one.
    fn last_pull_request(&self) -> Option<u64> {
        let commit = self.nodes.as_ref()?.iter().flatten().next()?;
        let pulls = commit.associated_pull_requests.as_ref()?.nodes.as_ref()?;
        pulls.iter().flatten().next().map(|p| p.number)
    }
}

/// What `GET /repos/{owner}/{repo}/contents/{path}` answers: an array for a directory, one
/// item for a file, symlink or submodule. octocrab's `repos::ContentItems` holds the same, but
/// only through its own `FromResponse` (which reads the whole body, unbounded), has no
/// `Deserialize`, and loses which of the two was answered (a directory holding one file would
/// read as that file): so this small enum. A directory's entries are octocrab's
/// `repos::Content`.
#[derive(Debug)]
enum Contents {
    Dir(Vec<Content>),
    Item(ContentFile),
}

/// The fields of a single contents answer that [`GitHub::get_file`] reads. Local, not
/// octocrab's `repos::Content` (which directory listings use), because that model requires
/// `name`, `path`, `size`, `url` and `_links`, and the fault matrix in `tests/faults/mod.rs`
/// (outside this module's scope) answers a file with only `type`, `encoding`, `sha` and
/// `content`. Once those bodies are full GitHub answers, this can become `repos::Content`.
#[derive(Debug, serde::Deserialize)]
struct ContentFile {
    r#type: String,
    sha: String,
    encoding: Option<String>,
    content: Option<String>,
}

/// The one field of `GET /repos/{owner}/{repo}` read. Local, not octocrab's `Repository`
/// (which requires `id`, `name` and `url`), because `tests/faults/mod.rs` (outside this
/// module's scope) answers `{"default_branch": …}` alone.
#[derive(Debug, serde::Deserialize)]
struct RepositoryBranch {
    default_branch: Option<String>,
}

/// The one field of a created comment read. Local, not octocrab's `issues::Comment` (which
/// `comments` and `update_comment` decode), because `tests/faults/mod.rs` (outside this
/// module's scope) answers the create with `{"id": …}` alone.
#[derive(Debug, serde::Deserialize)]
struct CreatedComment {
    id: u64,
}

/// The sha a ref points at, whatever kind of object that is (a branch's is a commit).
fn object_sha(object: &Object) -> Option<String> {
    match object {
        Object::Commit { sha, .. } | Object::Tag { sha, .. } | Object::Tree { sha, .. } | Object::Blob { sha, .. } => {
            Some(sha.clone())
        }
        _ => None,
    }
}
