//! The `add-checkpoint` request body: `old <size>`, up to 63 base64 proof hashes, an empty
//! line, then the signed checkpoint; every line ends in a newline.

use vellum::ledger::Hash;
use vellum::ledger::checkpoint::MAX_NOTE_BYTES;
use vellum::ledger::witness::MAX_PROOF_LINES;

/// The largest request body accepted: the proof lines and one checkpoint.
pub const MAX_REQUEST_BYTES: usize = 8 + MAX_PROOF_LINES * 46 + 1 + MAX_NOTE_BYTES;

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the client believes the witness holds.
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint, as sent.
    pub checkpoint: String,
}

impl AddCheckpoint {
    /// Parses a request body; the error says what is wrong and where.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(format!("request longer than {MAX_REQUEST_BYTES} bytes"));
        }
        let text = std::str::from_utf8(body).map_err(|e| format!("request is not UTF-8: {e}"))?;
        let (first, mut rest) = text
            .split_once('\n')
            .ok_or("the request has no `old <size>` line")?;
        let old_size = first
            .strip_prefix("old ")
            .filter(|n| !n.is_empty() && (*n == "0" || !n.starts_with('0')))
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("line 1: expected `old <size>`, got `{first}`"))?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = rest
                .split_once('\n')
                .ok_or("the request has no empty line before the checkpoint")?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if proof.len() == MAX_PROOF_LINES {
                return Err(format!("more than {MAX_PROOF_LINES} proof lines"));
            }
            let hash = Hash::from_base64(line).ok_or_else(|| {
                format!(
                    "line {}: `{line}` is not a base64 SHA-256 hash",
                    proof.len() + 2
                )
            })?;
            proof.push(hash);
        }
        if rest.is_empty() {
            return Err("the request has no checkpoint".into());
        }
        Ok(Self {
            old_size,
            proof,
            checkpoint: rest.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=";

    #[test]
    fn the_spec_shape_parses() {
        let body = format!("old 20852014\n{HASH}\n{HASH}\n\nexample.com/log\n3\n{HASH}\n\n— x\n");
        let request = AddCheckpoint::parse(body.as_bytes()).unwrap();
        assert_eq!(request.old_size, 20_852_014);
        assert_eq!(request.proof.len(), 2);
        assert!(request.checkpoint.starts_with("example.com/log\n"));
        let zero = AddCheckpoint::parse(b"old 0\n\nlog\n").unwrap();
        assert_eq!((zero.old_size, zero.proof.len()), (0, 0));
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        for (body, expected) in [
            ("old 01\n\nx", "line 1"),
            ("old -1\n\nx", "line 1"),
            ("old\n\nx", "line 1"),
            ("new 1\n\nx", "line 1"),
            ("old 1\nnot-base64\n\nx", "line 2"),
            ("old 1\nAAAA\n\nx", "line 2"),
            ("old 1\n", "no empty line"),
            ("old 1\n\n", "no checkpoint"),
            ("old 1", "no `old <size>` line"),
        ] {
            let err = AddCheckpoint::parse(body.as_bytes()).unwrap_err();
            assert!(err.contains(expected), "{body:?}: {err}");
        }
        let many = format!("old 1\n{}\nx", format!("{HASH}\n").repeat(64));
        assert!(
            AddCheckpoint::parse(many.as_bytes())
                .unwrap_err()
                .contains("63")
        );
        assert!(
            AddCheckpoint::parse(&[0xff, b'\n'])
                .unwrap_err()
                .contains("UTF-8")
        );
    }
}
