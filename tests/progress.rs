//! The progress of a run over many rollouts: the runner tells its observer as each rollout is
//! decided, and the binary shows it to nobody but a person at a terminal (never in a pipe, a
//! file, CI or beside JSON: `report::text::should_show_progress` has the rule's unit tests).

use std::sync::Mutex;

use flagramp::runner::{Mode, Progress};

use crate::support::bench::{check_spec, lock_state, runner, START};
use crate::support::repo::TempRepo;

const ROLLOUTS: usize = 25;

/// A repository of [`ROLLOUTS`] rollouts, each with its own flag (off) and a passing check.
fn many_rollouts() -> TempRepo {
    let repo = TempRepo::new();
    let flags: Vec<String> = (0..ROLLOUTS)
        .map(|i| format!("\"f{i}\": {{ \"state\": \"DISABLED\", \"variants\": {{ \"on\": true, \"off\": false }}, \"defaultVariant\": \"off\" }}"))
        .collect();
    repo.write("flags.json", &format!("{{ \"flags\": {{ {} }} }}", flags.join(", ")));
    repo.script("check.sh", "echo 1");
    for i in 0..ROLLOUTS {
        repo.write(
            &format!(".github/rollouts/r{i}.yml"),
            &format!(
                "version: 1\nname: r{i}\nflag: {{ provider: flagd, key: f{i}, flagd: {{ path: flags.json }} }}\nstages: [{{ percent: 10, bake: 1h }}, 100]\nchecks:\n  - {{ name: ok, command: [\"./check.sh\"], pass: \"== 1\" }}\n"
            ),
        );
    }
    repo
}

#[derive(Debug, Default)]
struct Told(Mutex<Vec<String>>);

impl Progress for Told {
    fn start(&self, rollouts: usize) {
        self.0.lock().unwrap().push(format!("start {rollouts}"));
    }
    fn decided(&self) {
        self.0.lock().unwrap().push("decided".into());
    }
    fn finish(&self) {
        self.0.lock().unwrap().push("finish".into());
    }
}

#[tokio::test]
async fn the_runner_tells_its_observer_as_each_rollout_is_decided() {
    let repo = many_rollouts();
    let specs: Vec<_> = (0..ROLLOUTS)
        .map(|i| {
            check_spec(
                &format!("r{i}"),
                &format!("{{ provider: flagd, key: f{i}, flagd: {{ path: flags.json }} }}"),
                "[{ percent: 10, bake: 1h }, 100]",
            )
        })
        .collect();
    let store = lock_state(&repo.state_dir()).await;
    let runner = runner(repo.root(), repo.root(), START.parse().unwrap(), Box::new(store));
    let told = Told::default();
    let decided = runner.decide_all_with(&specs, &Mode::Run, &told).await;
    assert!(decided
        .iter()
        .all(|d| d.record.decision == flagramp::record::DecisionKind::Start));
    let told = told.0.into_inner().unwrap();
    let mut expected = vec![format!("start {ROLLOUTS}")];
    expected.extend(std::iter::repeat_n("decided".to_string(), ROLLOUTS));
    expected.push("finish".into());
    assert_eq!(told, expected);
}

#[test]
fn off_a_terminal_a_run_over_many_rollouts_prints_no_progress() {
    let repo = many_rollouts();
    for output in ["text", "json"] {
        let out = repo
            .flagramp(&["plan", "--now", START, "--output", output, "--state-dir"])
            .arg(repo.state_dir())
            .env_remove("CI")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "nothing on stderr ({output})");
        assert!(
            !stdout.contains('\r') && !stdout.contains("rollouts decided"),
            "{stdout}"
        );
        let decided = if output == "json" {
            "\"decision\": \"start\""
        } else {
            "would start"
        };
        assert_eq!(stdout.matches(decided).count(), ROLLOUTS, "{stdout}");
    }
}
