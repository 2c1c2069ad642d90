//! Injection suite (README "The GitHub Action"): hostile strings in every field that reaches a
//! report — a flag key, a query, metric answers (an error text and a success-shaped answer
//! whose value is not a number), a command's output, a provider error and a dispatch `reason`.
//! The step log gets no line that the runner would read as a workflow command other than
//! flagramp's own; the job summary and the pull request comment get no raw HTML tag, no bare
//! mention, no link, no code-span break-out and no broken table row; CLI text keeps one line
//! per line; JSON stays JSON.

use serde_json::{json, Value};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::action::{self, Job};

/// Line breaks, workflow commands (both forms), HTML, a mention, links, a code-span break-out,
/// table pipes and a right-to-left override.
const HOSTILE: &str = "x\n::error title=pwned::injected\r\n::set-output name=a::b\n##[error]old form\n<img src=x onerror=alert(1)> @octocat [click](https://evil.example) `code` a|b www.evil.example </code></details> \u{202E}reversed";

/// A flag key may be any text without control or format characters.
const HOSTILE_KEY: &str = "k<img src=x onerror=alert(1)>@octocat[x](https://evil.example)`|`::error::k";

/// The tags flagramp itself writes into Markdown.
const OWN_TAGS: &[&str] = &[
    "<code>",
    "</code>",
    "<details>",
    "</details>",
    "<summary>",
    "</summary>",
    "<br>",
    "<sub>",
    "</sub>",
    "<!-- flagramp:report -->",
];

/// flagramp's own workflow commands; any other line the runner would read as one is injected.
const OWN_COMMANDS: &[&str] = &[
    "::add-mask::",
    "::group::",
    "::endgroup::",
    "::error title=flagramp",
    "::error file=",
    "::warning title=flagramp",
];

fn assert_log_obeys_nothing(log: &str) {
    for line in log.lines() {
        let body = line.trim_start();
        if body.starts_with("::") {
            assert!(
                OWN_COMMANDS.iter().any(|c| body.starts_with(c)),
                "an injected workflow command: {line:?}\n{log}"
            );
        }
        assert!(!line.contains("##["), "the runner's older command form: {line:?}");
        assert!(!line.contains('\u{202E}'), "a raw right-to-left override: {line:?}");
    }
}

fn assert_markdown_is_inert(place: &str, md: &str, run_url: &str) {
    for (i, _) in md.match_indices('<') {
        assert!(
            OWN_TAGS.iter().any(|t| md[i..].starts_with(t)),
            "{place}: raw HTML at {:?}\n{md}",
            &md[i..md.len().min(i + 40)]
        );
    }
    let chars: Vec<char> = md.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '@' {
            assert!(
                !chars.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric()),
                "{place}: a bare mention near {:?}",
                chars[i.saturating_sub(10)..(i + 10).min(chars.len())]
                    .iter()
                    .collect::<String>()
            );
        }
    }
    for (i, _) in md.match_indices("](") {
        assert!(
            md[i + 2..].starts_with(run_url),
            "{place}: a link that is not the run's: {md}"
        );
    }
    for bare in ["https://evil", "www.evil", "`code`", "\u{202E}"] {
        assert!(!md.contains(bare), "{place}: {bare:?} reaches the Markdown raw:\n{md}");
    }
    for line in md.lines().filter(|l| l.starts_with("| ")) {
        assert_eq!(line.matches('|').count(), 5, "{place}: a table row broken: {line}");
    }
}

async fn hostile_prometheus() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/error/"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "status": "error", "errorType": "bad_data", "error": HOSTILE
        })))
        .mount(&server)
        .await;
    Mock::given(path_regex("^/value/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success",
            "data": { "resultType": "vector", "result": [{ "metric": {}, "value": [1, HOSTILE] }] }
        })))
        .mount(&server)
        .await;
    server
}

fn hostile_spec(uri: &str) -> String {
    let quoted = |s: &str| serde_json::to_string(s).unwrap();
    format!(
        "version: 1
name: new-checkout
flag: {{ provider: flagd, key: {key}, flagd: {{ path: {flags} }} }}
stages: [{{ percent: 10, bake: 0s }}, {{ percent: 50, bake: 0s }}, {{ percent: 100, bake: 0s }}]
report: {{ pull_request: 7 }}
sources:
  answers-error: {{ provider: prometheus, url: {uri}/error }}
  answers-value: {{ provider: prometheus, url: {uri}/value }}
checks:
  - {{ name: error-text, source: answers-error, query: {query}, pass: \">= 1\" }}
  - {{ name: value-text, source: answers-value, query: up, pass: \">= 1\" }}
  - {{ name: command-output, command: [\"./hostile.sh\"], pass: \"== 1\" }}
",
        key = quoted(HOSTILE_KEY),
        flags = action::FLAGS,
        // A spec refuses format characters such as U+202E (`validate` says where), so the
        // query carries the rest of the hostile text; answers and reasons carry all of it.
        query = quoted(&format!("up{}", HOSTILE.replace('\u{202E}', ""))),
    )
}

fn flags_with_hostile_key() -> String {
    serde_json::to_string_pretty(&json!({ "flags": { HOSTILE_KEY: {
        "state": "DISABLED", "variants": { "on": true, "off": false }, "defaultVariant": "off"
    } } }))
    .unwrap()
}

fn write_hostile_script(repo: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let path = repo.join("hostile.sh");
    let line = HOSTILE.replace(['\n', '\r'], " ");
    std::fs::write(
        &path,
        format!("#!/bin/sh\nprintf '%s\\n' '{}' >&2\nexit 1\n", line.replace('\'', "")),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_never_obeyed_in_the_log_or_rendered_in_markdown() {
    let server = hostile_prometheus().await;
    let fake = action::octo_repo().await;
    fake.put_file("main", action::FLAGS, flags_with_hostile_key().as_bytes());
    let job = Job::new(&hostile_spec(&server.uri()));
    write_hostile_script(&job.path("repo"));
    let schedule = action::fixture("schedule.synthetic.json");
    let mut dispatch = action::fixture("workflow_dispatch.json");
    dispatch["inputs"] = json!({ "command": "advance", "rollout": "new-checkout", "reason": HOSTILE });
    // The fast path's payload is as untrusted as a dispatch input.
    let mut alert = action::fixture("repository_dispatch.json");
    alert["action"] = json!("flagramp");
    alert["client_payload"] = json!({ "command": "rollback", "rollout": "new-checkout", "reason": HOSTILE });
    let mut logs = Vec::new();
    for (event_name, event, inputs) in [
        ("schedule", &schedule, vec![]),
        ("schedule", &schedule, vec![("comment", "always")]),
        ("workflow_dispatch", &dispatch, vec![("comment", "always")]),
        (
            "schedule",
            &schedule,
            vec![("command", "status"), ("comment", "always")],
        ),
        ("repository_dispatch", &alert, vec![("comment", "always")]),
    ] {
        let out = job
            .run(&fake, "octo-org/octo-repo", event_name, event, &inputs, &[])
            .await;
        let log = action::stdout(&out);
        assert_log_obeys_nothing(&log);
        assert_log_obeys_nothing(&String::from_utf8_lossy(&out.stderr));
        logs.push(log);
    }
    // The hostile texts did reach the reports (escaped), so the assertions above mean something.
    let decisions: Value = serde_json::from_str(&job.outputs()["decisions"]).unwrap();
    assert_eq!(decisions[0]["flag"], HOSTILE_KEY, "JSON carries the key as it is");
    assert!(logs[1].contains("pwned"), "{}", logs[1]);
    assert!(logs[2].contains("pwned") && logs[2].contains("onerror"), "{}", logs[2]);
    assert!(
        logs[4].contains("pwned") && logs[4].contains("(disable)"),
        "{}",
        logs[4]
    );

    let run_url = "https://github.com/octo-org/octo-repo/actions/runs/4242";
    let summary = job.summary();
    assert!(summary.contains("pwned") && summary.contains("onerror"), "{summary}");
    assert_markdown_is_inert("job summary", &summary, run_url);
    let comments = fake.comments(7);
    assert!(!comments.is_empty());
    for c in &comments {
        assert!(c.body.contains("pwned"), "{}", c.body);
        assert_markdown_is_inert("pull request comment", &c.body, run_url);
    }
    fake.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_keeps_to_its_line_in_cli_output() {
    let server = hostile_prometheus().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    let spec = hostile_spec(&server.uri()).replace(action::FLAGS, "flags.json");
    std::fs::create_dir_all(repo.join(".github/rollouts")).unwrap();
    std::fs::write(repo.join(".github/rollouts/new-checkout.yml"), spec).unwrap();
    std::fs::write(repo.join("flags.json"), flags_with_hostile_key()).unwrap();
    write_hostile_script(repo);
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_flagramp"))
            .args(args)
            .current_dir(repo)
            .output()
            .unwrap()
    };
    run(&["run", "--now", "2026-11-24T09:00:00Z"]);
    let texts = [
        run(&["run", "--now", "2026-11-24T09:30:00Z"]),
        run(&[
            "advance",
            "new-checkout",
            "--now",
            "2026-11-24T10:00:00Z",
            "--reason",
            HOSTILE,
        ]),
        run(&["status"]),
    ];
    for out in &texts {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("pwned"),
            "{text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in text.lines() {
            assert!(!line.trim_start().starts_with("::"), "{line:?}");
            assert!(
                !line.contains('\u{1b}') && !line.contains('\u{202E}') && !line.contains('\r'),
                "{line:?}"
            );
        }
    }
    let json = run(&["plan", "--now", "2026-11-24T10:30:00Z", "--output", "json"]);
    let parsed: Value = serde_json::from_slice(&json.stdout).expect("JSON output stays JSON");
    assert_eq!(parsed[0]["flag"], HOSTILE_KEY);
}
