//! A stateful local fake of LaunchDarkly's REST API for the two operations flagramp's
//! LaunchDarkly provider uses: `GET` and semantic-patch `PATCH /api/v2/flags/{project}/{key}`.
//!
//! One catch-all [`wiremock::Respond`] serves every request from a shared [`World`] behind a
//! mutex. Flags are whole `FeatureFlag` documents (shaped like the example in LaunchDarkly's own
//! API description), with every environment of the project; `GET ?env=` filters them as
//! LaunchDarkly does. A `PATCH` applies `turnFlagOn`, `turnFlagOff` and
//! `updateFallthroughVariationOrRollout` atomically and bumps `_version` and the environment's
//! `version`.
//!
//! Checked on every request, as LaunchDarkly would (or stricter): the `Authorization` header is
//! exactly the token (else 401), `LD-API-Version` is present, a `PATCH` is a semantic patch
//! (`Content-Type: application/json; domain-model=launchdarkly.semanticpatch`) whose body
//! validates against `flagSempatch` and whose instructions have the kinds and parameter names of
//! the excerpts in `tests/fixtures/launchdarkly/patchFeatureFlag-semantic-patch-excerpts.md`
//! (parsed from that file), and rollout weights add up to 100000 (else 400). Every request and
//! answer is recorded; [`FakeLaunchDarkly::assert_conformant`] checks them all against the
//! OpenAPI subset `tests/fixtures/launchdarkly/ld-openapi.subset.json`.
//!
//! The description declares the flag `PATCH` body only as JSON Patch (`PatchWithComment`); the
//! semantic patch format lives in the operation's prose, so semantic patch bodies are checked
//! against the description's own `flagSempatch` schema plus the excerpts instead.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use serde_json::{json, Map, Value};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use flagramp::percent::Percent;
use flagramp::state::FlagValue;

use super::openapi::OpenApi;
use super::percent_decode;

/// The project every fake serves.
pub const PROJECT: &str = "default";
/// The environment flagramp is pointed at.
pub const ENVIRONMENT: &str = "production";
/// Another environment of the project, which flagramp must never touch.
pub const OTHER_ENVIRONMENT: &str = "staging";
/// The only access token the fake accepts (shaped like a personal API access token).
pub const TOKEN: &str = "api-5c1e9a42-7d3b-4f60-9e28-b1a4c7d05f3e";
/// An environment variable holding [`TOKEN`] (see [`export_tokens`]).
pub const TOKEN_ENV: &str = "FLAGRAMP_TEST_LD_TOKEN";
/// An environment variable holding a token the fake refuses.
pub const BAD_TOKEN_ENV: &str = "FLAGRAMP_TEST_LD_BAD_TOKEN";
/// The token in [`BAD_TOKEN_ENV`].
pub const BAD_TOKEN: &str = "api-00000000-dead-4bad-8bad-000000000000";
/// The API version flagramp must send.
pub const API_VERSION: &str = "20240415";
/// The semantic patch media type.
pub const SEMANTIC_PATCH: &str = "application/json; domain-model=launchdarkly.semanticpatch";

/// Sets [`TOKEN_ENV`] and [`BAD_TOKEN_ENV`] once per test process (the runner reads tokens from
/// the environment). The values never change, so concurrent readers always see the same thing.
pub fn export_tokens() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::env::set_var(TOKEN_ENV, TOKEN);
        std::env::set_var(BAD_TOKEN_ENV, BAD_TOKEN);
    });
}

/// LaunchDarkly's API description subset, loaded once per test process.
pub fn openapi() -> &'static OpenApi {
    static API: OnceLock<OpenApi> = OnceLock::new();
    API.get_or_init(|| {
        let path = fixture("ld-openapi.subset.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        OpenApi::from_document(serde_json::from_str(&text).expect("the LaunchDarkly subset is JSON"))
    })
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/launchdarkly")
        .join(name)
}

// ----- the semantic patch documentation ---------------------------------------------------------

/// One documented parameter of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Marked "(Optional)".
    pub optional: bool,
}

/// What the excerpts of the `patchFeatureFlag` description say about semantic patch bodies.
#[derive(Debug)]
pub struct SemanticPatchDocs {
    /// Documented body properties (`comment`, `environmentKey`, `instructions`).
    pub body_properties: Vec<String>,
    /// Instruction kind → its alternative parameter sets (separated by "or" in the docs); an
    /// empty list for a kind that takes no parameters.
    pub kinds: BTreeMap<String, Vec<Vec<Param>>>,
    /// The example bodies, `//` comments stripped.
    pub examples: Vec<(String, Value)>,
}

/// The excerpts, parsed once per test process.
pub fn semantic_patch_docs() -> &'static SemanticPatchDocs {
    static DOCS: OnceLock<SemanticPatchDocs> = OnceLock::new();
    DOCS.get_or_init(|| {
        let path = fixture("patchFeatureFlag-semantic-patch-excerpts.md");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        parse_semantic_patch_docs(&text)
    })
}

/// The name in a markdown list item such as ``- `rolloutWeights`: Map of …`` or
/// ``* `comment` (string): …``.
fn listed_name(line: &str) -> Option<(&str, &str)> {
    let rest = line
        .trim()
        .strip_prefix("- ")
        .or_else(|| line.trim().strip_prefix("* "))?;
    let rest = rest.strip_prefix('`')?;
    let (name, after) = rest.split_once('`')?;
    Some((name, after))
}

/// Parses the excerpts: the body properties of the intro, and for each `#### kind` section its
/// `##### Parameters` list and its example bodies.
pub fn parse_semantic_patch_docs(text: &str) -> SemanticPatchDocs {
    let mut body_properties = Vec::new();
    let mut kinds: BTreeMap<String, Vec<Vec<Param>>> = BTreeMap::new();
    let mut examples = Vec::new();
    let mut section: Option<String> = None;
    let mut in_parameters = false;
    let mut code: Option<String> = None;
    for line in text.lines() {
        if let Some(block) = code.as_mut() {
            if line.trim_start().starts_with("```") {
                let json_text = strip_line_comments(block);
                let value: Value = serde_json::from_str(&json_text).unwrap_or_else(|e| {
                    panic!("an example in the excerpts is not JSON once comments are stripped: {e}")
                });
                examples.push((section.clone().unwrap_or_default(), value));
                code = None;
            } else {
                block.push_str(line);
                block.push('\n');
            }
            continue;
        }
        if line.trim_start().starts_with("```json") {
            if section.is_some() {
                code = Some(String::new());
            }
            continue;
        }
        if let Some(kind) = line.strip_prefix("#### ") {
            let kind = kind.trim().to_string();
            kinds.insert(kind.clone(), Vec::new());
            section = Some(kind);
            in_parameters = false;
            continue;
        }
        if line.starts_with("### ") || line.starts_with("## ") {
            section = None;
            in_parameters = false;
            continue;
        }
        if line.trim() == "##### Parameters" {
            in_parameters = true;
            if let Some(kind) = &section {
                kinds.get_mut(kind).expect("inserted").push(Vec::new());
            }
            continue;
        }
        match (&section, listed_name(line)) {
            (None, Some((name, _))) => body_properties.push(name.to_string()),
            (Some(kind), Some((name, after))) if in_parameters => {
                let groups = kinds.get_mut(kind).expect("inserted");
                groups.last_mut().expect("a Parameters heading came first").push(Param {
                    name: name.to_string(),
                    optional: after.contains("(Optional)"),
                });
            }
            (Some(kind), None) if in_parameters && line.trim() == "or" => {
                kinds.get_mut(kind).expect("inserted").push(Vec::new());
            }
            (Some(_), None) if in_parameters && line.trim().starts_with("Here") => in_parameters = false,
            _ => {}
        }
    }
    SemanticPatchDocs {
        body_properties,
        kinds,
        examples,
    }
}

/// Removes `// …` comments outside JSON strings.
fn strip_line_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
            } else if b == b'"' {
                in_string = true;
            } else if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
                cut = i;
                break;
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

/// The problems of a semantic patch body for a flag: the `flagSempatch` schema, the documented
/// body properties, and each instruction's kind, parameter names and parameter types.
pub fn check_semantic_patch(body: &Value) -> Vec<String> {
    let docs = semantic_patch_docs();
    let mut problems: Vec<String> = openapi()
        .validate_component("flagSempatch", body)
        .into_iter()
        .map(|p| format!("flagSempatch: {p}"))
        .collect();
    let Some(object) = body.as_object() else {
        return problems;
    };
    for key in object.keys() {
        if !docs.body_properties.contains(key) {
            problems.push(format!(
                "body property `{key}` is not documented (documented: {})",
                docs.body_properties.join(", ")
            ));
        }
    }
    if !object.get("environmentKey").is_some_and(Value::is_string) {
        problems.push("`environmentKey` (a string) is required for flag targeting instructions".into());
    }
    let instructions = object.get("instructions").and_then(Value::as_array);
    if instructions.is_some_and(|i| i.is_empty()) {
        problems.push("`instructions` is empty".into());
    }
    for (i, instruction) in instructions.into_iter().flatten().enumerate() {
        let at = format!("/instructions/{i}");
        let Some(fields) = instruction.as_object() else {
            problems.push(format!("{at}: not an object"));
            continue;
        };
        let Some(kind) = fields.get("kind").and_then(Value::as_str) else {
            problems.push(format!("{at}: no string `kind`"));
            continue;
        };
        let Some(groups) = docs.kinds.get(kind) else {
            problems.push(format!(
                "{at}: kind `{kind}` is not one of the documented kinds ({})",
                docs.kinds.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
            continue;
        };
        let given: Vec<&str> = fields.keys().map(String::as_str).filter(|k| *k != "kind").collect();
        let fits = |group: &Vec<Param>| {
            group.iter().all(|p| p.optional || given.contains(&p.name.as_str()))
                && given.iter().all(|g| group.iter().any(|p| p.name == *g))
        };
        let ok = if groups.is_empty() {
            given.is_empty()
        } else {
            groups.iter().any(fits)
        };
        if !ok {
            let documented: Vec<String> = groups
                .iter()
                .map(|g| {
                    let names: Vec<String> = g
                        .iter()
                        .map(|p| format!("{}{}", p.name, if p.optional { "?" } else { "" }))
                        .collect();
                    format!("[{}]", names.join(", "))
                })
                .collect();
            problems.push(format!(
                "{at}: `{kind}` parameters [{}] match none of the documented sets {}",
                given.join(", "),
                if documented.is_empty() {
                    "(it takes none)".to_string()
                } else {
                    documented.join(" or ")
                }
            ));
        }
        // Types, from the parameter descriptions in the excerpts.
        for (name, value) in fields {
            let fine = match name.as_str() {
                "kind" => true,
                "variationId" | "rolloutBucketBy" | "rolloutContextKind" => value.is_string(),
                "rolloutWeights" => value
                    .as_object()
                    .is_some_and(|m| m.values().all(|w| w.as_u64().is_some_and(|n| n <= 100_000))),
                _ => true,
            };
            if !fine {
                problems.push(format!("{at}/{name}: wrong type or range ({value})"));
            }
        }
    }
    problems
}

// ----- the fake ---------------------------------------------------------------------------------

/// A local fake of LaunchDarkly for one project. Dropping it stops the server.
pub struct FakeLaunchDarkly {
    server: MockServer,
    world: Arc<Mutex<World>>,
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
    /// Request headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The request body, if it was JSON (a non-JSON body is recorded as a JSON string).
    pub body: Option<Value>,
    /// The status the fake answered with.
    pub status: u16,
    /// The JSON body the fake answered with, if any.
    pub response_body: Option<Value>,
}

impl Recorded {
    /// A request header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake knows about an answer it gave, for the conformance check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Checked strictly against the description.
    Documented,
    /// A failure a test asked for: checked strictly if the status is documented for the
    /// operation, else its body must have the `{code, message}` shape every error schema of the
    /// description has.
    Injected,
    /// A deliberately broken body (not JSON): not checked.
    Malformed,
    /// A request the fake does not serve: always a violation.
    Unexpected,
}

struct Entry {
    recorded: Recorded,
    kind: Kind,
    body_not_json: bool,
}

#[derive(Clone)]
enum FaultBody {
    Json(Value),
    Text(String),
    /// The normal answer (for a delay).
    Normal,
}

#[derive(Clone)]
struct Fault {
    method: String,
    status: u16,
    body: FaultBody,
    headers: Vec<(String, String)>,
    delay: Option<Duration>,
    remaining: usize,
}

/// The fake's whole state; every request is handled with the lock held.
struct World {
    project: String,
    environments: Vec<String>,
    flags: BTreeMap<String, Value>,
    faults: Vec<Fault>,
    /// After this many more GETs are answered, `_version` of the flag read is bumped once.
    bump_after_gets: Option<usize>,
    log: Vec<Entry>,
}

/// The parts of a request the fake looks at.
struct Incoming {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    body_not_json: bool,
}

impl Incoming {
    fn from_request(request: &Request) -> Incoming {
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
        Incoming {
            method: request.method.as_str().to_ascii_uppercase(),
            path: percent_decode(request.url.path()),
            query: request
                .url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            headers: request
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_ascii_lowercase(),
                        v.to_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            body,
            body_not_json,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// An answer before it becomes a `ResponseTemplate`.
struct Reply {
    status: u16,
    body: Option<Value>,
    text: Option<String>,
    headers: Vec<(String, String)>,
    kind: Kind,
    delay: Option<Duration>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            text: None,
            headers: Vec::new(),
            kind: Kind::Documented,
            delay: None,
        }
    }

    fn kind(mut self, kind: Kind) -> Reply {
        self.kind = kind;
        self
    }
}

/// LaunchDarkly's error body: `{code, message}`, with the codes the description's error schemas
/// give as examples.
pub fn error_body(status: u16, message: &str) -> Value {
    let code = match status {
        400 => "invalid_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "optimistic_locking_error",
        429 => "rate_limited",
        _ => "internal_server_error",
    };
    json!({ "code": code, "message": message })
}

/// The message the description's error schemas give as examples, per status.
fn default_message(status: u16) -> &'static str {
    match status {
        400 => "Invalid request body",
        401 => "Invalid access token",
        403 => "Forbidden. Access to the requested resource was denied.",
        404 => "Invalid resource identifier",
        405 => "Method not allowed",
        409 => "Conflict. Optimistic lock error. Try again later.",
        429 => "You've exceeded the API rate limit. Try again later.",
        _ => "Internal server error",
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
        let template = template(&reply);
        world.record(incoming, reply);
        template
    }
}

fn template(reply: &Reply) -> ResponseTemplate {
    let mut t = ResponseTemplate::new(reply.status);
    for (name, value) in &reply.headers {
        t = t.insert_header(name.as_str(), value.as_str());
    }
    if let Some(body) = &reply.body {
        t = t.set_body_raw(serde_json::to_vec(body).expect("JSON"), "application/json");
    } else if let Some(text) = &reply.text {
        t = t.set_body_raw(text.clone().into_bytes(), "application/json");
    }
    if let Some(delay) = reply.delay {
        t = t.set_delay(delay);
    }
    t
}

fn uuid() -> String {
    let n: u128 = rand::random();
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        ["8", "9", "a", "b"][(n % 4) as usize],
        &hex[17..20],
        &hex[20..32]
    )
}

fn hex32() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn title(key: &str) -> String {
    key.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl FakeLaunchDarkly {
    /// Starts a fake serving project [`PROJECT`] with environments [`ENVIRONMENT`] and
    /// [`OTHER_ENVIRONMENT`], and no flags.
    pub async fn start() -> FakeLaunchDarkly {
        export_tokens();
        let server = MockServer::start().await;
        let world = Arc::new(Mutex::new(World {
            project: PROJECT.to_string(),
            environments: vec![ENVIRONMENT.to_string(), OTHER_ENVIRONMENT.to_string()],
            flags: BTreeMap::new(),
            faults: Vec::new(),
            bump_after_gets: None,
            log: Vec::new(),
        }));
        Mock::given(any())
            .respond_with(Responder { world: world.clone() })
            .mount(&server)
            .await;
        FakeLaunchDarkly { server, world }
    }

    /// The base URL, such as `http://127.0.0.1:41234` (no trailing slash).
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a boolean flag as LaunchDarkly creates one: variations `true` then `false`,
    /// targeting off in every environment, default rule serving `true`, off variation `false`.
    pub fn add_boolean_flag(&self, key: &str) {
        let variations = vec![
            json!({ "_id": uuid(), "value": true }),
            json!({ "_id": uuid(), "value": false }),
        ];
        self.world().add_flag(key, "boolean", variations, 0, 1);
    }

    /// Adds a multivariate flag with these `(value, name)` variations, off everywhere, serving
    /// `off_index` when off and by default.
    pub fn add_multivariate_flag(&self, key: &str, variations: &[(Value, &str)], off_index: usize) {
        let variations = variations
            .iter()
            .map(|(value, name)| json!({ "_id": uuid(), "value": value, "name": name }))
            .collect();
        self.world()
            .add_flag(key, "multivariate", variations, off_index, off_index);
    }

    /// The stored flag document (all environments).
    pub fn flag(&self, key: &str) -> Value {
        self.world()
            .flags
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("no flag {key}"))
    }

    /// The `_id` of variation `index` of `key`.
    pub fn variation_id(&self, key: &str, index: usize) -> String {
        self.flag(key)["variations"][index]["_id"].as_str().unwrap().to_string()
    }

    /// The flag's `_version`.
    pub fn version(&self, key: &str) -> i64 {
        self.flag(key)["_version"].as_i64().unwrap()
    }

    /// A person edits the flag's [`ENVIRONMENT`] configuration (or, with `key`'s whole document,
    /// anything): the versions move as a change through the UI would move them.
    pub fn edit_environment(&self, key: &str, f: impl FnOnce(&mut Map<String, Value>)) {
        let mut world = self.world();
        let flag = world.flags.get_mut(key).unwrap_or_else(|| panic!("no flag {key}"));
        f(flag["environments"][ENVIRONMENT]
            .as_object_mut()
            .expect("an environment"));
        bump(flag, ENVIRONMENT);
    }

    /// A person edits the whole flag document; `_version` moves.
    pub fn edit_flag(&self, key: &str, f: impl FnOnce(&mut Value)) {
        let mut world = self.world();
        let flag = world.flags.get_mut(key).unwrap_or_else(|| panic!("no flag {key}"));
        f(flag);
        flag["_version"] = json!(flag["_version"].as_i64().unwrap_or(0) + 1);
    }

    /// A person sets a boolean flag in [`ENVIRONMENT`] by hand: off turns targeting off; on at a
    /// percentage turns it on with a rollout of `true`/`false` (100%: serves `true`).
    pub fn set_by_hand(&self, key: &str, value: FlagValue) {
        let (on, off) = self.boolean_indexes(key);
        self.set_by_hand_between(key, on, off, value);
    }

    /// Like [`FakeLaunchDarkly::set_by_hand`] with explicit on/off variation indexes.
    pub fn set_by_hand_between(&self, key: &str, on: usize, off: usize, value: FlagValue) {
        let count = self.flag(key)["variations"].as_array().unwrap().len();
        self.edit_environment(key, |env| {
            if !value.enabled {
                env.insert("on".into(), json!(false));
                return;
            }
            env.insert("on".into(), json!(true));
            let fallthrough = if value.percent == Percent::FULL {
                json!({ "variation": on })
            } else {
                let w = value.percent.millis();
                let variations: Vec<Value> = (0..count)
                    .map(|i| {
                        let weight = if i == on {
                            w
                        } else if i == off {
                            100_000 - w
                        } else {
                            0
                        };
                        json!({ "variation": i, "weight": weight })
                    })
                    .collect();
                json!({ "rollout": { "variations": variations } })
            };
            env.insert("fallthrough".into(), fallthrough);
        });
    }

    fn boolean_indexes(&self, key: &str) -> (usize, usize) {
        let flag = self.flag(key);
        let variations = flag["variations"].as_array().unwrap();
        let on = variations
            .iter()
            .position(|v| v["value"] == json!(true))
            .expect("a boolean flag");
        let off = variations
            .iter()
            .position(|v| v["value"] == json!(false))
            .expect("a boolean flag");
        (on, off)
    }

    /// What a boolean flag serves in [`ENVIRONMENT`], read from the fake's own state.
    pub fn observe(&self, key: &str) -> FlagValue {
        let (on, off) = self.boolean_indexes(key);
        self.observe_between(key, on, off)
    }

    /// What the flag serves in [`ENVIRONMENT`] with these on/off variation indexes.
    pub fn observe_between(&self, key: &str, on: usize, off: usize) -> FlagValue {
        let flag = self.flag(key);
        let env = &flag["environments"][ENVIRONMENT];
        if env["on"] != json!(true) {
            return FlagValue::OFF;
        }
        let fallthrough = &env["fallthrough"];
        if let Some(i) = fallthrough["variation"].as_u64() {
            assert!(
                i as usize == on || i as usize == off,
                "serves a third variation: {fallthrough}"
            );
            return if i as usize == on {
                FlagValue::on(Percent::FULL)
            } else {
                FlagValue::OFF
            };
        }
        let mut on_weight = 0;
        for w in fallthrough["rollout"]["variations"].as_array().expect("a rollout") {
            if w["variation"].as_u64() == Some(on as u64) {
                on_weight += w["weight"].as_u64().unwrap() as u32;
            }
        }
        if on_weight == 0 {
            FlagValue::OFF
        } else {
            FlagValue::on(Percent::from_millis(on_weight).unwrap())
        }
    }

    /// An experiment takes over the default rule in [`ENVIRONMENT`]: a 50/50 rollout with an
    /// `experimentAllocation` (`Rollout` → `ExperimentAllocationRep`).
    pub fn mark_experiment(&self, key: &str) {
        self.mark_allocation(key, json!({ "defaultVariation": 1, "canReshuffle": false }));
    }

    /// A guarded rollout steers the default rule in [`ENVIRONMENT`]: an `experimentAllocation`
    /// of type `measuredRollout`, as real answers carry it.
    pub fn mark_guarded_rollout(&self, key: &str) {
        self.mark_allocation(
            key,
            json!({ "type": "measuredRollout", "defaultVariation": 1, "canReshuffle": false }),
        );
    }

    fn mark_allocation(&self, key: &str, allocation: Value) {
        self.edit_environment(key, |env| {
            env.insert("on".into(), json!(true));
            env.insert(
                "fallthrough".into(),
                json!({ "rollout": {
                    "variations": [{ "variation": 0, "weight": 50_000 }, { "variation": 1, "weight": 50_000 }],
                    "experimentAllocation": allocation,
                    "seed": 61,
                    "contextKind": "user"
                } }),
            );
        });
    }

    /// A (legacy) experiment on the flag in [`ENVIRONMENT`]: `experiments.items` (`FeatureFlag`
    /// → `ExperimentInfoRep` → `LegacyExperimentRep`).
    pub fn mark_legacy_experiment(&self, key: &str) {
        self.edit_flag(key, |flag| {
            flag["experiments"]["items"] = json!([{
                "metricKey": "checkout-conversion",
                "environments": [ENVIRONMENT],
                "_environmentSettings": { ENVIRONMENT: { "startDate": now_ms() - 86_400_000 } }
            }]);
        });
    }

    /// The next `times` requests with `method` are answered with `status` and LaunchDarkly's
    /// usual message for it, without doing anything.
    pub fn fail_next(&self, method: &str, status: u16, times: usize) {
        self.fail_next_with(method, status, default_message(status), times);
    }

    /// Like [`FakeLaunchDarkly::fail_next`], with this `message`.
    pub fn fail_next_with(&self, method: &str, status: u16, message: &str, times: usize) {
        self.add_fault(Fault {
            method: method.to_ascii_uppercase(),
            status,
            body: FaultBody::Json(error_body(status, message)),
            headers: Vec::new(),
            delay: None,
            remaining: times,
        });
    }

    /// The next request with `method` is answered 429 with these headers
    /// (`X-Ratelimit-Reset`, `Retry-After`).
    pub fn rate_limit_next(&self, method: &str, headers: &[(&str, String)]) {
        self.add_fault(Fault {
            method: method.to_ascii_uppercase(),
            status: 429,
            body: FaultBody::Json(error_body(429, default_message(429))),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
            delay: None,
            remaining: 1,
        });
    }

    /// The next `times` requests with `method` get a 200 whose body is cut off mid-JSON.
    pub fn malformed_next(&self, method: &str, times: usize) {
        self.add_fault(Fault {
            method: method.to_ascii_uppercase(),
            status: 200,
            body: FaultBody::Text(r#"{"name":"New Checkout","kind":"boolean","_version":"#.to_string()),
            headers: Vec::new(),
            delay: None,
            remaining: times,
        });
    }

    /// The next `times` requests with `method` are served normally but answered after `delay`.
    pub fn delay_next(&self, method: &str, delay: Duration, times: usize) {
        self.add_fault(Fault {
            method: method.to_ascii_uppercase(),
            status: 200,
            body: FaultBody::Normal,
            headers: Vec::new(),
            delay: Some(delay),
            remaining: times,
        });
    }

    /// Once `gets` more GETs have been answered, someone changes the flag read by the last of
    /// them elsewhere (another environment): its `_version` moves, [`ENVIRONMENT`] stays as it was.
    pub fn bump_version_after_gets(&self, gets: usize) {
        self.world().bump_after_gets = Some(gets);
    }

    fn add_fault(&self, fault: Fault) {
        self.world().faults.push(fault);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.world().log.iter().map(|e| e.recorded.clone()).collect()
    }

    /// The bodies of the PATCH requests the fake applied (answered 200), in order.
    pub fn applied_patches(&self) -> Vec<Value> {
        self.world()
            .log
            .iter()
            .filter(|e| e.recorded.method == "PATCH" && e.recorded.status == 200 && e.kind == Kind::Documented)
            .filter_map(|e| e.recorded.body.clone())
            .collect()
    }

    /// How many PATCH requests arrived (applied or not).
    pub fn patch_requests(&self) -> usize {
        self.world().log.iter().filter(|e| e.recorded.method == "PATCH").count()
    }

    /// Every way a request or an answer so far disagrees with the API description or the
    /// semantic patch documentation.
    pub fn violations(&self) -> Vec<String> {
        self.world().violations()
    }

    /// Panics with every violation, if there are any.
    pub fn assert_conformant(&self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "{} violation(s) of LaunchDarkly's API description:\n{}",
            violations.len(),
            violations.join("\n")
        );
    }
}

/// Bumps the flag's `_version` and `env`'s `version` and `lastModified`.
fn bump(flag: &mut Value, env: &str) {
    flag["_version"] = json!(flag["_version"].as_i64().unwrap_or(0) + 1);
    let config = &mut flag["environments"][env];
    config["version"] = json!(config["version"].as_i64().unwrap_or(0) + 1);
    config["lastModified"] = json!(now_ms());
}

impl World {
    fn add_flag(&mut self, key: &str, kind: &str, variations: Vec<Value>, fallthrough: usize, off: usize) {
        let now = now_ms();
        let mut environments = Map::new();
        for env in &self.environments {
            environments.insert(
                env.clone(),
                json!({
                    "on": false,
                    "archived": false,
                    "salt": hex32(),
                    "sel": hex32(),
                    "lastModified": now,
                    "version": 1,
                    "targets": [],
                    "contextTargets": [],
                    "rules": [],
                    "fallthrough": { "variation": fallthrough },
                    "offVariation": off,
                    "prerequisites": [],
                    "_site": { "href": format!("/{}/{env}/features/{key}", self.project), "type": "text/html" },
                    "_environmentName": title(env),
                    "trackEvents": false,
                    "trackEventsFallthrough": false
                }),
            );
        }
        let flag = json!({
            "name": title(key),
            "kind": kind,
            "description": "",
            "key": key,
            "_version": 1,
            "creationDate": now - 7 * 86_400_000,
            "includeInSnippet": false,
            "clientSideAvailability": { "usingMobileKey": false, "usingEnvironmentId": false },
            "variations": variations,
            "temporary": true,
            "tags": [],
            "_links": {
                "parent": { "href": format!("/api/v2/flags/{}", self.project), "type": "application/json" },
                "self": { "href": format!("/api/v2/flags/{}/{key}", self.project), "type": "application/json" }
            },
            "maintainerId": "569f183514f4432160000007",
            "goalIds": [],
            "experiments": { "baselineIdx": 0, "items": [] },
            "customProperties": {},
            "archived": false,
            "deprecated": false,
            "defaults": { "onVariation": fallthrough, "offVariation": off },
            "environments": environments
        });
        self.flags.insert(key.to_string(), flag);
    }

    /// The flag as served: environments filtered by `env`, each with its `_summary`.
    fn served(&self, flag: &Value, env: Option<&str>) -> Value {
        let mut out = flag.clone();
        let variation_count = flag["variations"].as_array().map_or(0, Vec::len);
        let environments = out["environments"].as_object_mut().expect("environments");
        if let Some(env) = env {
            environments.retain(|k, _| k == env);
        }
        for config in environments.values_mut() {
            let summary = summary(config, variation_count);
            config["_summary"] = summary;
        }
        out
    }

    fn handle(&mut self, req: &Incoming) -> Reply {
        if req.header("authorization") != Some(TOKEN) {
            return Reply::json(401, error_body(401, default_message(401)));
        }
        if req.header("ld-api-version").is_none() {
            return Reply::json(400, error_body(400, "LD-API-Version header is required by this fake"))
                .kind(Kind::Injected);
        }
        let fault = self
            .faults
            .iter()
            .position(|f| f.remaining > 0 && f.method == req.method);
        let mut delay = None;
        if let Some(i) = fault {
            let fault = &mut self.faults[i];
            fault.remaining -= 1;
            let fault = fault.clone();
            if fault.remaining == 0 {
                self.faults.remove(i);
            }
            match fault.body {
                FaultBody::Json(body) => {
                    let mut reply = Reply::json(fault.status, body).kind(Kind::Injected);
                    reply.headers = fault.headers;
                    reply.delay = fault.delay;
                    return reply;
                }
                FaultBody::Text(text) => {
                    return Reply {
                        status: fault.status,
                        body: None,
                        text: Some(text),
                        headers: fault.headers,
                        kind: Kind::Malformed,
                        delay: fault.delay,
                    }
                }
                FaultBody::Normal => delay = fault.delay,
            }
        }
        let mut reply = self.route(req);
        reply.delay = reply.delay.or(delay);
        reply
    }

    fn route(&mut self, req: &Incoming) -> Reply {
        let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
        let ["api", "v2", "flags", project, key] = segments.as_slice() else {
            return Reply::json(404, error_body(404, "Not found")).kind(Kind::Unexpected);
        };
        if *project != self.project || !self.flags.contains_key(*key) {
            return Reply::json(404, error_body(404, "Unknown feature flag"));
        }
        let key = key.to_string();
        match req.method.as_str() {
            "GET" => {
                let reply = Reply::json(200, self.served(&self.flags[&key], req.query("env")));
                if let Some(n) = self.bump_after_gets.as_mut() {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.bump_after_gets = None;
                        let flag = self.flags.get_mut(&key).expect("checked");
                        bump(flag, OTHER_ENVIRONMENT);
                    }
                }
                reply
            }
            "PATCH" => self.patch(req, &key),
            _ => Reply::json(405, error_body(405, default_message(405))).kind(Kind::Unexpected),
        }
    }

    fn patch(&mut self, req: &Incoming, key: &str) -> Reply {
        let bad = |message: String| Reply::json(400, error_body(400, &message));
        if !is_semantic_patch(req.header("content-type")) {
            return bad("this fake serves semantic patches only".into()).kind(Kind::Injected);
        }
        let Some(body) = req.body.as_ref().filter(|_| !req.body_not_json) else {
            return bad("the body is not JSON".into());
        };
        let problems = check_semantic_patch(body);
        if !problems.is_empty() {
            return bad(format!("Invalid semantic patch: {}", problems.join("; ")));
        }
        let env = body["environmentKey"].as_str().expect("checked");
        let mut flag = self.flags[key].clone();
        if flag["environments"].get(env).is_none() {
            return bad(format!("Unknown environment key {env}"));
        }
        let ids: Vec<String> = flag["variations"]
            .as_array()
            .expect("variations")
            .iter()
            .map(|v| v["_id"].as_str().expect("an _id").to_string())
            .collect();
        let before = flag.clone();
        for instruction in body["instructions"].as_array().expect("checked") {
            let config = &mut flag["environments"][env];
            match instruction["kind"].as_str().expect("checked") {
                "turnFlagOn" => config["on"] = json!(true),
                "turnFlagOff" => config["on"] = json!(false),
                "updateFallthroughVariationOrRollout" => {
                    if let Some(id) = instruction["variationId"].as_str() {
                        let Some(index) = ids.iter().position(|i| i == id) else {
                            return bad(format!("Unknown variation ID {id}"));
                        };
                        config["fallthrough"] = json!({ "variation": index });
                    } else {
                        let weights = instruction["rolloutWeights"].as_object().expect("checked");
                        let mut variations = Vec::new();
                        for id in weights.keys() {
                            if !ids.contains(id) {
                                return bad(format!("Unknown variation ID {id} in rolloutWeights"));
                            }
                        }
                        let total: u64 = weights.values().filter_map(Value::as_u64).sum();
                        if total != 100_000 {
                            return bad(format!("Rollout weights must sum to 100000, got {total}"));
                        }
                        for (i, id) in ids.iter().enumerate() {
                            let weight = weights.get(id).and_then(Value::as_u64).unwrap_or(0);
                            variations.push(json!({ "variation": i, "weight": weight }));
                        }
                        let mut rollout = json!({ "variations": variations });
                        if let Some(kind) = instruction.get("rolloutContextKind") {
                            rollout["contextKind"] = kind.clone();
                        }
                        if let Some(attribute) = instruction.get("rolloutBucketBy") {
                            rollout["bucketBy"] = attribute.clone();
                        }
                        config["fallthrough"] = json!({ "rollout": rollout });
                    }
                }
                other => return bad(format!("The fake does not apply instruction {other}")),
            }
        }
        if flag != before {
            bump(&mut flag, env);
        }
        self.flags.insert(key.to_string(), flag.clone());
        Reply::json(200, self.served(&flag, None))
    }

    fn record(&mut self, req: Incoming, reply: Reply) {
        self.log.push(Entry {
            recorded: Recorded {
                method: req.method,
                path: req.path,
                query: req.query,
                headers: req.headers,
                body: req.body,
                status: reply.status,
                response_body: reply.body,
            },
            kind: reply.kind,
            body_not_json: req.body_not_json,
        });
    }

    fn violations(&self) -> Vec<String> {
        let api = openapi();
        let error_shape = json!({
            "type": "object",
            "required": ["code", "message"],
            "properties": { "code": { "type": "string" }, "message": { "type": "string" } }
        });
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
            match r.header("ld-api-version") {
                None => out.push(format!("{label}: no LD-API-Version header")),
                Some(v) if v != API_VERSION => out.push(format!("{label}: LD-API-Version is {v}, not {API_VERSION}")),
                _ => {}
            }
            match r.header("authorization") {
                None => out.push(format!("{label}: no Authorization header")),
                Some(v) if v.to_ascii_lowercase().starts_with("bearer ") => out.push(format!(
                    "{label}: the Authorization header has \"Bearer\" (LaunchDarkly wants the token as is)"
                )),
                _ => {}
            }
            if entry.kind == Kind::Unexpected {
                out.push(format!("{label}: unexpected request (the fake does not serve it)"));
                continue;
            }
            if entry.body_not_json {
                out.push(format!("{label}: the request body is not JSON"));
            }
            if r.method == "PATCH" {
                // The description declares only JSON Patch for this body; semantic patches are
                // checked against `flagSempatch` and the excerpts.
                for v in api.check_request(&r.method, &r.path, &r.query, None) {
                    if !v.ends_with("the request body is required") {
                        out.push(format!("{label}: {v}"));
                    }
                }
                if !is_semantic_patch(r.header("content-type")) {
                    out.push(format!(
                        "{label}: Content-Type is {:?}, not a semantic patch ({SEMANTIC_PATCH})",
                        r.header("content-type")
                    ));
                }
                match r.body.as_ref().filter(|_| !entry.body_not_json) {
                    Some(body) => {
                        for p in check_semantic_patch(body) {
                            out.push(format!("{label}: semantic patch: {p}"));
                        }
                    }
                    None => out.push(format!("{label}: no JSON body")),
                }
            } else {
                let body = if entry.body_not_json { None } else { r.body.as_ref() };
                for v in api.check_request(&r.method, &r.path, &r.query, body) {
                    out.push(format!("{label}: {v}"));
                }
            }
            let response = r.response_body.as_ref();
            let problems = match entry.kind {
                Kind::Malformed | Kind::Unexpected => Vec::new(),
                Kind::Documented => api.check_response(&r.method, &r.path, r.status, response),
                Kind::Injected => {
                    let strict = api.check_response(&r.method, &r.path, r.status, response);
                    if strict.iter().any(|p| p.contains("is not documented")) {
                        response.map(|b| api.validate(&error_shape, b)).unwrap_or_default()
                    } else {
                        strict
                    }
                }
            };
            for p in problems {
                out.push(format!("{label}: the fake's answer: {p}"));
            }
        }
        out
    }
}

fn is_semantic_patch(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else { return false };
    let mut parts = value.split(';').map(str::trim);
    parts.next().is_some_and(|m| m.eq_ignore_ascii_case("application/json"))
        && parts.any(|p| {
            p.replace(' ', "")
                .eq_ignore_ascii_case("domain-model=launchdarkly.semanticpatch")
        })
}

/// `FlagSummary` of one environment configuration: per variation, whether it is the default
/// rule's, the off variation, and its rollout weight.
fn summary(config: &Value, variation_count: usize) -> Value {
    let mut variations = Map::new();
    for i in 0..variation_count {
        let mut s = json!({ "rules": 0, "nullRules": 0, "targets": 0, "contextTargets": 0 });
        if config["fallthrough"]["variation"].as_u64() == Some(i as u64) {
            s["isFallthrough"] = json!(true);
        }
        if let Some(weights) = config["fallthrough"]["rollout"]["variations"].as_array() {
            let weight: u64 = weights
                .iter()
                .filter(|w| w["variation"].as_u64() == Some(i as u64))
                .filter_map(|w| w["weight"].as_u64())
                .sum();
            if weight > 0 {
                s["rollout"] = json!(weight);
            }
        }
        if config["offVariation"].as_u64() == Some(i as u64) {
            s["isOff"] = json!(true);
        }
        variations.insert(i.to_string(), s);
    }
    json!({ "variations": variations, "prerequisites": 0 })
}
