//! Handing each signed checkpoint to places outside the ledger, so that a later `vellum
//! verify --trusted-checkpoint` has something to compare against that whoever can rewrite
//! the ledger cannot also rewrite: an append-only directory (one file per tree size) and a
//! command that receives the note on standard input (to mail it, post it to a witness, or
//! copy it to write-once storage).
//!
//! Publishing follows storing: the checkpoint is in the ledger whether or not publishing
//! works. A failure is logged as an error naming the publisher and never retried silently;
//! the next checkpoint is published as usual.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
    /// Publishes the checkpoint of tree size `size`.
    pub fn publish(&self, size: u64, note: &str) -> Result<(), String> {
        match self {
            Self::Directory(dir) => publish_to_directory(dir, size, note),
            Self::Command(command) => publish_to_command(command, size, note),
        }
    }
}

/// Writes `checkpoint.<size>` in `dir` without replacing anything: the note goes to a
/// temporary file first, which is then hard-linked into place (fails if the name exists).
/// An existing file with the same note is success; with another note, an error.
fn publish_to_directory(dir: &Path, size: u64, note: &str) -> Result<(), String> {
    let target = dir.join(format!("checkpoint.{size}"));
    let failed = |e: std::io::Error| format!("publishing to {}: {e}", target.display());
    if let Ok(existing) = std::fs::read_to_string(&target) {
        return match existing == note {
            true => Ok(()),
            false => Err(format!(
                "{} already holds another checkpoint of size {size}; not replaced",
                target.display()
            )),
        };
    }
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    temp.write_all(note.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .map_err(failed)?;
    std::fs::hard_link(temp.path(), &target).map_err(failed)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(failed)
}

fn publish_to_command(command: &str, size: u64, note: &str) -> Result<(), String> {
    let failed = |what: String| format!("publishing with `{command}`: {what}");
    let mut child = Command::new("sh")
        .args(["-c", command])
        .env("VELLUM_CHECKPOINT_SIZE", size.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is its own business; its exit status counts.
        let _ = stdin.write_all(note.as_bytes());
    }
    let status = child.wait().map_err(|e| failed(e.to_string()))?;
    match status.success() {
        true => Ok(()),
        false => Err(failed(status.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_gets_one_file_per_size_and_never_a_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let publisher = Publisher::Directory(dir.path().to_path_buf());
        publisher.publish(3, "note three\n").unwrap();
        publisher.publish(3, "note three\n").unwrap();
        let err = publisher.publish(3, "another\n").unwrap_err();
        assert!(err.contains("not replaced"), "{err}");
        let kept = std::fs::read_to_string(dir.path().join("checkpoint.3")).unwrap();
        assert_eq!(kept, "note three\n");
        let missing = Publisher::Directory(dir.path().join("nope"));
        assert!(missing.publish(4, "x").unwrap_err().contains("nope"));
    }

    #[test]
    fn a_command_gets_the_note_on_stdin_and_its_status_counts() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let command = format!(
            "cat > '{}'; test \"$VELLUM_CHECKPOINT_SIZE\" = 7",
            out.display()
        );
        Publisher::Command(command).publish(7, "signed\n").unwrap();
        assert_eq!(std::fs::read_to_string(out).unwrap(), "signed\n");
        let err = Publisher::Command("exit 9".into())
            .publish(7, "x")
            .unwrap_err();
        assert!(err.contains("exit 9"), "{err}");
    }
}
