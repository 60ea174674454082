//! Handing each signed checkpoint to places outside the ledger, so that a later `vellum
//! verify --trusted-checkpoint` has something to compare against that whoever can rewrite
//! the ledger cannot also rewrite: an append-only directory (one file per tree size) and a
//! command that receives the note on standard input (to mail it, post it to a witness, or
//! copy it to write-once storage).
//!
//! Publishing follows storing, off the writer (see [`super::side_effects`]): the checkpoint
//! is in the ledger whether or not publishing works. A failure is logged as an error naming
//! the publisher; the next checkpoint is published as usual. A command that outlives its
//! deadline is killed with its whole process group.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where signed checkpoints go besides the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publisher {
    /// A directory receiving one file per checkpoint, named by its tree size
    /// (`checkpoint.<size>`); an existing file is never replaced.
    Directory(PathBuf),
    /// A shell command (`sh -c`) run with the signed note on standard input and the tree
    /// size in `VELLUM_CHECKPOINT_SIZE`; a non-zero exit is a failure.
    Command(String),
}

impl Publisher {
    /// Publishes the checkpoint of tree size `size`; a command still running after
    /// `deadline` is killed and fails.
    pub fn publish(&self, size: u64, note: &str, deadline: Duration) -> Result<(), String> {
        match self {
            Self::Directory(dir) => publish_to_directory(dir, size, note),
            Self::Command(command) => publish_to_command(command, size, note, deadline),
        }
    }

    /// Publishes the RFC 3161 token of the checkpoint of `size`: a directory gets
    /// `checkpoint.<size>.tsr` (never replaced); a command gets nothing more.
    pub fn publish_timestamp(&self, size: u64, token: &[u8]) -> Result<(), String> {
        let Self::Directory(dir) = self else {
            return Ok(());
        };
        let target = dir.join(format!("checkpoint.{size}.tsr"));
        if target.exists() {
            return Ok(());
        }
        match write_new(dir, &target, token) {
            Ok(()) => Ok(()),
            // A token of this size published meanwhile stays.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(format!("publishing to {}: {e}", target.display())),
        }
    }

    /// The publisher in words, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Directory(dir) => format!("directory {}", dir.display()),
            Self::Command(command) => format!("command `{command}`"),
        }
    }
}

/// Writes `checkpoint.<size>` in `dir` without replacing anything: the note goes to a
/// temporary file first, which is then hard-linked into place (fails if the name exists).
/// An existing file with the same checkpoint (whatever its cosignatures) is success; with
/// another checkpoint, an error.
fn publish_to_directory(dir: &Path, size: u64, note: &str) -> Result<(), String> {
    let target = dir.join(format!("checkpoint.{size}"));
    let failed = |e: std::io::Error| format!("publishing to {}: {e}", target.display());
    if let Ok(existing) = std::fs::read_to_string(&target) {
        // The same checkpoint, perhaps with other cosignatures, is already kept.
        return match body(&existing) == body(note) {
            true => Ok(()),
            false => Err(format!(
                "{} already holds another checkpoint of size {size}; not replaced",
                target.display()
            )),
        };
    }
    write_new(dir, &target, note.as_bytes()).map_err(failed)
}

/// Writes `bytes` durably to `target` in `dir`, which must not exist yet (`AlreadyExists`
/// otherwise): a temporary file first, hard-linked into place, then the directory synced.
fn write_new(dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    std::fs::hard_link(temp.path(), target)?;
    std::fs::File::open(dir)?.sync_all()
}

/// A note's text, without its signature lines.
fn body(note: &str) -> &str {
    note.split_once("\n\n").map_or(note, |(body, _)| body)
}

fn publish_to_command(
    command: &str,
    size: u64,
    note: &str,
    deadline: Duration,
) -> Result<(), String> {
    let failed = |what: String| format!("publishing with `{command}`: {what}");
    let mut shell = Command::new("sh");
    shell
        .args(["-c", command])
        .env("VELLUM_CHECKPOINT_SIZE", size.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    // Its own process group, so that a deadline kills what it started too.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut shell, 0);
    let mut child = shell.spawn().map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is its own business; its exit status
        // counts. The note is far smaller than a pipe's buffer, so this never blocks.
        let _ = stdin.write_all(note.as_bytes());
    }
    let status = wait_until(&mut child, Instant::now() + deadline)
        .map_err(|e| failed(e.to_string()))?
        .ok_or_else(|| failed(format!("still running after {deadline:?}; killed")))?;
    match status.success() {
        true => Ok(()),
        false => Err(failed(status.to_string())),
    }
}

/// Waits for `child` until `deadline`; past it, kills its process group and returns `None`.
fn wait_until(
    child: &mut Child,
    deadline: Instant,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            kill_group(child);
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(unix)]
fn kill_group(child: &mut Child) {
    // The child leads its own group (process_group(0)), so its pid is the group id.
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) takes plain integers and touches no memory of this process.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

#[cfg(not(unix))]
fn kill_group(child: &mut Child) {
    let _ = child.kill();
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOON: Duration = Duration::from_secs(10);

    #[test]
    fn a_directory_gets_one_file_per_size_and_never_a_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let publisher = Publisher::Directory(dir.path().to_path_buf());
        publisher
            .publish(3, "note three\n\n— log sig\n", SOON)
            .unwrap();
        publisher
            .publish(3, "note three\n\n— log sig\n— witness sig\n", SOON)
            .unwrap();
        let err = publisher
            .publish(3, "another\n\n— log sig\n", SOON)
            .unwrap_err();
        assert!(err.contains("not replaced"), "{err}");
        let kept = std::fs::read_to_string(dir.path().join("checkpoint.3")).unwrap();
        assert_eq!(kept, "note three\n\n— log sig\n");
        let missing = Publisher::Directory(dir.path().join("nope"));
        assert!(missing.publish(4, "x", SOON).unwrap_err().contains("nope"));
    }

    #[test]
    fn a_command_gets_the_note_on_stdin_and_its_status_counts() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let command = format!(
            "cat > '{}'; test \"$VELLUM_CHECKPOINT_SIZE\" = 7",
            out.display()
        );
        Publisher::Command(command)
            .publish(7, "signed\n", SOON)
            .unwrap();
        assert_eq!(std::fs::read_to_string(out).unwrap(), "signed\n");
        let err = Publisher::Command("exit 9".into())
            .publish(7, "x", SOON)
            .unwrap_err();
        assert!(err.contains("exit 9"), "{err}");
    }

    #[test]
    fn a_command_past_its_deadline_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // A subshell in the background: killing `sh` alone would leave it running.
        let command = format!(
            "(sleep 30; echo late) & echo $! > '{}'; wait",
            pid_file.display()
        );
        let started = Instant::now();
        let err = Publisher::Command(command)
            .publish(1, "x", Duration::from_millis(300))
            .unwrap_err();
        assert!(err.contains("killed"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let alive = Path::new("/proc").join(pid.trim());
        // The group's kill reaches the background job; give the kernel a moment to reap it.
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::read_to_string(alive.join("stat"))
                .map(|stat| stat.split_whitespace().nth(2) == Some("Z"))
                .unwrap_or(true)
        });
        assert!(gone, "the background job outlived the deadline");
    }
}
