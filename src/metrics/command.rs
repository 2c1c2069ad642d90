//! Command checks: a program run without a shell, whose stdout is one number.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::{MeasureRequest, MetricSource};
use crate::check::Measurement;
use crate::fsutil::MIB;
use crate::secrets::Secrets;
use crate::spec::Probe;

/// The most of a check's stdout that is read: one number needs a few bytes, and a runaway
/// command (`yes 1`) must not fill memory. Past it the command is stopped and the check errs.
const STDOUT_CAP: u64 = MIB;

/// The start of a check's stderr that is kept for its error text; the rest is read and dropped,
/// so that a chatty command never blocks on a full pipe.
const STDERR_KEPT: u64 = 64 * 1024;

/// Runs command checks with the repository root as working directory.
#[derive(Debug, Clone)]
pub struct CommandSource {
    root: PathBuf,
    secrets: Secrets,
    pass_env: bool,
}

impl CommandSource {
    /// Commands run in `root`; their output is scrubbed of `secrets` before it is reported.
    /// Without `pass_env` (a pull request's plan of a spec it changed), a check's `env:`
    /// variables are not passed.
    pub fn new(root: &Path, secrets: Secrets, pass_env: bool) -> CommandSource {
        CommandSource {
            root: root.to_path_buf(),
            secrets,
            pass_env,
        }
    }
}

fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    line.chars().take(200).collect()
}

#[async_trait::async_trait]
impl MetricSource for CommandSource {
    async fn measure(&self, request: &MeasureRequest<'_>) -> Measurement {
        let Probe::Command { argv, env } = request.probe else {
            return Measurement::Error("internal: a query was sent to the command runner".into());
        };
        let program = &argv[0];
        // A relative path with a slash is relative to the repository root, whatever our own cwd.
        let resolved = if program.contains('/') && Path::new(program).is_relative() {
            self.root.join(program)
        } else {
            PathBuf::from(program)
        };
        let mut command = tokio::process::Command::new(&resolved);
        command.env_clear();
        for (var, value) in self.secrets.inherited_by_commands() {
            command.env(var, value);
        }
        if self.pass_env {
            for var in env {
                match self.secrets.read(var) {
                    Ok(value) => command.env(var, value),
                    Err(why) => return Measurement::Error(format!("`{program}` needs {why}")),
                };
            }
        }
        command
            .args(&argv[1..])
            .current_dir(&self.root)
            .env("FLAGRAMP_ROLLOUT", request.rollout)
            .env("FLAGRAMP_PERCENT", request.percent.as_f64().to_string())
            .env("FLAGRAMP_NOW", request.at.to_rfc3339())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Measurement::Error(format!(
                    "`{program}` was not found: paths are relative to the repository root ({}); check the path, or that the program is on PATH",
                    self.root.display()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Measurement::Error(format!("`{program}` is not executable: run `chmod +x {program}` and commit it"))
            }
            Err(e) => return Measurement::Error(format!("`{program}` could not start: {e}")),
        };
        let output = match tokio::time::timeout(request.timeout, capped_output(child)).await {
            Ok(Ok(Captured::Done(output))) => output,
            Ok(Ok(Captured::TooLong)) => {
                return Measurement::Error(format!(
                    "`{program}` printed more than {} on stdout and was stopped; a check command prints one number",
                    crate::fsutil::size_text(STDOUT_CAP)
                ))
            }
            Ok(Err(e)) => return Measurement::Error(format!("`{program}` failed: {e}")),
            Err(_) => {
                return Measurement::Error(format!(
                    "`{program}` timed out after {}s and was stopped",
                    request.timeout.as_secs()
                ))
            }
        };
        if !output.status.success() {
            let status = output
                .status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "a signal".into());
            let stderr = self.secrets.redact(&last_line(&output.stderr));
            let tail = if stderr.is_empty() {
                String::new()
            } else {
                format!(": {stderr}")
            };
            return Measurement::Error(format!("`{program}` exited with {status}{tail}"));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let words: Vec<&str> = stdout.split_whitespace().collect();
        match words.as_slice() {
            [] => Measurement::Error(format!("`{program}` printed no number on stdout")),
            [one] => match Measurement::from_number_text(one) {
                Measurement::Error(_) => Measurement::Error(format!(
                    "`{program}` printed `{}` instead of a number",
                    self.secrets.redact(&one.chars().take(80).collect::<String>())
                )),
                m => m,
            },
            many => Measurement::Error(format!(
                "`{program}` printed {} words; a check command prints exactly one number",
                many.len()
            )),
        }
    }
}

/// A command's outcome, read within the caps.
enum Captured {
    Done(std::process::Output),
    /// Stdout passed [`STDOUT_CAP`]; the command was killed.
    TooLong,
}

/// Waits for `child`, reading at most [`STDOUT_CAP`] + 1 bytes of stdout and keeping
/// [`STDERR_KEPT`] bytes of stderr. The caller's timeout drops this future, and with it the
/// child (`kill_on_drop`).
async fn capped_output(mut child: tokio::process::Child) -> std::io::Result<Captured> {
    use tokio::io::AsyncReadExt;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(std::io::Error::other("the command's output pipes were not set up"));
    };
    let read_stdout = async {
        let mut bytes = Vec::new();
        stdout.take(STDOUT_CAP + 1).read_to_end(&mut bytes).await.map(|_| bytes)
    };
    let read_stderr = async {
        let mut kept = Vec::new();
        (&mut stderr).take(STDERR_KEPT).read_to_end(&mut kept).await?;
        tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await?;
        Ok::<_, std::io::Error>(kept)
    };
    // Both pipes are read at once, or a command filling one would block while the other is
    // awaited. Once stdout passes the cap the child is killed, which also ends its stderr.
    let mut too_long = false;
    let (stdout, stderr) = tokio::join!(
        async {
            let stdout = read_stdout.await;
            too_long = matches!(&stdout, Ok(bytes) if bytes.len() as u64 > STDOUT_CAP);
            if too_long {
                let _ = child.start_kill();
            }
            stdout
        },
        read_stderr
    );
    let stderr = stderr?;
    let status = child.wait().await?;
    if too_long {
        return Ok(Captured::TooLong);
    }
    Ok(Captured::Done(std::process::Output {
        status,
        stdout: stdout?,
        stderr,
    }))
}
