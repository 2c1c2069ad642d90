//! A stateful local fake of the GitHub REST API for the operations flagramp's Action uses.
//!
//! One catch-all [`wiremock::Respond`] serves every request from a shared [`World`] behind a
//! mutex, so each operation (read, compare-and-swap write, comment create) is atomic even when
//! several `flagramp` processes hit the fake at once. Response objects are built from the
//! examples in GitHub's own API description (`components/examples`), with ids, shas, bodies and
//! URLs replaced so they agree with the fake's state, and every request and answer is recorded
//! so a test can end with [`FakeGitHub::assert_conformant`].
//!
//! The repository is modelled as git is: commits with a full file tree and one parent, and
//! branches pointing at commits. `put_file` (seeding), contents `PUT` and `add_commit` all make
//! commits, so `GET /commits?path=…` sees them, newest first.
//!
//! `POST /graphql` answers queries from the same commits and pull requests (see
//! [`super::graphql`] for the part of the GraphQL schema it knows); a query GitHub would refuse
//! is answered with GitHub's kind of error and recorded as a conformance problem.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::graphql::{self, GqlError, Node, Resolved};
use super::openapi::OpenApi;
use super::{git_blob_sha, percent_decode, percent_encode_query, sha1_hex};

/// The login the token acts as unless [`FakeGitHub::set_identity`] says otherwise: the
/// `GITHUB_TOKEN` of a workflow run.
pub const DEFAULT_IDENTITY: &str = "github-actions[bot]";

/// Where GitHub's error bodies point when an operation has no `externalDocs` of its own.
const REST_DOCS: &str = "https://docs.github.com/rest";

/// The first id given to a comment: above `u32::MAX / 2` and `i32::MAX`, as real comment ids are,
/// so a client that narrows ids breaks here too.
const FIRST_COMMENT_ID: u64 = 3_000_000_001;

/// A local fake of the GitHub REST API for one repository. Dropping it stops the server.
pub struct FakeGitHub {
    server: MockServer,
    world: Arc<Mutex<World>>,
}

/// An issue or pull-request comment as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// The comment id (`issue-comment.id`).
    pub id: u64,
    /// The author's login.
    pub author: String,
    /// The comment text.
    pub body: String,
}

/// One request the fake received, with the answer it gave.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Upper-case HTTP method.
    pub method: String,
    /// The percent-decoded path, without the query.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// The request body, if it was JSON (a non-JSON body is recorded as a JSON string).
    pub body: Option<Value>,
    /// The status the fake answered with.
    pub status: u16,
    /// The JSON body the fake answered with, if any.
    pub response_body: Option<Value>,
}

/// What the fake knows about an answer it gave, for the conformance check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An answer the API description documents for this operation; checked strictly.
    Documented,
    /// Real GitHub behaviour the description leaves out (401 without a token, 403 for a
    /// read-only token, 404 for an unknown comment…). If the status happens to be documented
    /// the answer is checked strictly, otherwise its body is checked against this schema.
    Real(&'static str),
    /// A failure a test asked for (`fail_next`, `fail_once_after_applying`): status not checked,
    /// body checked against `basic-error`.
    Injected,
    /// A request the fake does not serve: always a violation.
    Unexpected,
    /// A GraphQL query (`POST /graphql`), outside the REST description; its problems are
    /// found when it is answered.
    GraphQl,
}

struct Entry {
    recorded: Recorded,
    kind: Kind,
    /// What is wrong with a GraphQL query, found when it was answered.
    problems: Vec<String>,
    user_agent: bool,
    body_not_json: bool,
}

struct Fault {
    method: String,
    suffix: String,
    status: u16,
    /// Apply the operation, then answer with `status` (an ambiguous failure).
    apply: bool,
    remaining: usize,
}

/// Another writer's commit, made when a matching request arrives
/// ([`FakeGitHub::commit_before_next`]).
struct Interleaved {
    method: String,
    suffix: String,
    branch: String,
    files: Vec<(String, Vec<u8>)>,
}

#[derive(Clone)]
struct CommitObject {
    sha: String,
    parent: Option<String>,
    tree: BTreeMap<String, Vec<u8>>,
    /// The git id of `tree` (see [`World::register_tree`]).
    tree_sha: String,
    /// Paths this commit changed (for `GET /commits?path=`).
    touched: Vec<String>,
    message: String,
    author: String,
    date: String,
    /// Pull requests associated with this commit (`GET /commits/{sha}/pulls`).
    pulls: Vec<u64>,
}

struct StoredComment {
    id: u64,
    issue: u64,
    author: String,
    body: String,
    created_at: String,
    updated_at: String,
}

/// The fake's whole state; every request is handled with the lock held.
struct World {
    api: &'static OpenApi,
    base_uri: String,
    owner: String,
    repo: String,
    default_branch: String,
    branches: BTreeMap<String, String>,
    commits: HashMap<String, CommitObject>,
    protected: BTreeSet<String>,
    comments: Vec<StoredComment>,
    next_comment_id: u64,
    pr_files: BTreeMap<u64, Vec<(String, String)>>,
    read_only: bool,
    identity: String,
    faults: Vec<Fault>,
    /// Commits of another writer, each made just before the request it waits for is served.
    interleaved: Vec<Interleaved>,
    log: Vec<Entry>,
    sequence: u64,
    applied_writes: usize,
    /// Every blob and tree of every commit and every created tree, by git id: a tree as the
    /// files under it (paths relative to it) by blob id.
    blobs: HashMap<String, Vec<u8>>,
    trees: HashMap<String, BTreeMap<String, String>>,
    /// Added to every answer ([`FakeGitHub::set_delay`]).
    delay: std::time::Duration,
    /// Longest `Blob.text` answered whole ([`FakeGitHub::set_blob_text_limit`]).
    blob_text_limit: Option<usize>,
}

/// A commit as a test sees it ([`FakeGitHub::commits_on`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub sha: String,
    /// Its parent, `None` for a root commit.
    pub parent: Option<String>,
    pub message: String,
    /// The paths it changed from its parent.
    pub touched: Vec<String>,
}

/// The parts of a request the fake looks at.
struct Incoming {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Value>,
    body_not_json: bool,
    authorized: bool,
    user_agent: bool,
}

/// An answer before it becomes a `ResponseTemplate`.
struct Reply {
    status: u16,
    body: Option<Value>,
    text: Option<String>,
    headers: Vec<(String, String)>,
    kind: Kind,
    /// The operation changed the world.
    applied: bool,
    /// Conformance problems found while answering (GraphQL).
    problems: Vec<String>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            text: None,
            headers: Vec::new(),
            kind: Kind::Documented,
            applied: false,
            problems: Vec::new(),
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: None,
            text: None,
            headers: Vec::new(),
            kind: Kind::Documented,
            applied: false,
            problems: Vec::new(),
        }
    }

    fn kind(mut self, kind: Kind) -> Reply {
        self.kind = kind;
        self
    }

    fn header(mut self, name: &str, value: String) -> Reply {
        self.headers.push((name.to_string(), value));
        self
    }

    fn applied(mut self) -> Reply {
        self.applied = true;
        self
    }
}

struct Responder {
    world: Arc<Mutex<World>>,
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let incoming = Incoming::from_request(request);
        let mut world = self.world.lock().unwrap_or_else(PoisonError::into_inner);
        let reply = world.handle(&incoming);
        world.record(incoming, &reply);
        world.template(reply).set_delay(world.delay)
    }
}

impl Incoming {
    fn from_request(request: &Request) -> Incoming {
        let method = request.method.as_str().to_ascii_uppercase();
        let path = percent_decode(request.url.path());
        let query = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let (body, body_not_json) = if request.body.is_empty() {
            (None, false)
        } else {
            match serde_json::from_slice::<Value>(&request.body) {
                Ok(v) => (Some(v), false),
                Err(_) => (
                    Some(Value::String(String::from_utf8_lossy(&request.body).into_owned())),
                    true,
                ),
            }
        };
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .trim()
                .to_string()
        };
        Incoming {
            method,
            path,
            query,
            body,
            body_not_json,
            authorized: !header("authorization").is_empty(),
            user_agent: !header("user-agent").is_empty(),
        }
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

impl FakeGitHub {
    /// Starts a fake for `owner/repo` whose default branch `default_branch` holds one empty
    /// commit. Point `GITHUB_API_URL` at [`FakeGitHub::uri`].
    pub async fn start(owner: &str, repo: &str, default_branch: &str) -> FakeGitHub {
        let server = MockServer::start().await;
        let world = Arc::new(Mutex::new(World::new(owner, repo, default_branch, &server.uri())));
        Mock::given(any())
            .respond_with(Responder { world: world.clone() })
            .mount(&server)
            .await;
        FakeGitHub { server, world }
    }

    /// The base URL of the fake, such as `http://127.0.0.1:41234` (no trailing slash).
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Seeds a file: commits `content` at `path` on `branch` (created from the default branch
    /// if missing). The commit shows up in `GET /commits` like any other.
    pub fn put_file(&self, branch: &str, path: &str, content: &[u8]) {
        let mut world = self.world();
        if !world.branches.contains_key(branch) {
            let head = world.head(&world.default_branch.clone()).to_string();
            world.branches.insert(branch.to_string(), head);
        }
        world.commit(
            branch,
            path,
            Some(content.to_vec()),
            &format!("Seed {path}"),
            "test-seed",
            None,
        );
    }

    /// The bytes of `path` on `branch`, or `None` if the branch or the file does not exist.
    pub fn file(&self, branch: &str, path: &str) -> Option<Vec<u8>> {
        let world = self.world();
        let head = world.branches.get(branch)?;
        world.commits[head].tree.get(path).cloned()
    }

    /// The blob sha of `path` on `branch` (what the contents API calls `sha`), if it exists.
    pub fn file_sha(&self, branch: &str, path: &str) -> Option<String> {
        self.file(branch, path).map(|bytes| git_blob_sha(&bytes))
    }

    /// Every version of `path` on `branch`, oldest first: the file's bytes after each commit
    /// that touched it (seeds, contents `PUT`s). Shows how many writes really landed.
    pub fn file_history(&self, branch: &str, path: &str) -> Vec<Vec<u8>> {
        let world = self.world();
        let Some(head) = world.branches.get(branch) else {
            return Vec::new();
        };
        let mut versions: Vec<Vec<u8>> = world
            .history(head)
            .into_iter()
            .filter(|c| c.touched.iter().any(|t| t == path))
            .filter_map(|c| c.tree.get(path).cloned())
            .collect();
        versions.reverse();
        versions
    }

    /// Whether `branch` exists.
    pub fn branch_exists(&self, branch: &str) -> bool {
        self.world().branches.contains_key(branch)
    }

    /// Adds a comment by `author_login` to issue or pull request `issue`; returns its id.
    pub fn add_comment(&self, issue: u64, author_login: &str, body: &str) -> u64 {
        self.world().add_comment(issue, author_login, body)
    }

    /// The comments on issue or pull request `issue`, oldest first.
    pub fn comments(&self, issue: u64) -> Vec<Comment> {
        self.world()
            .comments
            .iter()
            .filter(|c| c.issue == issue)
            .map(|c| Comment {
                id: c.id,
                author: c.author.clone(),
                body: c.body.clone(),
            })
            .collect()
    }

    /// Sets the files of pull request `pr` as `(filename, status)` pairs, where status is one of
    /// `added`, `removed`, `modified`, `renamed`, `copied`, `changed`, `unchanged`.
    pub fn set_pr_files(&self, pr: u64, files: &[(&str, &str)]) {
        let files = files.iter().map(|(f, s)| (f.to_string(), s.to_string())).collect();
        self.world().pr_files.insert(pr, files);
    }

    /// Adds commit `sha` on the default branch that touches `path` (its bytes stay as they are)
    /// and, if given, is associated with pull request `associated_pr`. It becomes the newest
    /// commit, so add it after seeding the file.
    pub fn add_commit(&self, path: &str, sha: &str, associated_pr: Option<u64>) {
        let mut world = self.world();
        let branch = world.default_branch.clone();
        let parent = world.head(&branch).to_string();
        let tree = world.commits[&parent].tree.clone();
        let tree_sha = world.commits[&parent].tree_sha.clone();
        let commit = CommitObject {
            sha: sha.to_string(),
            parent: Some(parent),
            tree,
            tree_sha,
            touched: vec![path.to_string()],
            message: match associated_pr {
                Some(n) => format!("Change {path} (#{n})"),
                None => format!("Change {path}"),
            },
            author: "octocat".to_string(),
            date: now(),
            pulls: associated_pr.into_iter().collect(),
        };
        world.commits.insert(sha.to_string(), commit);
        world.branches.insert(branch, sha.to_string());
    }

    /// Seeds several files in one commit on `branch` (created from the default branch if
    /// missing), as another writer's single commit would.
    pub fn put_files(&self, branch: &str, files: &[(String, Vec<u8>)]) {
        self.world().seed_files(branch, files);
    }

    /// Another writer commits `files` on `branch` just before the next `method` request whose
    /// path ends with `path_suffix` is served: a head that moves between a run's read and its
    /// write.
    pub fn commit_before_next(&self, method: &str, path_suffix: &str, branch: &str, files: &[(String, Vec<u8>)]) {
        self.world().interleaved.push(Interleaved {
            method: method.to_ascii_uppercase(),
            suffix: path_suffix.to_string(),
            branch: branch.to_string(),
            files: files.to_vec(),
        });
    }

    /// The commits reachable from `branch`'s head by first parents, newest first.
    pub fn commits_on(&self, branch: &str) -> Vec<CommitInfo> {
        let world = self.world();
        let Some(head) = world.branches.get(branch) else {
            return Vec::new();
        };
        world
            .history(head)
            .into_iter()
            .map(|c| CommitInfo {
                sha: c.sha.clone(),
                parent: c.parent.clone(),
                message: c.message.clone(),
                touched: c.touched.clone(),
            })
            .collect()
    }

    /// Every path in `branch`'s head tree.
    pub fn tree_paths(&self, branch: &str) -> Vec<String> {
        let world = self.world();
        let Some(head) = world.branches.get(branch) else {
            return Vec::new();
        };
        world.commits[head].tree.keys().cloned().collect()
    }

    /// The commit `branch` points at.
    pub fn head_of(&self, branch: &str) -> Option<String> {
        self.world().branches.get(branch).cloned()
    }

    /// Adds `delay` to every answer from now on (about api.github.com's latency from a runner
    /// is 50 ms); requests are still served concurrently.
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.world().delay = delay;
    }

    /// GraphQL's `Blob.text` of a blob longer than `bytes` is cut there with `isTruncated: true`.
    pub fn set_blob_text_limit(&self, bytes: usize) {
        self.world().blob_text_limit = Some(bytes);
    }

    /// Read-only token (fork pull requests, Dependabot): every write answers
    /// 403 `Resource not accessible by integration`.
    pub fn set_read_only(&self, read_only: bool) {
        self.world().read_only = read_only;
    }

    /// The login the token acts as: author of comments it creates and of its commits.
    /// Default [`DEFAULT_IDENTITY`]; a login ending in `[bot]` gets `type: "Bot"`.
    pub fn set_identity(&self, login: &str) {
        self.world().identity = login.to_string();
    }

    /// Protects `branch` with a rule requiring pull requests: contents `PUT`s to it answer 409
    /// with a `repository-rule-violation-error`.
    pub fn protect_branch(&self, branch: &str) {
        self.world().protected.insert(branch.to_string());
    }

    /// The next successful `method` request whose path ends with `path_suffix` is applied but
    /// answered with `status` (such as 502): an ambiguous failure. Later ones are normal again.
    pub fn fail_once_after_applying(&self, method: &str, path_suffix: &str, status: u16) {
        self.world().faults.push(Fault {
            method: method.to_ascii_uppercase(),
            suffix: path_suffix.to_string(),
            status,
            apply: true,
            remaining: 1,
        });
    }

    /// The next `times` `method` requests whose path ends with `path_suffix` are answered with
    /// `status` and not applied.
    pub fn fail_next(&self, method: &str, path_suffix: &str, status: u16, times: usize) {
        self.world().faults.push(Fault {
            method: method.to_ascii_uppercase(),
            suffix: path_suffix.to_string(),
            status,
            apply: false,
            remaining: times,
        });
    }

    /// Every request received so far, in arrival order, with the answers given.
    pub fn requests(&self) -> Vec<Recorded> {
        self.world().log.iter().map(|e| e.recorded.clone()).collect()
    }

    /// The number of write requests (POST, PUT, PATCH, DELETE) received, whatever their answer.
    pub fn writes(&self) -> usize {
        self.world()
            .log
            .iter()
            .filter(|e| matches!(e.recorded.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
            .count()
    }

    /// The number of writes that changed the fake's state (including ones answered with an
    /// injected failure by [`FakeGitHub::fail_once_after_applying`]).
    pub fn applied_writes(&self) -> usize {
        self.world().applied_writes
    }

    /// Every conformance problem so far: requests that do not match the API description (method,
    /// path, query parameters, body), answers the fake gave that the description does not allow,
    /// requests the fake does not serve, and requests without a `User-Agent` (GitHub refuses
    /// those). Empty when all is well.
    pub fn violations(&self) -> Vec<String> {
        self.world().violations()
    }

    /// Panics listing every problem [`FakeGitHub::violations`] finds.
    pub fn assert_conformant(&self) {
        let violations = self.violations();
        if !violations.is_empty() {
            panic!(
                "{} conformance problem(s) with the GitHub API description:\n  - {}",
                violations.len(),
                violations.join("\n  - ")
            );
        }
    }
}

impl World {
    fn new(owner: &str, repo: &str, default_branch: &str, base_uri: &str) -> World {
        let mut world = World {
            api: OpenApi::github(),
            base_uri: base_uri.trim_end_matches('/').to_string(),
            owner: owner.to_string(),
            repo: repo.to_string(),
            default_branch: default_branch.to_string(),
            branches: BTreeMap::new(),
            commits: HashMap::new(),
            protected: BTreeSet::new(),
            comments: Vec::new(),
            next_comment_id: FIRST_COMMENT_ID,
            pr_files: BTreeMap::new(),
            read_only: false,
            identity: DEFAULT_IDENTITY.to_string(),
            faults: Vec::new(),
            interleaved: Vec::new(),
            log: Vec::new(),
            sequence: 0,
            applied_writes: 0,
            blobs: HashMap::new(),
            trees: HashMap::new(),
            delay: std::time::Duration::ZERO,
            blob_text_limit: None,
        };
        let empty_tree = world.register_tree(&BTreeMap::new());
        let root = CommitObject {
            sha: sha1_hex(format!("root {owner}/{repo}").as_bytes()),
            parent: None,
            tree: BTreeMap::new(),
            tree_sha: empty_tree,
            touched: Vec::new(),
            message: "Initial commit".to_string(),
            author: "octocat".to_string(),
            date: now(),
            pulls: Vec::new(),
        };
        world.branches.insert(default_branch.to_string(), root.sha.clone());
        world.commits.insert(root.sha.clone(), root);
        world
    }

    fn repo_api(&self) -> String {
        format!("{}/repos/{}/{}", self.base_uri, self.owner, self.repo)
    }

    fn repo_html(&self) -> String {
        format!("https://github.com/{}/{}", self.owner, self.repo)
    }

    fn head(&self, branch: &str) -> &str {
        &self.branches[branch]
    }

    /// Commits reachable from `sha` by first parents, newest first.
    fn history(&self, sha: &str) -> Vec<&CommitObject> {
        let mut out = Vec::new();
        let mut next = Some(sha.to_string());
        while let Some(sha) = next {
            let Some(commit) = self.commits.get(&sha) else { break };
            out.push(commit);
            next = commit.parent.clone();
        }
        out
    }

    /// Commits `content` (or a deletion) at `path` on an existing `branch`; returns the commit.
    fn commit(
        &mut self,
        branch: &str,
        path: &str,
        content: Option<Vec<u8>>,
        message: &str,
        author: &str,
        date: Option<String>,
    ) -> CommitObject {
        let parent = self.head(branch).to_string();
        let mut tree = self.commits[&parent].tree.clone();
        match content {
            Some(bytes) => tree.insert(path.to_string(), bytes),
            None => tree.remove(path),
        };
        self.sequence += 1;
        let tree_sha = self.register_tree(&tree);
        let sha = sha1_hex(format!("commit {}\n{parent}\n{message}\n{tree_sha}", self.sequence).as_bytes());
        let commit = CommitObject {
            sha: sha.clone(),
            parent: Some(parent),
            tree,
            tree_sha,
            touched: vec![path.to_string()],
            message: message.to_string(),
            author: author.to_string(),
            date: date.unwrap_or_else(now),
            pulls: Vec::new(),
        };
        self.commits.insert(sha.clone(), commit.clone());
        self.branches.insert(branch.to_string(), sha);
        commit
    }

    /// Stores `files` (paths from a tree's root) as git does: each blob, each directory's tree
    /// and the root tree, by their git ids; returns the root tree's id. Ids are git's own (a
    /// tree object is `<mode> <name>\0<20-byte id>` per entry, sorted as git sorts them), so
    /// two trees have one id exactly when they hold the same files.
    fn register_tree(&mut self, files: &BTreeMap<String, Vec<u8>>) -> String {
        let mut blobs: Vec<(String, String)> = Vec::new();
        let mut dirs: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        let mut flat: BTreeMap<String, String> = BTreeMap::new();
        for (path, bytes) in files {
            let sha = git_blob_sha(bytes);
            self.blobs.entry(sha.clone()).or_insert_with(|| bytes.clone());
            flat.insert(path.clone(), sha.clone());
            match path.split_once('/') {
                Some((dir, rest)) => {
                    dirs.entry(dir.to_string())
                        .or_default()
                        .insert(rest.to_string(), bytes.clone());
                }
                None => blobs.push((path.clone(), sha)),
            }
        }
        // git sorts a directory's name as if it ended in `/`.
        let mut entries: Vec<(String, &str, String, String)> = blobs
            .into_iter()
            .map(|(name, sha)| (name.clone(), "100644", name, sha))
            .collect();
        for (name, sub) in dirs {
            let sha = self.register_tree(&sub);
            entries.push((format!("{name}/"), "40000", name, sha));
        }
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut body = Vec::new();
        for (_, mode, name, sha) in &entries {
            body.extend_from_slice(format!("{mode} {name}\0").as_bytes());
            body.extend((0..20).map(|i| u8::from_str_radix(&sha[2 * i..2 * i + 2], 16).expect("hex")));
        }
        let mut object = format!("tree {}\0", body.len()).into_bytes();
        object.extend_from_slice(&body);
        let sha = sha1_hex(&object);
        self.trees.insert(sha.clone(), flat);
        sha
    }

    /// The files of a stored tree, by path from its root.
    fn tree_files(&self, sha: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let flat = self.trees.get(sha)?;
        Some(flat.iter().map(|(p, b)| (p.clone(), self.blobs[b].clone())).collect())
    }

    /// Makes a commit of `tree` on `parent` and moves `branch` to it.
    fn commit_tree(
        &mut self,
        branch: &str,
        parent: Option<String>,
        tree: BTreeMap<String, Vec<u8>>,
        touched: Vec<String>,
        message: &str,
        author: &str,
    ) -> CommitObject {
        let commit = self.new_commit(parent, tree, touched, message, author);
        self.branches.insert(branch.to_string(), commit.sha.clone());
        commit
    }

    fn new_commit(
        &mut self,
        parent: Option<String>,
        tree: BTreeMap<String, Vec<u8>>,
        touched: Vec<String>,
        message: &str,
        author: &str,
    ) -> CommitObject {
        self.sequence += 1;
        let tree_sha = self.register_tree(&tree);
        let sha = sha1_hex(
            format!(
                "commit {}\n{}\n{message}\n{tree_sha}",
                self.sequence,
                parent.as_deref().unwrap_or("")
            )
            .as_bytes(),
        );
        let commit = CommitObject {
            sha: sha.clone(),
            parent,
            tree,
            tree_sha,
            touched,
            message: message.to_string(),
            author: author.to_string(),
            date: now(),
            pulls: Vec::new(),
        };
        self.commits.insert(sha, commit.clone());
        commit
    }

    fn add_comment(&mut self, issue: u64, author: &str, body: &str) -> u64 {
        let id = self.next_comment_id;
        self.next_comment_id += 1;
        let at = now();
        self.comments.push(StoredComment {
            id,
            issue,
            author: author.to_string(),
            body: body.to_string(),
            created_at: at.clone(),
            updated_at: at,
        });
        id
    }

    // ----- request handling -------------------------------------------------------------------

    fn handle(&mut self, req: &Incoming) -> Reply {
        if !req.user_agent {
            // GitHub's front end refuses these before anything else, in plain text.
            return Reply {
                status: 403,
                body: None,
                text: Some(
                    "Request forbidden by administrative rules. Please make sure your request has a User-Agent \
                     header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). \
                     Check https://developer.github.com for other possible causes.\n"
                        .to_string(),
                ),
                headers: Vec::new(),
                kind: Kind::Real("basic-error"),
                applied: false,
                problems: Vec::new(),
            };
        }
        if !req.authorized {
            return self
                .error(req, 401, "Requires authentication")
                .kind(Kind::Real("basic-error"));
        }
        if let Some(i) = self.fault_index(req, false) {
            let status = self.take_fault(i);
            return self.injected(req, status);
        }
        if let Some(i) = self
            .interleaved
            .iter()
            .position(|c| c.method == req.method && req.path.ends_with(&c.suffix))
        {
            let theirs = self.interleaved.remove(i);
            self.seed_files(&theirs.branch, &theirs.files);
        }
        if req.is_write() && self.read_only && self.api.operation_template(&req.method, &req.path).is_some() {
            return self
                .error(req, 403, "Resource not accessible by integration")
                .kind(Kind::Real("basic-error"));
        }
        if req.body_not_json {
            return self
                .error(req, 400, "Problems parsing JSON")
                .kind(Kind::Real("basic-error"));
        }
        let reply = self.route(req);
        if reply.applied {
            self.applied_writes += 1;
        }
        if (200..300).contains(&reply.status) {
            if let Some(i) = self.fault_index(req, true) {
                let status = self.take_fault(i);
                return self.injected(req, status);
            }
        }
        reply
    }

    /// One commit of `files` on `branch` (created from the default branch if missing).
    fn seed_files(&mut self, branch: &str, files: &[(String, Vec<u8>)]) {
        if !self.branches.contains_key(branch) {
            let head = self.head(&self.default_branch.clone()).to_string();
            self.branches.insert(branch.to_string(), head);
        }
        let parent = self.head(branch).to_string();
        let mut tree = self.commits[&parent].tree.clone();
        for (path, bytes) in files {
            tree.insert(path.clone(), bytes.clone());
        }
        let touched = files.iter().map(|(p, _)| p.clone()).collect();
        self.commit_tree(branch, Some(parent), tree, touched, "Seed files", "test-seed");
    }

    fn fault_index(&self, req: &Incoming, apply: bool) -> Option<usize> {
        self.faults.iter().position(|f| {
            f.apply == apply && f.remaining > 0 && f.method == req.method && req.path.ends_with(&f.suffix)
        })
    }

    fn take_fault(&mut self, i: usize) -> u16 {
        let fault = &mut self.faults[i];
        fault.remaining -= 1;
        let status = fault.status;
        if fault.remaining == 0 {
            self.faults.remove(i);
        }
        status
    }

    fn injected(&self, req: &Incoming, status: u16) -> Reply {
        let message = match status {
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            422 => "Unprocessable Entity",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Gateway Timeout",
            _ => "Server Error",
        };
        self.error(req, status, message).kind(Kind::Injected)
    }

    /// A GitHub error body: `message`, the operation's `documentation_url`, and `status` as a
    /// string, as GitHub has sent since 2024.
    fn error(&self, req: &Incoming, status: u16, message: &str) -> Reply {
        Reply::json(
            status,
            json!({
                "message": message,
                "documentation_url": self.doc_url(req),
                "status": status.to_string(),
            }),
        )
    }

    fn doc_url(&self, req: &Incoming) -> String {
        self.api
            .documentation_url(&req.method, &req.path)
            .unwrap_or_else(|| REST_DOCS.to_string())
    }

    fn unexpected(&self, req: &Incoming) -> Reply {
        self.error(req, 404, "Not Found").kind(Kind::Unexpected)
    }

    /// 422 with the request-body problems, as GitHub answers a body its schema rejects.
    fn invalid_body(&self, req: &Incoming) -> Option<Reply> {
        let problems = self.api.check_request(&req.method, &req.path, &[], req.body.as_ref());
        if problems.is_empty() {
            return None;
        }
        let detail: Vec<String> = problems
            .iter()
            .map(|p| {
                p.split_once(": ")
                    .map(|(_, rest)| rest.to_string())
                    .unwrap_or_else(|| p.clone())
            })
            .collect();
        Some(self.error(req, 422, &format!("Invalid request.\n\n{}", detail.join("\n"))))
    }

    fn route(&mut self, req: &Incoming) -> Reply {
        let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        if req.method == "POST" && segments == ["graphql"] {
            let (body, problems) = graphql::answer(req.body.as_ref(), self);
            let mut reply = Reply::json(200, body).kind(Kind::GraphQl);
            reply.problems = problems;
            return reply;
        }
        if req.method == "GET" && segments == ["user"] {
            // `GET /user` is not open to GitHub App installation tokens such as GITHUB_TOKEN.
            return self.error(req, 403, "Resource not accessible by integration");
        }
        if segments.len() < 3
            || segments[0] != "repos"
            || !segments[1].eq_ignore_ascii_case(&self.owner)
            || !segments[2].eq_ignore_ascii_case(&self.repo)
        {
            return self.unexpected(req);
        }
        let rest = &segments[3..];
        let method = req.method.as_str();
        match (method, rest) {
            ("GET", []) => self.get_repository(),
            ("GET", ["git", "ref", "heads", ..]) if rest.len() > 3 => self.get_ref(req, &rest[3..].join("/")),
            ("GET", ["git", "ref", ..]) if rest.len() > 2 => self.error(req, 404, "Not Found"),
            ("POST", ["git", "refs"]) => self.create_ref(req),
            ("PATCH", ["git", "refs", "heads", ..]) if rest.len() > 3 => self.update_ref(req, &rest[3..].join("/")),
            ("POST", ["git", "trees"]) => self.create_tree(req),
            ("POST", ["git", "commits"]) => self.create_commit(req),
            ("POST", ["git", "blobs"]) => self.create_blob(req),
            ("GET", ["contents", ..]) if rest.len() > 1 => self.get_contents(req, &rest[1..].join("/")),
            ("PUT", ["contents", ..]) if rest.len() > 1 => self.put_contents(req, &rest[1..].join("/")),
            ("GET", ["issues", n, "comments"]) => match n.parse() {
                Ok(n) => self.list_comments(req, n),
                Err(_) => self.error(req, 404, "Not Found"),
            },
            ("POST", ["issues", n, "comments"]) => match n.parse() {
                Ok(n) => self.create_comment(req, n),
                Err(_) => self.error(req, 404, "Not Found").kind(Kind::Real("basic-error")),
            },
            ("PATCH", ["issues", "comments", id]) => self.update_comment(req, id),
            ("DELETE", ["issues", "comments", id]) => self.delete_comment(req, id),
            ("GET", ["pulls", n, "files"]) => self.list_pr_files(req, n),
            ("GET", ["commits"]) => self.list_commits(req),
            ("GET", ["commits", sha, "pulls"]) => self.commit_pulls(req, sha),
            _ => self.unexpected(req),
        }
    }

    fn get_repository(&self) -> Reply {
        let mut repo = self.example("full-repository-default-response");
        repo["id"] = json!(1_296_269);
        repo["name"] = json!(self.repo);
        repo["full_name"] = json!(format!("{}/{}", self.owner, self.repo));
        repo["owner"] = self.user(&self.owner);
        repo["default_branch"] = json!(self.default_branch);
        // Upstream's example lacks `language`, which `full-repository` requires.
        repo["language"] = Value::Null;
        if repo["source"].is_object() && repo["source"].get("language").is_none() {
            repo["source"]["language"] = Value::Null;
        }
        if repo["permissions"].is_object() {
            repo["permissions"]["push"] = json!(!self.read_only);
            repo["permissions"]["admin"] = json!(false);
        }
        Reply::json(200, repo)
    }

    fn git_ref(&self, branch: &str) -> Value {
        let sha = self.head(branch);
        let mut r = self.example("git-ref");
        r["ref"] = json!(format!("refs/heads/{branch}"));
        r["node_id"] = json!(STANDARD.encode(format!("REF_{}/{}:refs/heads/{branch}", self.owner, self.repo)));
        r["url"] = json!(format!(
            "{}/git/refs/heads/{}",
            self.repo_api(),
            percent_encode_query(branch)
        ));
        r["object"] = json!({
            "type": "commit",
            "sha": sha,
            "url": format!("{}/git/commits/{sha}", self.repo_api()),
        });
        r
    }

    fn get_ref(&self, req: &Incoming, branch: &str) -> Reply {
        if self.branches.contains_key(branch) {
            Reply::json(200, self.git_ref(branch))
        } else {
            self.error(req, 404, "Not Found")
        }
    }

    fn create_ref(&mut self, req: &Incoming) -> Reply {
        if let Some(reply) = self.invalid_body(req) {
            return reply;
        }
        let body = req.body.clone().unwrap_or_default();
        let name = body["ref"].as_str().unwrap_or_default();
        let sha = body["sha"].as_str().unwrap_or_default();
        if !name.starts_with("refs/") || name.matches('/').count() < 2 {
            return self.error(
                req,
                422,
                "Reference name must start with 'refs/' and have at least two slashes.",
            );
        }
        let Some(branch) = name.strip_prefix("refs/heads/") else {
            // Tags and other refs are not modelled.
            return self.unexpected(req);
        };
        if !self.commits.contains_key(sha) {
            return self.error(req, 422, "Object does not exist");
        }
        if self.branches.contains_key(branch) {
            return self.error(req, 422, "Reference already exists");
        }
        self.branches.insert(branch.to_string(), sha.to_string());
        let r = self.git_ref(branch);
        let location = r["url"].as_str().unwrap_or_default().to_string();
        Reply::json(201, r).header("Location", location).applied()
    }

    /// Resolves a `ref` query value: a branch (also as `refs/heads/x` or `heads/x`) or a commit sha.
    fn resolve_ref(&self, name: &str) -> Option<String> {
        let branch = name
            .strip_prefix("refs/heads/")
            .or_else(|| name.strip_prefix("heads/"))
            .unwrap_or(name);
        if let Some(sha) = self.branches.get(branch) {
            return Some(sha.clone());
        }
        self.commits.contains_key(name).then(|| name.to_string())
    }

    fn content_urls(&self, path: &str, at: &str) -> (String, String, String) {
        let encoded = percent_encode_query(path);
        (
            format!(
                "{}/contents/{encoded}?ref={}",
                self.repo_api(),
                percent_encode_query(at)
            ),
            format!("{}/blob/{at}/{encoded}", self.repo_html()),
            format!(
                "https://raw.githubusercontent.com/{}/{}/{at}/{encoded}",
                self.owner, self.repo
            ),
        )
    }

    fn content_file(&self, path: &str, bytes: &[u8], at: &str) -> Value {
        let sha = git_blob_sha(bytes);
        let (url, html_url, download_url) = self.content_urls(path, at);
        let git_url = format!("{}/git/blobs/{sha}", self.repo_api());
        let mut file = self.example("content-file-response-if-content-is-a-file");
        file["type"] = json!("file");
        file["encoding"] = json!("base64");
        file["size"] = json!(bytes.len());
        file["name"] = json!(path.rsplit('/').next().unwrap_or(path));
        file["path"] = json!(path);
        file["content"] = json!(wrapped_base64(bytes));
        file["sha"] = json!(sha);
        file["url"] = json!(url);
        file["git_url"] = json!(git_url);
        file["html_url"] = json!(html_url);
        file["download_url"] = json!(download_url);
        file["_links"] = json!({ "git": git_url, "self": url, "html": html_url });
        file
    }

    fn get_contents(&self, req: &Incoming, path: &str) -> Reply {
        let path = path.trim_end_matches('/');
        let at = req.query("ref").unwrap_or(&self.default_branch).to_string();
        let Some(sha) = self.resolve_ref(&at) else {
            return self.error(req, 404, &format!("No commit found for the ref {at}"));
        };
        let tree = &self.commits[&sha].tree;
        if let Some(bytes) = tree.get(path) {
            return Reply::json(200, self.content_file(path, bytes, &at));
        }
        // A directory: its direct children.
        let prefix = format!("{path}/");
        let mut entries: BTreeMap<String, Value> = BTreeMap::new();
        for (file, bytes) in tree.range(prefix.clone()..) {
            let Some(rest) = file.strip_prefix(&prefix) else { break };
            let (name, is_dir) = match rest.split_once('/') {
                Some((dir, _)) => (dir, true),
                None => (rest, false),
            };
            let child = format!("{prefix}{name}");
            if entries.contains_key(&child) {
                continue;
            }
            let (url, html_url, download_url) = self.content_urls(&child, &at);
            let blob = if is_dir {
                sha1_hex(child.as_bytes())
            } else {
                git_blob_sha(bytes)
            };
            let git_url = format!(
                "{}/git/{}/{blob}",
                self.repo_api(),
                if is_dir { "trees" } else { "blobs" }
            );
            entries.insert(
                child.clone(),
                json!({
                    "type": if is_dir { "dir" } else { "file" },
                    "size": if is_dir { 0 } else { bytes.len() },
                    "name": name,
                    "path": child,
                    "sha": blob,
                    "url": url,
                    "git_url": git_url,
                    "html_url": html_url,
                    "download_url": if is_dir { Value::Null } else { json!(download_url) },
                    "_links": { "self": url, "git": git_url, "html": html_url },
                }),
            );
        }
        if entries.is_empty() {
            self.error(req, 404, "Not Found")
        } else {
            Reply::json(200, Value::Array(entries.into_values().collect()))
        }
    }

    fn put_contents(&mut self, req: &Incoming, path: &str) -> Reply {
        if let Some(reply) = self.invalid_body(req) {
            return reply;
        }
        let body = req.body.clone().unwrap_or_default();
        let branch = body["branch"].as_str().unwrap_or(&self.default_branch).to_string();
        if !self.branches.contains_key(&branch) {
            return self.error(req, 404, &format!("Branch {branch} not found"));
        }
        if self.protected.contains(&branch) {
            return self.error(
                req,
                409,
                "Repository rule violations found\n\nChanges must be made through a pull request.\n\n",
            );
        }
        let encoded: String = body["content"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let Ok(bytes) = STANDARD.decode(&encoded).or_else(|_| STANDARD_NO_PAD.decode(&encoded)) else {
            return self.error(req, 422, "content is not valid Base64");
        };
        let current = self.commits[self.head(&branch)].tree.get(path).map(|b| git_blob_sha(b));
        let given = body["sha"].as_str();
        let created = match (current.as_deref(), given) {
            (None, None) => true,
            (Some(_), None) => return self.error(req, 422, "Invalid request.\n\n\"sha\" wasn't supplied."),
            (Some(now), Some(given)) if now == given => false,
            (_, Some(given)) => return self.error(req, 409, &format!("{path} does not match {given}")),
        };
        let person = |key: &str| {
            let who = &body[key];
            who["name"].as_str().map(|name| {
                (
                    name.to_string(),
                    who["email"].as_str().unwrap_or_default().to_string(),
                    who["date"].as_str().map(str::to_string),
                )
            })
        };
        let identity_email = format!("{}@users.noreply.github.com", self.identity);
        let committer = person("committer").unwrap_or((self.identity.clone(), identity_email, None));
        let author = person("author").unwrap_or_else(|| committer.clone());
        let message = body["message"].as_str().unwrap_or_default().to_string();
        let commit = self.commit(
            &branch,
            path,
            Some(bytes.clone()),
            &message,
            &author.0,
            author.2.clone(),
        );
        let parent = commit.parent.clone().unwrap_or_default();
        let content = self.content_file(path, &bytes, &branch);
        let mut answer = self.example(if created {
            "file-commit-example-for-creating-a-file"
        } else {
            "file-commit-example-for-updating-a-file"
        });
        for key in [
            "name",
            "path",
            "sha",
            "size",
            "url",
            "html_url",
            "git_url",
            "download_url",
            "type",
            "_links",
        ] {
            answer["content"][key] = content[key].clone();
        }
        let tree_sha = commit.tree_sha.clone();
        answer["commit"] = json!({
            "sha": commit.sha,
            "node_id": STANDARD.encode(format!("06:Commit{}", commit.sha)),
            "url": format!("{}/git/commits/{}", self.repo_api(), commit.sha),
            "html_url": format!("{}/commit/{}", self.repo_html(), commit.sha),
            "author": {
                "date": author.2.unwrap_or_else(|| commit.date.clone()),
                "name": author.0,
                "email": author.1,
            },
            "committer": {
                "date": committer.2.unwrap_or_else(|| commit.date.clone()),
                "name": committer.0,
                "email": committer.1,
            },
            "message": message,
            "tree": { "url": format!("{}/git/trees/{tree_sha}", self.repo_api()), "sha": tree_sha },
            "parents": [{
                "url": format!("{}/git/commits/{parent}", self.repo_api()),
                "html_url": format!("{}/commit/{parent}", self.repo_html()),
                "sha": parent,
            }],
            "verification": {
                "verified": false,
                "reason": "unsigned",
                "signature": null,
                "payload": null,
                "verified_at": null,
            },
        });
        Reply::json(if created { 201 } else { 200 }, answer).applied()
    }

    /// `POST /git/trees`: `base_tree`'s files (none without it), then each `tree` entry: a
    /// directory by tree id replaces what was at its path, then files by `content` or blob id
    /// (`sha: null` deletes one that exists), as the API description says.
    fn create_tree(&mut self, req: &Incoming) -> Reply {
        if let Some(reply) = self.invalid_body(req) {
            return reply;
        }
        let body = req.body.clone().unwrap_or_default();
        let mut files = match body.get("base_tree").and_then(Value::as_str) {
            Some(base) => match self.tree_files(base) {
                Some(files) => files,
                None => return self.error(req, 422, "base_tree is not a valid tree oid"),
            },
            None => BTreeMap::new(),
        };
        let items = body["tree"].as_array().cloned().unwrap_or_default();
        let (dirs, rest): (Vec<Value>, Vec<Value>) = items.into_iter().partition(|e| e["type"] == "tree");
        for entry in dirs.iter().chain(&rest) {
            let path = entry["path"].as_str().unwrap_or_default().trim_matches('/').to_string();
            let (kind, mode) = (
                entry["type"].as_str().unwrap_or_default(),
                entry["mode"].as_str().unwrap_or_default(),
            );
            if path.is_empty() {
                return self.error(req, 422, "tree.path is missing");
            }
            if entry.get("sha").is_some() && entry.get("content").is_some() {
                return self.error(req, 422, "Only one of sha or content may be given");
            }
            let fitting = matches!(
                (kind, mode),
                ("blob", "100644" | "100755" | "120000") | ("tree", "040000")
            );
            if !fitting {
                return self.error(req, 422, &format!("tree.mode {mode} does not fit tree.type {kind}"));
            }
            let prefix = format!("{path}/");
            match (kind, entry.get("sha"), entry.get("content").and_then(Value::as_str)) {
                ("tree", Some(Value::String(sha)), None) => {
                    let Some(sub) = self.tree_files(sha) else {
                        return self.error(req, 422, &format!("tree.sha {sha} is not a valid tree"));
                    };
                    files.retain(|p, _| p != &path && !p.starts_with(&prefix));
                    files.extend(sub.into_iter().map(|(p, b)| (format!("{prefix}{p}"), b)));
                }
                ("blob", _, Some(content)) => {
                    files.retain(|p, _| !p.starts_with(&prefix));
                    files.insert(path, content.as_bytes().to_vec());
                }
                ("blob", Some(Value::String(sha)), None) => {
                    let Some(bytes) = self.blobs.get(sha).cloned() else {
                        return self.error(req, 422, &format!("tree.sha {sha} is not a valid blob"));
                    };
                    files.retain(|p, _| !p.starts_with(&prefix));
                    files.insert(path, bytes);
                }
                (_, Some(Value::Null), None) => {
                    let before = files.len();
                    files.retain(|p, _| p != &path && !p.starts_with(&prefix));
                    if files.len() == before {
                        return self.error(req, 422, &format!("{path} does not exist, so it cannot be deleted"));
                    }
                }
                _ => return self.error(req, 422, "tree entries need a sha or content"),
            }
        }
        let sha = self.register_tree(&files);
        let url = format!("{}/git/trees/{sha}", self.repo_api());
        // The answer lists the new tree's own entries, directories as trees.
        let mut top: BTreeMap<String, Value> = BTreeMap::new();
        for (path, bytes) in &files {
            match path.split_once('/') {
                Some((dir, _)) => {
                    if !top.contains_key(dir) {
                        let prefix = format!("{dir}/");
                        let sub: BTreeMap<String, Vec<u8>> = files
                            .iter()
                            .filter_map(|(p, b)| p.strip_prefix(&prefix).map(|r| (r.to_string(), b.clone())))
                            .collect();
                        let sub_sha = self.register_tree(&sub);
                        top.insert(
                            dir.to_string(),
                            json!({ "path": dir, "mode": "040000", "type": "tree", "sha": sub_sha,
                                    "url": format!("{}/git/trees/{sub_sha}", self.repo_api()) }),
                        );
                    }
                }
                None => {
                    let blob = git_blob_sha(bytes);
                    top.insert(
                        path.clone(),
                        json!({ "path": path, "mode": "100644", "type": "blob", "sha": blob, "size": bytes.len(),
                                "url": format!("{}/git/blobs/{blob}", self.repo_api()) }),
                    );
                }
            }
        }
        Reply::json(
            201,
            json!({ "sha": sha, "url": url, "tree": top.into_values().collect::<Vec<_>>(), "truncated": false }),
        )
        .header("Location", url)
    }

    /// `POST /git/commits`: a commit of a stored tree on at most one parent (the fake keeps one
    /// parent per commit), on no branch until a ref is moved to it.
    fn create_commit(&mut self, req: &Incoming) -> Reply {
        if let Some(reply) = self.invalid_body(req) {
            return reply;
        }
        let body = req.body.clone().unwrap_or_default();
        let tree_sha = body["tree"].as_str().unwrap_or_default().to_string();
        let Some(tree) = self.tree_files(&tree_sha) else {
            return self.error(req, 422, "Tree SHA does not exist");
        };
        let parents: Vec<String> = body["parents"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        if parents.len() > 1 {
            return self.unexpected(req);
        }
        let parent = parents.first().cloned();
        if let Some(p) = &parent {
            if !self.commits.contains_key(p) {
                return self.error(req, 422, "Parent SHA does not exist or is not a commit object");
            }
        }
        let before = parent
            .as_ref()
            .map(|p| self.commits[p].tree.clone())
            .unwrap_or_default();
        let touched: Vec<String> = before
            .keys()
            .chain(tree.keys())
            .filter(|p| before.get(*p) != tree.get(*p))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let message = body["message"].as_str().unwrap_or_default().to_string();
        let identity = self.identity.clone();
        let commit = self.new_commit(parent, tree, touched, &message, &identity);
        let api = self.repo_api();
        let mut v = self.example("git-commit");
        v["sha"] = json!(commit.sha);
        v["node_id"] = json!(STANDARD.encode(format!("06:Commit{}", commit.sha)));
        v["url"] = json!(format!("{api}/git/commits/{}", commit.sha));
        v["html_url"] = json!(format!("{}/commit/{}", self.repo_html(), commit.sha));
        for who in ["author", "committer"] {
            v[who] = json!({
                "name": identity,
                "email": format!("{identity}@users.noreply.github.com"),
                "date": commit.date,
            });
        }
        v["message"] = json!(message);
        v["tree"] = json!({ "sha": tree_sha, "url": format!("{api}/git/trees/{tree_sha}") });
        v["parents"] = json!(commit
            .parent
            .iter()
            .map(|p| json!({ "sha": p, "url": format!("{api}/git/commits/{p}"),
                             "html_url": format!("{}/commit/{p}", self.repo_html()) }))
            .collect::<Vec<_>>());
        let location = format!("{api}/git/commits/{}", commit.sha);
        Reply::json(201, v).header("Location", location)
    }

    /// `POST /git/blobs`.
    fn create_blob(&mut self, req: &Incoming) -> Reply {
        if let Some(reply) = self.invalid_body(req) {
            return reply;
        }
        let body = req.body.clone().unwrap_or_default();
        let content = body["content"].as_str().unwrap_or_default();
        let bytes = match body["encoding"].as_str().unwrap_or("utf-8") {
            "utf-8" => content.as_bytes().to_vec(),
            "base64" => match STANDARD.decode(content.split_whitespace().collect::<String>()) {
                Ok(bytes) => bytes,
                Err(_) => return self.error(req, 422, "content is not valid Base64"),
            },
            other => return self.error(req, 422, &format!("encoding {other} is not supported")),
        };
        let sha = git_blob_sha(&bytes);
        self.blobs.insert(sha.clone(), bytes);
        let url = format!("{}/git/blobs/{sha}", self.repo_api());
        Reply::json(201, json!({ "url": url, "sha": sha })).header("Location", url)
    }

    /// `PATCH /git/refs/heads/{branch}`: moves the branch to a commit; without `force`, only
    /// when the branch's head is among the commit's ancestors, else 422 as GitHub answers.
    fn update_ref(&mut self, req: &Incoming, branch: &str) -> Reply {
        if let Some(reply) = self.invalid_body(req) {
            return reply;
        }
        let body = req.body.clone().unwrap_or_default();
        let sha = body["sha"].as_str().unwrap_or_default().to_string();
        let Some(head) = self.branches.get(branch).cloned() else {
            return self.error(req, 422, "Reference does not exist");
        };
        if !self.commits.contains_key(&sha) {
            return self.error(req, 422, "Object does not exist");
        }
        if self.protected.contains(branch) {
            return self.error(
                req,
                422,
                &format!("Protected branch update failed for refs/heads/{branch}."),
            );
        }
        let force = body["force"].as_bool().unwrap_or(false);
        if !force && !self.history(&sha).iter().any(|c| c.sha == head) {
            return self.error(req, 422, "Update is not a fast forward");
        }
        self.branches.insert(branch.to_string(), sha);
        Reply::json(200, self.git_ref(branch)).applied()
    }

    fn comment_json(&self, c: &StoredComment) -> Value {
        let mut v = self.example("issue-comment");
        v["id"] = json!(c.id);
        v["node_id"] = json!(STANDARD.encode(format!("012:IssueComment{}", c.id)));
        v["url"] = json!(format!("{}/issues/comments/{}", self.repo_api(), c.id));
        v["html_url"] = json!(format!("{}/issues/{}#issuecomment-{}", self.repo_html(), c.issue, c.id));
        v["body"] = json!(c.body);
        v["user"] = self.user(&c.author);
        v["created_at"] = json!(c.created_at);
        v["updated_at"] = json!(c.updated_at);
        v["issue_url"] = json!(format!("{}/issues/{}", self.repo_api(), c.issue));
        v["author_association"] = json!(if c.author.ends_with("[bot]") {
            "NONE"
        } else {
            "COLLABORATOR"
        });
        v
    }

    fn list_comments(&self, req: &Incoming, issue: u64) -> Reply {
        let since = req.query("since");
        let items: Vec<Value> = self
            .comments
            .iter()
            .filter(|c| c.issue == issue && since.is_none_or(|s| c.updated_at.as_str() >= s))
            .map(|c| self.comment_json(c))
            .collect();
        self.paginated(req, items)
    }

    fn create_comment(&mut self, req: &Incoming, issue: u64) -> Reply {
        if let Some(reply) = self.invalid_body(req) {
            return reply;
        }
        let body = req
            .body
            .as_ref()
            .and_then(|b| b["body"].as_str())
            .unwrap_or_default()
            .to_string();
        if body.chars().count() > 65_536 {
            return self.body_too_long(req);
        }
        let identity = self.identity.clone();
        let id = self.add_comment(issue, &identity, &body);
        let comment = self.comment_json(self.comments.last().expect("just added"));
        Reply::json(201, comment)
            .header("Location", format!("{}/issues/comments/{id}", self.repo_api()))
            .applied()
    }

    fn update_comment(&mut self, req: &Incoming, id: &str) -> Reply {
        if let Some(reply) = self.invalid_body(req) {
            return reply;
        }
        let Some(index) = id
            .parse::<u64>()
            .ok()
            .and_then(|id| self.comments.iter().position(|c| c.id == id))
        else {
            return self.error(req, 404, "Not Found").kind(Kind::Real("basic-error"));
        };
        let body = req
            .body
            .as_ref()
            .and_then(|b| b["body"].as_str())
            .unwrap_or_default()
            .to_string();
        if body.chars().count() > 65_536 {
            return self.body_too_long(req);
        }
        self.comments[index].body = body;
        self.comments[index].updated_at = now();
        Reply::json(200, self.comment_json(&self.comments[index])).applied()
    }

    /// GitHub's answer to a comment body over 65,536 characters.
    fn body_too_long(&self, req: &Incoming) -> Reply {
        Reply::json(
            422,
            json!({
                "message": "Validation Failed",
                "errors": [{
                    "resource": "IssueComment",
                    "code": "custom",
                    "field": "body",
                    "message": "body is too long (maximum is 65536 characters)",
                }],
                "documentation_url": self.doc_url(req),
                "status": "422",
            }),
        )
    }

    fn delete_comment(&mut self, req: &Incoming, id: &str) -> Reply {
        let Some(index) = id
            .parse::<u64>()
            .ok()
            .and_then(|id| self.comments.iter().position(|c| c.id == id))
        else {
            return self.error(req, 404, "Not Found").kind(Kind::Real("basic-error"));
        };
        self.comments.remove(index);
        Reply::empty(204).applied()
    }

    fn list_pr_files(&self, req: &Incoming, n: &str) -> Reply {
        let Some(files) = n.parse::<u64>().ok().and_then(|n| self.pr_files.get(&n)) else {
            return self.error(req, 404, "Not Found").kind(Kind::Real("basic-error"));
        };
        let template = self.example("diff-entry-items")[0].clone();
        let head = self.head(&self.default_branch).to_string();
        let items = files
            .iter()
            .map(|(filename, status)| {
                let encoded = percent_encode_query(filename);
                let mut entry = template.clone();
                entry["sha"] = json!(sha1_hex(format!("{filename}:{status}").as_bytes()));
                entry["filename"] = json!(filename);
                entry["status"] = json!(status);
                entry["blob_url"] = json!(format!("{}/blob/{head}/{encoded}", self.repo_html()));
                entry["raw_url"] = json!(format!("{}/raw/{head}/{encoded}", self.repo_html()));
                entry["contents_url"] = json!(format!("{}/contents/{encoded}?ref={head}", self.repo_api()));
                entry
            })
            .collect();
        self.paginated(req, items)
    }

    fn commit_json(&self, c: &CommitObject) -> Value {
        let mut v = self.example("commit-items")[0].clone();
        let api = self.repo_api();
        v["url"] = json!(format!("{api}/commits/{}", c.sha));
        v["sha"] = json!(c.sha);
        v["node_id"] = json!(STANDARD.encode(format!("06:Commit{}", c.sha)));
        v["html_url"] = json!(format!("{}/commit/{}", self.repo_html(), c.sha));
        v["comments_url"] = json!(format!("{api}/commits/{}/comments", c.sha));
        v["commit"]["url"] = json!(format!("{api}/git/commits/{}", c.sha));
        v["commit"]["message"] = json!(c.message);
        for who in ["author", "committer"] {
            v["commit"][who]["name"] = json!(c.author);
            v["commit"][who]["email"] = json!(format!("{}@users.noreply.github.com", c.author));
            v["commit"][who]["date"] = json!(c.date);
        }
        let tree_sha = &c.tree_sha;
        v["commit"]["tree"] = json!({ "url": format!("{api}/git/trees/{tree_sha}"), "sha": tree_sha });
        v["author"] = self.user(&c.author);
        v["committer"] = self.user(&c.author);
        let parents: Vec<Value> = c
            .parent
            .iter()
            .map(|p| {
                json!({
                    "url": format!("{api}/commits/{p}"),
                    "html_url": format!("{}/commit/{p}", self.repo_html()),
                    "sha": p,
                })
            })
            .collect();
        v["parents"] = Value::Array(parents);
        v
    }

    fn list_commits(&self, req: &Incoming) -> Reply {
        let start = req.query("sha").unwrap_or(&self.default_branch).to_string();
        let Some(head) = self.resolve_ref(&start) else {
            return self.error(req, 404, "Not Found");
        };
        let items = self
            .touching(&head, req.query("path"))
            .into_iter()
            .map(|c| self.commit_json(c))
            .collect();
        self.paginated(req, items)
    }

    /// The commits reachable from `head` (newest first) that touched `path`, a file or a
    /// directory (all of them without a path), as `GET /commits?path=` and GraphQL's
    /// `Commit.history(path:)` list them.
    fn touching(&self, head: &str, path: Option<&str>) -> Vec<&CommitObject> {
        let path = path.map(|p| p.trim_matches('/').to_string());
        self.history(head)
            .into_iter()
            .filter(|c| match &path {
                None => true,
                Some(p) => c.touched.iter().any(|t| t == p || t.starts_with(&format!("{p}/"))),
            })
            .collect()
    }

    fn pull_json(&self, number: u64, commit: &CommitObject) -> Value {
        let mut pr = self.example("pull-request-simple-items")[0].clone();
        replace_strings(
            &mut pr,
            &[
                ("/pulls/1347", &format!("/pulls/{number}")),
                ("/pull/1347", &format!("/pull/{number}")),
                ("/issues/1347", &format!("/issues/{number}")),
                ("6dcb09b5b57875f334f61aebed695e2e4193db5e", &commit.sha),
            ],
        );
        pr["id"] = json!(1_000_000 + number);
        pr["node_id"] = json!(STANDARD.encode(format!("011:PullRequest{number}")));
        pr["number"] = json!(number);
        pr["state"] = json!("closed");
        pr["locked"] = json!(false);
        pr["active_lock_reason"] = Value::Null;
        pr["title"] = json!(commit.message);
        pr["merge_commit_sha"] = json!(commit.sha);
        // Upstream's example has a requested team without the `type` that `team` requires.
        pr["requested_teams"] = json!([]);
        pr["base"]["ref"] = json!(self.default_branch);
        pr["base"]["label"] = json!(format!("{}:{}", self.owner, self.default_branch));
        pr
    }

    fn commit_pulls(&self, req: &Incoming, sha: &str) -> Reply {
        let Some(commit) = self.commits.get(sha) else {
            return self
                .error(req, 422, &format!("No commit found for SHA: {sha}"))
                .kind(Kind::Real("validation-error"));
        };
        let items = commit.pulls.iter().map(|n| self.pull_json(*n, commit)).collect();
        self.paginated(req, items)
    }

    /// One page of `items` per `per_page` (default 30, at most 100) and `page` (from 1), with a
    /// `Link` header (`prev`, `next`, `last`, `first`, as GitHub orders them) when there is more
    /// than one page. Link URLs are this server's, keeping the request's other query parameters.
    fn paginated(&self, req: &Incoming, items: Vec<Value>) -> Reply {
        let per_page = req
            .query("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(30)
            .min(100);
        let page = req
            .query("page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        let last = items.len().div_ceil(per_page).max(1);
        let chunk: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
        let mut reply = Reply::json(200, Value::Array(chunk));
        let url = |p: usize| {
            let mut query: Vec<String> = req
                .query
                .iter()
                .filter(|(k, _)| k != "page")
                .map(|(k, v)| format!("{}={}", percent_encode_query(k), percent_encode_query(v)))
                .collect();
            query.push(format!("page={p}"));
            format!(
                "<{}{}?{}>",
                self.base_uri,
                percent_encode_query(&req.path),
                query.join("&")
            )
        };
        let mut links = Vec::new();
        if page > 1 {
            links.push(format!("{}; rel=\"prev\"", url((page - 1).min(last))));
        }
        if page < last {
            links.push(format!("{}; rel=\"next\"", url(page + 1)));
            links.push(format!("{}; rel=\"last\"", url(last)));
        }
        if page > 1 {
            links.push(format!("{}; rel=\"first\"", url(1)));
        }
        if !links.is_empty() {
            reply = reply.header("Link", links.join(", "));
        }
        reply
    }

    // ----- building blocks --------------------------------------------------------------------

    /// An example from the API description with its `octocat/Hello-World` URLs pointing here.
    fn example(&self, name: &str) -> Value {
        let mut v = self
            .api
            .example(name)
            .unwrap_or_else(|| panic!("the API description has no example {name}"));
        let full = format!("{}/{}", self.owner, self.repo);
        replace_strings(
            &mut v,
            &[
                ("octocat/Hello-World", &full),
                ("https://api.github.com", &self.base_uri),
            ],
        );
        v
    }

    /// A `simple-user` for `login`, shaped like the examples' `octocat`.
    fn user(&self, login: &str) -> Value {
        let mut user = self.example("issue-comment")["user"].clone();
        let encoded = percent_encode_query(login);
        replace_strings(&mut user, &[("octocat", &encoded)]);
        let bot = login.ends_with("[bot]");
        let id = if login == DEFAULT_IDENTITY {
            41_898_282
        } else {
            u64::from_str_radix(&sha1_hex(login.as_bytes())[..7], 16).unwrap_or(1)
        };
        user["login"] = json!(login);
        user["id"] = json!(id);
        user["node_id"] = json!(STANDARD.encode(format!("{}{id}", if bot { "03:Bot" } else { "04:User" })));
        user["type"] = json!(if bot { "Bot" } else { "User" });
        if bot {
            user["html_url"] = json!(format!("https://github.com/apps/{}", login.trim_end_matches("[bot]")));
        }
        user
    }

    fn template(&self, reply: Reply) -> ResponseTemplate {
        // Each request spends one of its resource's budget, as GitHub counts REST calls; a
        // GraphQL query costs at least one point of its own budget.
        let resource = if reply.kind == Kind::GraphQl { "graphql" } else { "core" };
        let used = self
            .log
            .iter()
            .filter(|e| (e.kind == Kind::GraphQl) == (reply.kind == Kind::GraphQl))
            .count()
            .min(5000);
        let mut t = ResponseTemplate::new(reply.status)
            .insert_header("x-github-media-type", "github.v3; format=json")
            .insert_header("x-ratelimit-limit", "5000")
            .insert_header("x-ratelimit-remaining", (5000 - used).to_string().as_str())
            .insert_header("x-ratelimit-used", used.to_string().as_str())
            .insert_header("x-ratelimit-reset", "4102444800")
            .insert_header("x-ratelimit-resource", resource)
            .insert_header("x-github-request-id", format!("FAKE:{}", self.log.len()).as_str());
        for (name, value) in &reply.headers {
            t = t.insert_header(name.as_str(), value.as_str());
        }
        if let Some(body) = &reply.body {
            t = t.set_body_raw(
                serde_json::to_vec(body).expect("JSON"),
                "application/json; charset=utf-8",
            );
        } else if let Some(text) = &reply.text {
            t = t.set_body_raw(text.clone().into_bytes(), "text/plain; charset=utf-8");
        }
        t
    }

    fn record(&mut self, req: Incoming, reply: &Reply) {
        self.log.push(Entry {
            problems: reply.problems.clone(),
            recorded: Recorded {
                method: req.method,
                path: req.path,
                query: req.query,
                body: req.body,
                status: reply.status,
                response_body: reply.body.clone(),
            },
            kind: reply.kind,
            user_agent: req.user_agent,
            body_not_json: req.body_not_json,
        });
    }

    fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, entry) in self.log.iter().enumerate() {
            let r = &entry.recorded;
            let query = if r.query.is_empty() {
                String::new()
            } else {
                let pairs: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("?{}", pairs.join("&"))
            };
            let label = format!("request #{i} {} {}{query} -> {}", r.method, r.path, r.status);
            if !entry.user_agent {
                out.push(format!(
                    "{label}: no User-Agent header (GitHub refuses such requests with 403)"
                ));
            }
            if entry.body_not_json {
                out.push(format!("{label}: the request body is not JSON"));
            }
            if entry.kind == Kind::GraphQl {
                out.extend(entry.problems.iter().map(|p| format!("{label}: {p}")));
                continue;
            }
            let known = self.api.operation_template(&r.method, &r.path).is_some();
            if entry.kind == Kind::Unexpected {
                out.push(format!("{label}: unexpected request (the fake does not serve it)"));
            }
            if known || entry.kind != Kind::Unexpected {
                let body = if entry.body_not_json { None } else { r.body.as_ref() };
                for v in self.api.check_request(&r.method, &r.path, &r.query, body) {
                    out.push(format!("{label}: {v}"));
                }
            }
            let response = r.response_body.as_ref();
            let problems = match entry.kind {
                Kind::Unexpected | Kind::GraphQl => Vec::new(),
                Kind::Documented => self.api.check_response(&r.method, &r.path, r.status, response),
                Kind::Real(schema) => {
                    let strict = self.api.check_response(&r.method, &r.path, r.status, response);
                    if strict.iter().any(|p| p.contains("is not documented")) {
                        response
                            .map(|b| self.api.validate_component(schema, b))
                            .unwrap_or_default()
                    } else {
                        strict
                    }
                }
                Kind::Injected => response
                    .map(|b| self.api.validate_component("basic-error", b))
                    .unwrap_or_default(),
            };
            for p in problems {
                out.push(format!("{label}: the fake's answer: {p}"));
            }
        }
        out
    }
}

/// GraphQL fields answered from the fake's repository: the schema facts of [`super::graphql`].
impl graphql::Resolver for World {
    fn resolve(&self, node: &Node, field: &str, args: &serde_json::Map<String, Value>) -> Result<Resolved, GqlError> {
        let text = |name: &str| args.get(name).and_then(Value::as_str);
        match (node, field) {
            (Node::Query, "repository") => {
                let (owner, name) = (text("owner").unwrap_or_default(), text("name").unwrap_or_default());
                if owner.eq_ignore_ascii_case(&self.owner) && name.eq_ignore_ascii_case(&self.repo) {
                    Ok(Resolved::Node(Node::Repository))
                } else {
                    Err(GqlError::new(
                        format!("Could not resolve to a Repository with the name '{owner}/{name}'."),
                        Some("NOT_FOUND"),
                    ))
                }
            }
            (Node::Repository, "nameWithOwner") => Ok(Resolved::Leaf(json!(format!("{}/{}", self.owner, self.repo)))),
            (Node::Repository, "object") => {
                // A revision as git reads it: `HEAD`, a branch (`main`, `heads/main`,
                // `refs/heads/main`) or a commit sha; anything else finds no object. By `oid`,
                // any object: a commit, a tree or a blob.
                let node = match (text("expression"), text("oid")) {
                    (Some("HEAD"), _) => Some(Node::Commit(self.head(&self.default_branch).to_string())),
                    (Some(expression), _) => self.resolve_ref(expression).map(Node::Commit),
                    (None, Some(oid)) if self.commits.contains_key(oid) => Some(Node::Commit(oid.to_string())),
                    (None, Some(oid)) if self.trees.contains_key(oid) => Some(Node::Tree(oid.to_string())),
                    (None, Some(oid)) if self.blobs.contains_key(oid) => Some(Node::Blob(oid.to_string())),
                    _ => None,
                };
                Ok(node.map_or(Resolved::Null, Resolved::Node))
            }
            (Node::Commit(sha), "oid") => Ok(Resolved::Leaf(json!(sha))),
            (Node::Commit(sha), "tree") => Ok(Resolved::Node(Node::Tree(self.commits[sha].tree_sha.clone()))),
            (Node::Commit(sha), "file") => {
                let path = text("path").unwrap_or_default().trim_matches('/').to_string();
                let root = self.commits[sha].tree_sha.clone();
                Ok(self.entry_at(&root, &path).map_or(Resolved::Null, Resolved::Node))
            }
            (Node::Tree(sha), "oid") | (Node::Blob(sha), "oid") => Ok(Resolved::Leaf(json!(sha))),
            (Node::Tree(sha), "entries") => {
                let flat = &self.trees[sha];
                let mut names: Vec<String> = flat
                    .keys()
                    .map(|p| p.split('/').next().unwrap_or(p).to_string())
                    .collect();
                names.dedup();
                Ok(Resolved::List(
                    names.iter().filter_map(|n| self.entry_at(sha, n)).collect(),
                ))
            }
            (Node::TreeEntry { name, .. }, "name") => Ok(Resolved::Leaf(json!(name))),
            (Node::TreeEntry { path, .. }, "path") => Ok(Resolved::Leaf(json!(path))),
            (Node::TreeEntry { oid, .. }, "oid") => Ok(Resolved::Leaf(json!(oid))),
            (Node::TreeEntry { tree, .. }, "type") => Ok(Resolved::Leaf(json!(if *tree { "tree" } else { "blob" }))),
            // GraphQL gives the mode as a number: 0o100644 and 0o40000.
            (Node::TreeEntry { tree, .. }, "mode") => Ok(Resolved::Leaf(json!(if *tree { 16384 } else { 33188 }))),
            (Node::TreeEntry { tree, oid, .. }, "size") => {
                Ok(Resolved::Leaf(json!(if *tree { 0 } else { self.blobs[oid].len() })))
            }
            (Node::TreeEntry { tree, oid, .. }, "object") => Ok(Resolved::Node(if *tree {
                Node::Tree(oid.clone())
            } else {
                Node::Blob(oid.clone())
            })),
            (Node::Blob(sha), "byteSize") => Ok(Resolved::Leaf(json!(self.blobs[sha].len()))),
            (Node::Blob(sha), "isBinary") => Ok(Resolved::Leaf(json!(std::str::from_utf8(&self.blobs[sha]).is_err()))),
            (Node::Blob(sha), "isTruncated") => {
                let bytes = &self.blobs[sha];
                Ok(Resolved::Leaf(json!(self
                    .blob_text_limit
                    .is_some_and(|l| bytes.len() > l))))
            }
            (Node::Blob(sha), "text") => {
                let bytes = &self.blobs[sha];
                let Ok(text) = std::str::from_utf8(bytes) else {
                    return Ok(Resolved::Null);
                };
                let mut end = self.blob_text_limit.unwrap_or(text.len()).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                Ok(Resolved::Leaf(json!(&text[..end])))
            }
            (Node::Commit(sha), "history") => {
                let commits = self
                    .touching(sha, text("path"))
                    .into_iter()
                    .map(|c| Node::Commit(c.sha.clone()))
                    .collect();
                Ok(Resolved::Node(Node::Connection(
                    "CommitHistoryConnection",
                    graphql::page(commits, args),
                )))
            }
            (Node::Commit(sha), "associatedPullRequests") => {
                let pulls = self.commits[sha].pulls.iter().map(|n| Node::PullRequest(*n)).collect();
                Ok(Resolved::Node(Node::Connection(
                    "PullRequestConnection",
                    graphql::page(pulls, args),
                )))
            }
            (Node::PullRequest(number), "number") => Ok(Resolved::Leaf(json!(number))),
            (node, field) => Err(GqlError::new(
                format!("the fake GitHub does not answer `{field}` on {node:?}"),
                None,
            )),
        }
    }
}

impl World {
    /// The entry at `path` in the tree `root`: a file, a directory, or nothing.
    fn entry_at(&self, root: &str, path: &str) -> Option<Node> {
        let flat = self.trees.get(root)?;
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        if let Some(blob) = flat.get(path) {
            return Some(Node::TreeEntry {
                name,
                path: path.to_string(),
                oid: blob.clone(),
                tree: false,
            });
        }
        let prefix = format!("{path}/");
        let sub: BTreeMap<String, String> = flat
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, b)| (p[prefix.len()..].to_string(), b.clone()))
            .collect();
        if sub.is_empty() {
            return None;
        }
        // The directory's tree was stored with the root's: find it by its files.
        let oid = self
            .trees
            .iter()
            .find(|(_, files)| **files == sub)
            .map(|(sha, _)| sha.clone())?;
        Some(Node::TreeEntry {
            name,
            path: path.to_string(),
            oid,
            tree: true,
        })
    }
}

/// Replaces substrings in every string inside `value`.
fn replace_strings(value: &mut Value, pairs: &[(&str, &str)]) {
    match value {
        Value::String(s) => {
            for (from, to) in pairs {
                if s.contains(from) {
                    *s = s.replace(from, to);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_strings(v, pairs)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_strings(v, pairs)),
        _ => {}
    }
}

/// Base64 as the contents API sends it: lines of 60 characters, each ending in `\n`.
pub fn wrapped_base64(bytes: &[u8]) -> String {
    let encoded = STANDARD.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 60 + 1);
    for line in encoded.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
