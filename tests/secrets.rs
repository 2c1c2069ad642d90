//! Secrets suite (README "Secrets"): recognisable secret values — a bearer token, an env-sourced
//! header, a basic-auth user and password, a command check's `env:` variable, the GitHub token —
//! against a server that echoes every request header and the query back in its errors (as some
//! proxies do), in CLI mode and in Action mode. Every byte flagramp wrote is scanned for every
//! form of every secret (raw, percent-encoded, JSON-escaped, Markdown-escaped, `Bearer …`, the
//! basic credential in each base64 alphabet): stdout, stderr, the job summary, step outputs, state and flag files
//! (local and on the fake GitHub's branches, every version), request bodies the fakes received
//! and the environments command checks ran with. A check's own `env:` variable is allowed only
//! in that check's environment.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::action::{self, Job};
use crate::support::github::FakeGitHub;

const BEARER: &str = "bearer-SECRET-t0ken-7f3a";
const TENANT: &str = "tenant-SECRET-h3ader-91c";
const USER: &str = "basic-SECRET-us3r";
const PASSWORD: &str = "basic-SECRET-p@ss w0rd/+&";
const SMOKE: &str = "smoke-SECRET-env-55d";
/// In flagramp's environment but named by no spec: no check may see it.
const AMBIENT: &str = "ambient-SECRET-gh-token-0e1";

const QUERY_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Every form a value can take in a URL, a header or JSON.
fn forms(value: &str) -> Vec<String> {
    let mut out = vec![
        value.to_string(),
        utf8_percent_encode(value, NON_ALPHANUMERIC).to_string(),
        utf8_percent_encode(value, QUERY_UNRESERVED).to_string(),
        utf8_percent_encode(value, QUERY_UNRESERVED)
            .to_string()
            .replace("%20", "+"),
        serde_json::to_string(value).unwrap().trim_matches('"').to_string(),
        format!("Bearer {value}"),
        // As the job summary and comments escape it.
        flagramp::escape::markdown(value),
    ];
    out.sort();
    out.dedup();
    out
}

/// The basic credential as sent (`base64(user:password)`) in every alphabet, with `Basic `.
fn basic_forms() -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let pair = format!("{USER}:{PASSWORD}");
    let mut out = Vec::new();
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        let encoded = engine.encode(&pair);
        out.extend(forms(&encoded));
        out.push(format!("Basic {encoded}"));
    }
    out.extend(forms(&pair));
    out
}

/// Every form of every secret that must never appear anywhere flagramp writes.
fn every_form(github_token: Option<&str>) -> Vec<String> {
    let mut out = basic_forms();
    for secret in [BEARER, TENANT, USER, PASSWORD, SMOKE].into_iter().chain(github_token) {
        out.extend(forms(secret));
    }
    out
}

/// Fails with where and which form when `bytes` carries any of `forms`.
fn assert_clean(place: &str, bytes: &[u8], forms: &[String]) {
    let text = String::from_utf8_lossy(bytes);
    for form in forms {
        assert!(
            !text.contains(form.as_str()),
            "{place} carries the secret form {form:?}:\n{text}"
        );
    }
}

/// Answers like a proxy that echoes the request in its error: every header (raw, percent-encoded
/// and, for basic auth, decoded) and the query string, in a Prometheus error body.
struct Echo(u16);

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut seen = vec!["echo of the request:".to_string()];
        for (name, value) in request.headers.iter() {
            let value = value.to_str().unwrap_or_default();
            seen.push(format!("{name}: {value}"));
            seen.push(format!(
                "{name} (encoded): {}",
                utf8_percent_encode(value, NON_ALPHANUMERIC)
            ));
            if let Some(encoded) = value.strip_prefix("Basic ") {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap_or_default();
                seen.push(format!("{name} (decoded): {}", String::from_utf8_lossy(&decoded)));
            }
        }
        seen.push(format!("query: {}", request.url.query().unwrap_or_default()));
        ResponseTemplate::new(self.0).set_body_json(json!({
            "status": "error",
            "errorType": "echo",
            "error": seen.join("\n"),
        }))
    }
}

/// One server: `/e500/…` and `/e400/…` echo, `/ok/…` answers 1.
async fn echo_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/e500/"))
        .respond_with(Echo(500))
        .mount(&server)
        .await;
    Mock::given(path_regex("^/e400/"))
        .respond_with(Echo(400))
        .mount(&server)
        .await;
    Mock::given(path_regex("^/ok/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success",
            "data": { "resultType": "vector", "result": [{ "metric": {}, "value": [1, "1"] }] }
        })))
        .mount(&server)
        .await;
    server
}

/// Sources for every kind of credential, against the echoing server; command checks that dump
/// their environment and print their `env:` secret on stderr and stdout.
fn sources_and_checks(uri: &str) -> String {
    let basic = "basic_auth: { username_env: PROM_USER, password_env: PROM_PASSWORD }";
    let tenant = "headers: { X-Scope-OrgID: { env: PROM_TENANT } }";
    format!(
        "sources:
  bearer500: {{ provider: prometheus, url: {uri}/e500, token_env: PROM_BEARER, {tenant} }}
  basic400: {{ provider: prometheus, url: {uri}/e400, {basic}, {tenant} }}
  basic500: {{ provider: prometheus, url: {uri}/e500, {basic} }}
  healthy: {{ provider: prometheus, url: {uri}/ok, {basic} }}
checks:
  - {{ name: bearer-echo, source: bearer500, query: up, pass: \">= 1\" }}
  - {{ name: basic-echo, source: basic400, query: up, pass: \">= 1\" }}
  - {{ name: basic-echo-500, source: basic500, query: up, pass: \">= 1\" }}
  - {{ name: healthy, source: healthy, query: up, pass: \">= 1\" }}
  - {{ name: env-dump, command: [\"./dump-env.sh\"], env: [SMOKE_TOKEN], pass: \"== 1\" }}
  - {{ name: env-stderr, command: [\"./leak-stderr.sh\"], env: [SMOKE_TOKEN], pass: \"== 1\" }}
  - {{ name: env-stdout, command: [\"./leak-stdout.sh\"], env: [SMOKE_TOKEN], pass: \"== 1\" }}
  - {{ name: no-env, command: [\"./dump-env-bare.sh\"], pass: \"== 1\" }}
"
    )
}

/// Writes the check scripts into `repo`.
fn write_scripts(repo: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for (name, body) in [
        (
            "dump-env.sh",
            "env >> env-dump.txt\necho '--' >> env-dump.txt\necho 1\n",
        ),
        (
            "dump-env-bare.sh",
            "env >> env-dump-bare.txt\necho '--' >> env-dump-bare.txt\necho 1\n",
        ),
        (
            "leak-stderr.sh",
            "env >&2\necho \"the token is $SMOKE_TOKEN\" >&2\nexit 1\n",
        ),
        ("leak-stdout.sh", "echo \"$SMOKE_TOKEN\"\n"),
    ] {
        let path = repo.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The secrets as the workflow step's `env:` passes them.
fn secret_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("PROM_BEARER", BEARER),
        ("PROM_TENANT", TENANT),
        ("PROM_USER", USER),
        ("PROM_PASSWORD", PASSWORD),
        ("SMOKE_TOKEN", SMOKE),
        ("GITHUB_TOKEN", AMBIENT),
    ]
}

/// A command check's environment holds only PATH, HOME, LANG, FLAGRAMP_*, its own `env:`
/// variables (`own`), and what the shell adds itself; no other secret in any form.
fn assert_check_environment(dump: &Path, own: &[&str], github_token: Option<&str>) {
    let text = std::fs::read_to_string(dump).unwrap_or_else(|e| panic!("{}: {e}", dump.display()));
    assert!(text.contains("FLAGRAMP_ROLLOUT="), "the check ran: {text}");
    let names: BTreeSet<&str> = text
        .lines()
        .filter(|l| *l != "--")
        .filter_map(|l| l.split_once('=').map(|(n, _)| n))
        .collect();
    let allowed = ["PATH", "HOME", "LANG", "PWD", "SHLVL", "_", "OLDPWD"];
    for name in &names {
        assert!(
            allowed.contains(name) || name.starts_with("FLAGRAMP_") || own.contains(name),
            "{} has `{name}`:\n{text}",
            dump.display()
        );
    }
    let mut forbidden: Vec<String> = every_form(github_token)
        .into_iter()
        .filter(|f| !own.contains(&"SMOKE_TOKEN") || !forms(SMOKE).contains(f))
        .collect();
    forbidden.extend(forms(AMBIENT));
    assert_clean(&dump.display().to_string(), text.as_bytes(), &forbidden);
    if own.contains(&"SMOKE_TOKEN") {
        assert!(
            text.contains(&format!("SMOKE_TOKEN={SMOKE}")),
            "the check gets its own `env:`: {text}"
        );
    } else {
        assert!(!text.contains("SMOKE_TOKEN"), "{text}");
    }
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn cli(repo: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_flagramp"));
    cmd.args(args)
        .current_dir(repo)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", repo)
        .env("LANG", "C.UTF-8")
        // Every log event reaches stderr too, and the scan covers it: log lines carry
        // providers' and sources' error texts.
        .env("FLAGRAMP_LOG", "debug")
        .env("INPUT_GITHUB_TOKEN", AMBIENT);
    for (k, v) in secret_env() {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_form_of_any_secret_reaches_any_cli_output_state_or_check_environment() {
    let server = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let spec = format!(
        "version: 1\nname: leaky\nflag: {{ provider: flagd, key: new-checkout, flagd: {{ path: flags.json }} }}\nstages: [{{ percent: 10, bake: 0s }}, {{ percent: 50, bake: 0s }}, {{ percent: 100, bake: 0s }}]\n{}",
        sources_and_checks(&server.uri())
    );
    std::fs::create_dir_all(repo.join(".github/rollouts")).unwrap();
    std::fs::write(repo.join(".github/rollouts/leaky.yml"), spec).unwrap();
    std::fs::write(
        repo.join("flags.json"),
        r#"{"flags":{"new-checkout":{"state":"DISABLED","variants":{"on":true,"off":false},"defaultVariant":"off"}}}"#,
    )
    .unwrap();
    write_scripts(repo);

    let mut outputs = Vec::new();
    for args in [
        &["run", "--now", "2026-11-24T09:00:00Z"][..],
        &["run", "--now", "2026-11-24T09:30:00Z", "--output", "json"],
        &["run", "--now", "2026-11-24T10:00:00Z"],
        &["plan", "--now", "2026-11-24T10:30:00Z", "--output", "json"],
        &["status"],
        &["status", "--output", "json"],
        &[
            "advance",
            "leaky",
            "--now",
            "2026-11-24T11:00:00Z",
            "--reason",
            "checked by hand",
        ],
        &["rollback", "leaky", "--now", "2026-11-24T11:30:00Z", "--output", "json"],
        &["status", "leaky"],
    ] {
        let out = cli(repo, args);
        outputs.push((args.join(" "), out));
    }
    let forms = every_form(None);
    let mut redacted = false;
    for (args, out) in &outputs {
        assert_clean(&format!("stdout of `{args}`"), &out.stdout, &forms);
        assert_clean(&format!("stderr of `{args}`"), &out.stderr, &forms);
        redacted |= output_text(out).contains("***");
    }
    assert!(redacted, "the echoes reached the reports, redacted");
    let d: Value = serde_json::from_slice(&outputs[1].1.stdout).unwrap();
    let details: Vec<&str> = d[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["detail"].as_str())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("echo of the request") && d.contains("***")),
        "an echo carried the credentials and was redacted: {details:?}"
    );
    assert_eq!(d[0]["checks"][3]["verdict"], "pass", "the healthy source answered");

    for entry in std::fs::read_dir(repo.join(".flagramp/state")).unwrap() {
        let path = entry.unwrap().path();
        assert_clean(&path.display().to_string(), &std::fs::read(&path).unwrap(), &forms);
    }
    assert_clean("flags.json", &std::fs::read(repo.join("flags.json")).unwrap(), &forms);
    assert_check_environment(&repo.join("env-dump.txt"), &["SMOKE_TOKEN"], None);
    assert_check_environment(&repo.join("env-dump-bare.txt"), &[], None);
    for request in server.received_requests().await.unwrap() {
        assert_clean("a request body sent to the source", &request.body, &forms);
    }
}

/// The Action's spec: the flag on the fake's default branch, reports on pull request 7.
fn action_spec(uri: &str) -> String {
    format!(
        "version: 1\nname: new-checkout\nflag: {{ provider: flagd, key: new-checkout, flagd: {{ path: {} }} }}\nstages: [{{ percent: 10, bake: 0s }}, {{ percent: 50, bake: 0s }}, {{ percent: 100, bake: 0s }}]\nreport: {{ pull_request: 7 }}\n{}",
        action::FLAGS,
        sources_and_checks(uri)
    )
}

/// Every byte the Action wrote: log (but the mask commands, which must name the values),
/// summary, outputs, every version of the fake's files, and the bodies GitHub received.
fn assert_action_wrote_no_secret(job: &Job, fake: &FakeGitHub, runs: &[Output], forms: &[String]) {
    for (i, out) in runs.iter().enumerate() {
        let log: String = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_clean(&format!("step log of run {i}"), log.as_bytes(), forms);
        assert_clean(&format!("stderr of run {i}"), &out.stderr, forms);
    }
    assert_clean("job summary", job.summary().as_bytes(), forms);
    assert_clean(
        "GITHUB_OUTPUT",
        &std::fs::read(job.path("output.txt")).unwrap_or_default(),
        forms,
    );
    for (branch, path) in [
        (action::STATE_BRANCH, "rollouts/new-checkout.json"),
        ("main", action::FLAGS),
    ] {
        for (n, version) in fake.file_history(branch, path).iter().enumerate() {
            assert_clean(&format!("{path} on {branch}, version {n}"), version, forms);
        }
    }
    for r in fake.requests() {
        let body = r.body.as_ref().map(|b| b.to_string()).unwrap_or_default();
        assert_clean(&format!("{} {} body", r.method, r.path), body.as_bytes(), forms);
        if let Some(content) = r.body.as_ref().and_then(|b| b["content"].as_str()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(content.split_whitespace().collect::<String>())
                .unwrap_or_default();
            assert_clean(&format!("{} {} content", r.method, r.path), &decoded, forms);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_form_of_any_secret_reaches_the_log_summary_outputs_branches_or_comments() {
    let server = echo_server().await;
    let fake = action::octo_repo().await;
    let job = Job::new(&action_spec(&server.uri()));
    write_scripts(&job.path("repo"));
    let env = secret_env();
    let schedule = action::fixture("schedule.synthetic.json");
    let mut runs = Vec::new();
    for inputs in [
        vec![],
        vec![("comment", "always")],
        vec![("comment", "always")],
        vec![("command", "status"), ("comment", "always")],
        vec![
            ("command", "advance"),
            ("rollout", "new-checkout"),
            ("reason", "checked by hand"),
        ],
    ] {
        runs.push(
            job.run(&fake, "octo-org/octo-repo", "schedule", &schedule, &inputs, &env)
                .await,
        );
    }
    let log = action::stdout(&runs[1]);
    // The masks name every form the runner must hide, before any other line.
    let first_other = log.lines().position(|l| !l.starts_with("::add-mask::")).unwrap();
    let masks: Vec<&str> = log.lines().take(first_other).collect();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for value in [BEARER, TENANT, USER, PASSWORD, SMOKE, action::TOKEN, basic.as_str()] {
        assert!(
            masks.contains(&format!("::add-mask::{value}").as_str()),
            "{value} is masked first: {log}"
        );
    }
    assert!(!fake.comments(7).is_empty(), "the comment was written");
    assert!(
        job.summary().contains("***"),
        "the echoes reached the summary, redacted"
    );
    assert_action_wrote_no_secret(&job, &fake, &runs, &every_form(Some(action::TOKEN)));
    assert_check_environment(&job.path("repo/env-dump.txt"), &["SMOKE_TOKEN"], Some(action::TOKEN));
    assert_check_environment(&job.path("repo/env-dump-bare.txt"), &[], Some(action::TOKEN));
}

/// A scheduled run that starts the rollout (no check is queried to start), so a plan queries them.
async fn start(job: &Job, fake: &FakeGitHub) {
    let out = job
        .run(
            fake,
            "Codertocat/Hello-World",
            "schedule",
            &action::fixture("schedule.synthetic.json"),
            &[("comment", "never")],
            &secret_env(),
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", action::stdout(&out));
}

/// Starts the rollout, then runs the Action's plan of `pull_request.opened` with the secrets set.
async fn start_then_plan_pr(job: &Job, fake: &FakeGitHub) -> Output {
    start(job, fake).await;
    job.run(
        fake,
        "Codertocat/Hello-World",
        "pull_request",
        &action::fixture("pull_request.opened.json"),
        &[],
        &secret_env(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_plan_sends_no_secret_where_the_pull_request_could_point_it() {
    let server = echo_server().await;
    let fake = action::hello_world().await;
    let path = ".github/rollouts/new-checkout.yml";
    // The base branch has the sources as they were; the pull request points one elsewhere.
    let base = action_spec(&server.uri());
    fake.put_file("master", path, base.as_bytes());
    let changed = base.replace(
        &format!("url: {}/e400", server.uri()),
        &format!("url: {}/e400/elsewhere", server.uri()),
    );
    assert_ne!(base, changed);
    fake.set_pr_files(action::PR, &[(path, "modified")]);
    let job = Job::new(&changed);
    write_scripts(&job.path("repo"));
    let out = start_then_plan_pr(&job, &fake).await;
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    let checks = decisions[0]["checks"].as_array().unwrap();
    let check = |name: &str| checks.iter().find(|c| c["name"] == name).unwrap().clone();
    assert_eq!(check("basic-echo")["verdict"], "error", "{checks:?}");
    assert_eq!(
        check("basic-echo")["detail"],
        "not run on a pull-request plan: this PR changes the source"
    );
    assert_eq!(
        check("healthy")["verdict"],
        "pass",
        "an unchanged source is queried: {checks:?}"
    );
    let paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert!(
        !paths.iter().any(|p| p.starts_with("/e400")),
        "the changed source got no request: {paths:?}"
    );
    // No `env:` on a pull request's plan of a spec it changes.
    assert_check_environment(&job.path("repo/env-dump.txt"), &[], Some(action::TOKEN));
    assert_action_wrote_no_secret(&job, &fake, &[out], &every_form(Some(action::TOKEN)));

    // A spec the base branch does not have: every source counts as changed.
    let fake = action::hello_world().await;
    fake.set_pr_files(action::PR, &[(path, "added")]);
    let job = Job::new(&changed);
    write_scripts(&job.path("repo"));
    start_then_plan_pr(&job, &fake).await;
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    for c in decisions[0]["checks"].as_array().unwrap() {
        if c["name"].as_str().unwrap().contains("echo") || c["name"] == "healthy" {
            assert_eq!(
                c["detail"], "not run on a pull-request plan: this PR changes the source",
                "{c}"
            );
        }
    }
}

#[test]
fn a_command_checks_env_lists_names_only_with_positioned_errors() {
    let parse = |checks: &str| {
        let text = format!(
            "version: 1\nname: r\nflag: {{ provider: flagd, key: k, flagd: {{ path: f.json }} }}\nchecks:\n{checks}"
        );
        let (spec, _, diags) = flagramp::spec::parse_spec(Path::new("r.yml"), &text);
        (spec, diags)
    };
    let (spec, diags) =
        parse("  - { name: smoke, command: [\"./s.sh\"], env: [SMOKE_TOKEN, OTHER_1], pass: \"== 1\" }\n");
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(
        spec.unwrap().checks[0].probe().cloned().unwrap(),
        flagramp::spec::Probe::Command {
            argv: vec!["./s.sh".into()],
            env: vec!["SMOKE_TOKEN".into(), "OTHER_1".into()],
        }
    );
    for (checks, line, column, message) in [
        (
            "  - name: smoke\n    command: [\"./s.sh\"]\n    env: [\"ghp_pasted-secret-value\", \"1BAD\"]\n    pass: \"== 1\"\n",
            7,
            11,
            "`checks[0].env[0]` must name an environment variable",
        ),
        (
            "  - name: smoke\n    command: [\"./s.sh\"]\n    env: SMOKE_TOKEN\n    pass: \"== 1\"\n",
            7,
            10,
            "`checks[0].env` must be a list of environment variable names",
        ),
        (
            "  - name: smoke\n    command: [\"./s.sh\"]\n    env: [A_B, A_B]\n    pass: \"== 1\"\n",
            7,
            16,
            "`checks[0].env` lists `A_B` twice",
        ),
        (
            "  - name: q\n    source: p\n    query: up\n    env: [A_B]\n    pass: \"== 1\"\n",
            8,
            10,
            "`checks[0]` is a query check and cannot have `env`",
        ),
    ] {
        let (spec, diags) = parse(checks);
        assert!(spec.is_none());
        let found = diags
            .iter()
            .find(|d| d.message.starts_with(message))
            .unwrap_or_else(|| panic!("{message}: {diags:?}"));
        assert_eq!((found.line, found.column), (line, column), "{found:?}");
        assert!(!found.to_string().contains("ghp_pasted"), "the value is not echoed: {found}");
    }
}

#[test]
fn a_pull_request_withholds_exactly_what_it_changed_compared_with_the_base() {
    let parse = |flag: &str, sources: &str| {
        let text = format!(
            "version: 1\nname: r\nflag: {flag}\nsources:\n{sources}checks:\n  - {{ name: a, source: a, query: up, pass: \">= 1\" }}\n  - {{ name: b, source: b, query: up, pass: \">= 1\" }}\n"
        );
        let (spec, _, diags) = flagramp::spec::parse_spec(Path::new("r.yml"), &text);
        spec.unwrap_or_else(|| panic!("{diags:?}"))
    };
    let unleash = |url: &str| {
        format!("{{ provider: unleash, key: k, unleash: {{ url: {url}, project: p, environment: e, token_env: T }} }}")
    };
    let a = "  a: { provider: prometheus, url: http://127.0.0.1:1, token_env: A }\n";
    let base = parse(
        &unleash("http://127.0.0.1:2"),
        &format!("{a}  b: {{ provider: prometheus, url: http://127.0.0.1:3 }}\n"),
    );
    let same = flagramp::action::withheld(&base, Some(&base));
    assert!(same.sources.is_empty() && !same.flag_provider, "{same:?}");
    // Each of url, auth and headers counts; so does a flag provider pointed elsewhere.
    for b in [
        "  b: { provider: prometheus, url: http://127.0.0.1:4 }\n",
        "  b: { provider: prometheus, url: http://127.0.0.1:3, token_env: A }\n",
        "  b: { provider: prometheus, url: http://127.0.0.1:3, headers: { X-A: { env: A } } }\n",
    ] {
        let changed = parse(&unleash("http://127.0.0.1:9"), &format!("{a}{b}"));
        let w = flagramp::action::withheld(&changed, Some(&base));
        assert_eq!(w.sources.iter().collect::<Vec<_>>(), ["b"], "{b}");
        assert!(w.flag_provider);
    }
    let new = flagramp::action::withheld(&base, None);
    assert_eq!(new.sources.len(), 2);
    assert!(new.flag_provider, "a spec new on the base branch is changed everywhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_error_text_is_cut_to_2_kib_and_cannot_wedge_the_state() {
    let server = MockServer::start().await;
    let huge = format!("{BEARER} {}", "é".repeat(450_000));
    Mock::given(path_regex("^/api/v1/query"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "status": "error", "errorType": "bad_data", "error": huge
        })))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let spec = format!(
        "version: 1\nname: huge\nflag: {{ provider: flagd, key: k, flagd: {{ path: flags.json }} }}\nsources:\n  prom: {{ provider: prometheus, url: {}, token_env: PROM_BEARER }}\nchecks:\n  - {{ name: a, source: prom, query: up, pass: \">= 1\" }}\n  - {{ name: b, source: prom, query: up, pass: \">= 1\" }}\n",
        server.uri()
    );
    std::fs::create_dir_all(repo.join(".github/rollouts")).unwrap();
    std::fs::write(repo.join(".github/rollouts/huge.yml"), spec).unwrap();
    std::fs::write(
        repo.join("flags.json"),
        r#"{"flags":{"k":{"state":"DISABLED","variants":{"on":true,"off":false},"defaultVariant":"off"}}}"#,
    )
    .unwrap();
    cli(repo, &["run", "--now", "2026-11-24T09:00:00Z"]);
    let out = cli(repo, &["run", "--now", "2026-11-24T09:30:00Z", "--output", "json"]);
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    for check in d[0]["checks"].as_array().unwrap() {
        let detail = check["detail"].as_str().unwrap();
        assert!(
            detail.len() <= 2048 && detail.ends_with("… (cut)"),
            "{} bytes",
            detail.len()
        );
        assert!(
            detail.contains("***") && !detail.contains(BEARER),
            "redacted before it is cut"
        );
    }
    assert!(d[0]["reason"].as_str().unwrap().len() <= 2048);
    let state = std::fs::read(repo.join(".flagramp/state/huge.json")).unwrap();
    assert!(state.len() < 16 * 1024, "the state file is {} bytes", state.len());
}
