//! The workflow people copy (README.md's snippet) and the complete example
//! (`examples/workflows/rollout.yml`) agree with the Action: concurrency groups that never let a
//! schedule tick, a pull request plan or another command cancel a pending manual command, and
//! the dispatch inputs `force` and `dry_run` that `command: auto` reads.

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

#[test]
fn no_event_can_cancel_a_pending_manual_command() {
    for (name, workflow) in [("README.md", readme_workflow()), ("example", example_workflow())] {
        let (group, cancel) = concurrency(&workflow);
        assert_eq!(cancel, "false", "{name}: a running rollout is never cancelled");
        // One group per event kind, and one of its own for every dispatched command.
        assert!(group.contains("github.event_name"), "{name}: {group}");
        assert!(
            group.contains("github.event_name == 'workflow_dispatch' && github.run_id"),
            "{name}: a manual command must not share a group with anything: {group}"
        );
        assert!(group.contains("github.event.pull_request.number"), "{name}: {group}");
    }
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
