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
//! One question is asked of the GraphQL API instead: which pull request last changed each spec
//! file ([`GitHub::last_pull_requests_for`]), for every spec in one query, where REST needs two
//! calls per spec. octocrab's `graphql()` is not used either: besides the unbounded read, it
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
        http::with_retries(Deadline::after(self.call_timeout), idempotent, host, || {
            attempt(octo, method, uri, body, idempotent)
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
    let response = result.map_err(|e| AttemptError {
        message: e.to_string(),
        // Whether a failed write reached GitHub is unknown: only reads are repeated.
        retryable: idempotent,
    })?;
    let status = response.status().as_u16();
    let headers = http::header_pairs(response.headers());
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
