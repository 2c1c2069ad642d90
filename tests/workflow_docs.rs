//! The workflow people copy (README.md's snippet) and the complete examples
//! (`examples/workflows/rollout.yml`, and `fan-out.yml` with a job per chunk of rollouts) agree
//! with the Action: concurrency groups that never let a schedule tick, a pull request plan or
//! another command cancel a pending manual command (`workflow_dispatch` or `repository_dispatch`),
//! the dispatch inputs `force` and `dry_run` that `command: auto` reads, and the fan-out's
//! `list` → `matrix` → `rollouts` chain beside rollout.yml's `plan`, `run` and `advance` jobs.

use marked_yaml::Node;

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The README's workflow snippet: the first YAML block of "The GitHub Action".
fn readme_workflow() -> Node {
    let readme = read("README.md");
    let section = &readme[readme.find("## The GitHub Action").expect("the Action section")..];
    let start = section.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    marked_yaml::parse_yaml(0, block).unwrap()
}

fn example_workflow() -> Node {
    marked_yaml::parse_yaml(0, read("examples/workflows/rollout.yml")).unwrap()
}

fn concurrency(workflow: &Node) -> (String, String) {
    let c = workflow
        .as_mapping()
        .unwrap()
        .get_mapping("concurrency")
        .expect("a concurrency block");
    let scalar = |key: &str| c.get_scalar(key).map(|s| s.as_str().to_string()).unwrap_or_default();
    (scalar("group"), scalar("cancel-in-progress"))
}

fn dispatch_inputs(workflow: &Node) -> Vec<String> {
    let on = workflow.as_mapping().unwrap().get_mapping("on").expect("`on`");
    let inputs = on
        .get_mapping("workflow_dispatch")
        .and_then(|d| d.get_mapping("inputs"))
        .expect("workflow_dispatch inputs");
    inputs.keys().map(|k| k.as_str().to_string()).collect()
}

/// The group of every dispatched command, `workflow_dispatch` and `repository_dispatch` alike.
const DISPATCH_GROUP: &str = "endsWith(github.event_name, '_dispatch') && github.run_id";

#[test]
fn no_event_can_cancel_a_pending_manual_command() {
    let (group, cancel) = concurrency(&example_workflow());
    assert_eq!(cancel, "false", "a running rollout is never cancelled");
    // One group per event kind, and one of its own for every dispatched command.
    assert!(group.contains("github.event_name"), "{group}");
    assert!(
        group.contains(DISPATCH_GROUP),
        "a manual command must not share a group with anything: {group}"
    );
    assert!(group.contains("github.event.pull_request.number"), "{group}");
}

#[test]
fn the_readme_shows_the_examples_concurrency() {
    assert_eq!(
        concurrency(&readme_workflow()),
        concurrency(&example_workflow()),
        "the README shows what the example does"
    );
}

#[test]
fn the_workflows_offer_force_and_dry_run_and_the_action_declares_force() {
    for (name, workflow) in [("README.md", readme_workflow()), ("example", example_workflow())] {
        let inputs = dispatch_inputs(&workflow);
        for input in ["command", "rollout", "reason", "force", "dry_run"] {
            assert!(
                inputs.iter().any(|i| i == input),
                "{name} lacks dispatch input `{input}`: {inputs:?}"
            );
        }
    }
    let action = marked_yaml::parse_yaml(0, read("action.yml")).unwrap();
    let force = action
        .as_mapping()
        .unwrap()
        .get_mapping("inputs")
        .and_then(|i| i.get_mapping("force"))
        .expect("action.yml declares `force`");
    assert_eq!(force.get_scalar("default").map(|s| s.as_str()), Some("false"));
    assert!(
        read("README.md").contains("| `force` | `false` |"),
        "the README's input table lists `force`"
    );
}

/// A scalar at `keys` under a mapping node, as text.
pub(crate) fn scalar_at(node: &Node, keys: &[&str]) -> Option<String> {
    let (last, path) = keys.split_last()?;
    let mut mapping = node.as_mapping()?;
    for key in path {
        mapping = mapping.get_mapping(key)?;
    }
    mapping.get_scalar(last).map(|s| s.as_str().to_string())
}

/// The steps of a job that run flagramp (`uses: flagramp/flagramp@…`).
fn flagramp_steps(job: &Node) -> Vec<&Node> {
    let steps = job.as_mapping().and_then(|j| j.get_sequence("steps"));
    steps
        .into_iter()
        .flat_map(|s| s.iter())
        .filter(|step| scalar_at(step, &["uses"]).is_some_and(|u| u.starts_with("flagramp/flagramp@")))
        .collect()
}

#[test]
fn the_fan_out_example_feeds_each_chunk_its_rollouts_and_never_cancels_a_manual_command() {
    let workflow = marked_yaml::parse_yaml(0, read("examples/workflows/fan-out.yml")).unwrap();
    let jobs = workflow.as_mapping().unwrap().get_mapping("jobs").expect("jobs");
    let job = |id: &str| jobs.get_node(id).unwrap_or_else(|| panic!("a job `{id}`"));

    // The first job lists, on the schedule only, and hands its step's `matrix` out as a job output.
    let list = job("list");
    let step = flagramp_steps(list)[0];
    assert_eq!(scalar_at(step, &["with", "command"]).as_deref(), Some("list"));
    let id = scalar_at(step, &["id"]).expect("the list step has an id");
    assert_eq!(
        scalar_at(list, &["outputs", "matrix"]),
        Some(format!("${{{{ steps.{id}.outputs.matrix }}}}"))
    );
    assert_eq!(
        scalar_at(list, &["if"]).as_deref(),
        Some("github.event_name == 'schedule'")
    );

    // Each chunk job gets its matrix from that output and runs only its rollouts.
    let chunk = job("chunk");
    assert_eq!(scalar_at(chunk, &["needs"]).as_deref(), Some("list"));
    assert_eq!(
        scalar_at(chunk, &["strategy", "matrix"]).as_deref(),
        Some("${{ fromJSON(needs.list.outputs.matrix) }}")
    );
    assert_eq!(scalar_at(chunk, &["strategy", "fail-fast"]).as_deref(), Some("false"));
    let steps = flagramp_steps(chunk);
    assert_eq!(steps.len(), 1);
    assert_eq!(
        scalar_at(steps[0], &["with", "rollouts"]).as_deref(),
        Some("${{ matrix.rollouts }}")
    );
    assert_eq!(
        scalar_at(steps[0], &["with", "command"]),
        None,
        "auto: the schedule runs"
    );

    // A group per chunk, never cancelled, that a manual command (`flagramp-workflow_dispatch-…`)
    // or a plan (`flagramp-pull_request-…`) never shares.
    let group = scalar_at(chunk, &["concurrency", "group"]).expect("a concurrency group per chunk");
    assert_eq!(group, "flagramp-schedule-chunk-${{ matrix.chunk }}");
    assert_eq!(
        scalar_at(chunk, &["concurrency", "cancel-in-progress"]).as_deref(),
        Some("false")
    );
    assert!(
        workflow.as_mapping().unwrap().get_node("concurrency").is_none(),
        "no workflow-wide group, where a tick could queue behind or cancel a manual command"
    );
    // Plans, manual commands and the manual advance run in rollout.yml's jobs, with its group,
    // the approval on `advance` and the permissions of each; only the schedule is not theirs.
    let example = example_workflow();
    let example_job = |id: &str| {
        example
            .as_mapping()
            .unwrap()
            .get_mapping("jobs")
            .and_then(|j| j.get_node(id))
            .unwrap_or_else(|| panic!("rollout.yml has a job `{id}`"))
    };
    let (example_group, _) = concurrency(&example);
    for id in ["plan", "run", "advance"] {
        let (fanned, single) = (job(id), example_job(id));
        assert_eq!(
            scalar_at(fanned, &["concurrency", "group"]),
            Some(example_group.clone()),
            "{id}"
        );
        assert_eq!(
            scalar_at(fanned, &["concurrency", "cancel-in-progress"]).as_deref(),
            Some("false"),
            "{id}"
        );
        for keys in [
            &["environment"][..],
            &["permissions", "contents"],
            &["permissions", "pull-requests"],
        ] {
            assert_eq!(scalar_at(fanned, keys), scalar_at(single, keys), "{id}: {keys:?}");
        }
        let condition = scalar_at(fanned, &["if"]).unwrap();
        let expected = scalar_at(single, &["if"])
            .unwrap()
            .replace("github.event_name == 'schedule' || ", "");
        assert_eq!(condition, expected, "{id}");
        assert!(!condition.contains("schedule"), "{id}: the chunks run the schedule");
    }
    assert!(
        workflow
            .as_mapping()
            .unwrap()
            .get_mapping("permissions")
            .is_some_and(|p| p.is_empty()),
        "permissions: {{}} at the top"
    );
    for input in ["command", "rollout", "reason", "force", "dry_run"] {
        assert!(
            dispatch_inputs(&workflow).iter().any(|i| i == input),
            "dispatch input `{input}`"
        );
    }

    // The action declares what the example uses, and the README says so.
    let action = marked_yaml::parse_yaml(0, read("action.yml")).unwrap();
    for (section, name) in [("inputs", "rollouts"), ("inputs", "max_jobs"), ("outputs", "matrix")] {
        assert!(
            action
                .as_mapping()
                .unwrap()
                .get_mapping(section)
                .and_then(|m| m.get_node(name))
                .is_some(),
            "action.yml declares {section} `{name}`"
        );
    }
    let readme = read("README.md");
    for row in [
        "| `rollouts` | |",
        "| `max_jobs` | `8` |",
        "examples/workflows/fan-out.yml",
    ] {
        assert!(readme.contains(row), "the README has `{row}`");
    }
}
