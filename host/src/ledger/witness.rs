//! Asking witnesses to cosign the ledger's checkpoints, with the C2SP tlog-witness protocol
//! (<https://c2sp.org/tlog-witness>): `POST <url>/add-checkpoint` with the size the witness
//! saw last, a consistency proof from it, and the signed checkpoint; the answer is the
//! witness's cosignature (see [`super::cosignature`]), which the ledger stores beside the
//! checkpoint. `vellum verify --witness-key` then requires it.
//!
//! A witness that holds a cosigned checkpoint of this log will never cosign a tree that is
//! not an extension of it, so a ledger rewritten after a witnessed checkpoint (or shown
//! differently to different readers) can no longer collect that witness's cosignature.

use std::time::Duration;

use super::LedgerError;
use super::cosignature::CosignatureVerifier;
use super::hash::Hash;

/// How long one request to a witness may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The most proof hashes the protocol allows in a request.
pub const MAX_PROOF_LINES: usize = 63;

/// A witness the ledger asks to cosign its checkpoints.
#[derive(Debug, Clone)]
pub struct Witness {
    url: String,
    key: CosignatureVerifier,
    /// Kept across requests, so its connections are reused (the protocol asks for
    /// keep-alive).
    agent: ureq::Agent,
}

/// A witness's answer to one `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Its cosignature line (ending in a newline), checked against its key.
    Cosigned(String),
    /// It holds a checkpoint of this smaller size, not the one the request started from.
    Holds(u64),
}

/// Why a witness did not cosign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// The witness could not be reached or answered something unexpected.
    #[error("witness {witness}: {reason}")]
    Failed {
        /// The witness's URL.
        witness: String,
        /// What happened.
        reason: String,
    },
    /// The witness holds a checkpoint this one does not extend (a larger tree, or another
    /// tree of the same size): the log's history as the witness saw it differs.
    #[error("witness {witness} refused: {reason}")]
    Refused {
        /// The witness's URL.
        witness: String,
        /// What it answered.
        reason: String,
    },
}

impl Witness {
    /// A witness at `url` (its submission prefix, `http://` or `https://`) whose
    /// cosignatures verify with `vkey`.
    pub fn new(url: &str, vkey: &str) -> Result<Self, LedgerError> {
        let key = CosignatureVerifier::new(vkey)
            .map_err(|e| LedgerError::BadRequest(format!("witness {url}: {e}")))?;
        Self::with_key(url, key)
    }

    /// A witness at `url` whose cosignatures verify with `key`.
    pub fn with_key(url: &str, key: CosignatureVerifier) -> Result<Self, LedgerError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(LedgerError::BadRequest(format!(
                "witness URL `{url}` must start with http:// or https://"
            )));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            key,
            agent,
        })
    }

    /// The witness's URL prefix.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key its cosignatures verify with.
    pub fn key(&self) -> &CosignatureVerifier {
        &self.key
    }

    /// Asks the witness to cosign `note`, the signed checkpoint of `size`. `seen` is the size
    /// the witness is believed to hold (0 when unknown); a "409 Conflict" naming another
    /// smaller size is retried once from it. `prove(old)` gives the consistency proof from
    /// `old` to `size`. Returns the cosignature line, checked against the witness's key, and
    /// the size the witness holds afterwards.
    pub fn cosign(
        &self,
        note: &str,
        size: u64,
        seen: u64,
        prove: &mut dyn FnMut(u64) -> Result<Vec<Hash>, LedgerError>,
    ) -> Result<(String, u64), WitnessError> {
        let mut old = seen.min(size);
        for _ in 0..2 {
            let proof = match old {
                0 => Vec::new(),
                old => prove(old).map_err(|e| self.failed(format!("building the proof: {e}")))?,
            };
            match self.add_checkpoint(note, size, old, &proof)? {
                Added::Cosigned(line) => return Ok((line, size)),
                Added::Holds(held) => old = held,
            }
        }
        Err(self.refused(format!(
            "it holds another tree of {old} entries than this ledger"
        )))
    }

    /// One `add-checkpoint` request: `note` (the signed checkpoint of `size`) with the
    /// consistency proof from `old`, the size the witness is believed to hold. A witness
    /// holding another, smaller size answers [`Added::Holds`]; ask again with a proof from
    /// there.
    pub fn add_checkpoint(
        &self,
        note: &str,
        size: u64,
        old: u64,
        proof: &[Hash],
    ) -> Result<Added, WitnessError> {
        let (status, content_type, body) = self.post(old, proof, note)?;
        match status {
            200 => {
                let line = body
                    .lines()
                    .find(|line| line.starts_with(&format!("— {} ", self.key.name())))
                    .ok_or_else(|| self.failed("its answer has no cosignature by its key"))?;
                let line = format!("{line}\n");
                self.key
                    .verify_line(note, &line)
                    .map_err(|e| self.failed(format!("its cosignature does not verify: {e}")))?;
                Ok(Added::Cosigned(line))
            }
            409 if content_type.starts_with("text/x.tlog.size") => {
                let held: u64 = body.trim().parse().map_err(|_| {
                    self.failed(format!("409 with an unreadable size `{}`", body.trim()))
                })?;
                if held > size {
                    return Err(self.refused(format!(
                        "it holds a checkpoint of {held} entries, larger than this one ({size})"
                    )));
                }
                if held == old {
                    return Err(self.refused(format!(
                        "it holds another tree of {held} entries than this ledger"
                    )));
                }
                Ok(Added::Holds(held))
            }
            409 => Err(self.refused(format!(
                "it holds another tree of {size} entries than this ledger"
            ))),
            422 => Err(self.refused(format!(
                "the consistency proof from {old} entries does not match its checkpoint"
            ))),
            status => Err(self.failed(format!("HTTP {status}: {}", first_line(&body)))),
        }
    }

    /// Sends one add-checkpoint request: `(status, content type, body)`.
    fn post(
        &self,
        old: u64,
        proof: &[Hash],
        note: &str,
    ) -> Result<(u16, String, String), WitnessError> {
        let body = request_body(old, proof, note);
        let url = format!("{}/add-checkpoint", self.url);
        let mut response = self
            .agent
            .post(&url)
            .header("content-type", "text/plain; charset=utf-8")
            .send(body.as_bytes())
            .map_err(|e| self.failed(e.to_string()))?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .map_err(|e| self.failed(format!("reading the answer: {e}")))?;
        Ok((response.status().as_u16(), content_type, text))
    }

    /// A failure of this witness for `reason`.
    pub fn failed(&self, reason: impl Into<String>) -> WitnessError {
        WitnessError::Failed {
            witness: self.url.clone(),
            reason: reason.into(),
        }
    }

    fn refused(&self, reason: String) -> WitnessError {
        WitnessError::Refused {
            witness: self.url.clone(),
            reason,
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// The body of a C2SP `add-checkpoint` request: `old <size>`, one base64 proof hash per line,
/// an empty line, then the signed checkpoint.
pub fn request_body(old: u64, proof: &[Hash], note: &str) -> String {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&hash.to_base64());
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note);
    body
}
