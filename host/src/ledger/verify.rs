//! `vellum verify`: recompute every leaf and the tree, check every checkpoint, and report
//! the first bad sequence number with its class.
//!
//! Each entry has three witnesses: its row (recomputed leaf `R`), the leaf hash stored in
//! the row (`L`), and the tree's stored leaf (`T`). Comparing them classifies tampering:
//! a row whose `L` is the tree's next leaf and vice versa was *reordered*; `L[i] = T[i+1]`
//! means a row was *deleted* and the rest renumbered, `L[i+1] = T[i]` that one was
//! *inserted*; any other mismatch is a *modified* entry. Gaps in the sequence are
//! deletions, rows past the tree are insertions, and a checkpoint larger than the ledger
//! means it was *truncated after a checkpoint*. Recomputing the whole tree from the rows and
//! comparing it with every signed checkpoint catches edits that also rewrote the hashes.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tlog_tiles::tlog::{self, stored_hash_index};

use super::LedgerError;
use super::checkpoint::{CheckpointError, VerifiedCheckpoint, verify_checkpoint};
use super::content::KeyId;
use super::cosignature::CosignatureVerifier;
use super::entry::Entry;
use super::erasure::{ERASURE_KIND, ErasureRecord};
use super::hash::Hash;
use super::merkle::StoreHashes;
use super::store::{StoreError, StoreReader};
use super::timestamp::{TsaCertificate, verify_token};
use super::witness_policy::WitnessPolicy;

/// Entries read per batch while verifying.
const CHUNK: u64 = 4_096;
/// Findings kept in a report (the first one is what matters).
const MAX_FINDINGS: usize = 100;

/// The kind of damage found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TamperClass {
    /// An entry's content or hashes were changed.
    Modified,
    /// An entry was removed.
    Deleted,
    /// An entry was added that the tree does not contain.
    Inserted,
    /// Entries were swapped or moved.
    Reordered,
    /// Entries covered by a signed checkpoint are gone from the end.
    TruncatedAfterCheckpoint,
    /// A checkpoint's signature or format is bad.
    BadCheckpoint,
    /// The storage itself is damaged or unreadable.
    Corrupted,
    /// The ledger's checkpoints are not signed by the trusted key (`--trusted-key`): another
    /// key, or a ledger replaced by one signed with its own new key.
    WrongKey,
    /// The ledger is smaller than a trusted checkpoint saved earlier: entries it covered are
    /// gone.
    RolledBack,
    /// The ledger's first entries differ from those a trusted checkpoint saved earlier
    /// covers: its history was rewritten.
    Forked,
    /// No checkpoint carries a valid cosignature by a witness `verify` was told to require
    /// (`--witness-key`): the witness never saw this ledger's history, or the cosignatures
    /// were removed.
    Unwitnessed,
    /// An entry's content (or its data key) is gone, and no signed `vellum.erasure` record
    /// covers it: removed behind the ledger's back.
    ErasedWithoutRecord,
    /// No checkpoint carries an RFC 3161 timestamp that the TSA certificate `verify` was
    /// given (`--tsa-cert`) verifies.
    Untimestamped,
}

/// What a verification trusts.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The verifier key the ledger's checkpoints must be signed with.
    pub key: String,
    /// Whether `key` came from outside the ledger (not the `.pub` file beside it): a
    /// checkpoint whose signature does not verify under it is then [`TamperClass::WrongKey`].
    pub trusted_key: bool,
    /// A checkpoint saved earlier, outside the ledger, already verified with `key`: the
    /// ledger must be at least as large and its first entries must have its root.
    pub checkpoint: Option<VerifiedCheckpoint>,
    /// Witnesses whose cosignature some stored checkpoint must carry.
    pub witnesses: Vec<CosignatureVerifier>,
    /// A quorum some stored checkpoint's cosignatures must meet.
    pub policy: Option<WitnessPolicy>,
    /// A timestamp authority's certificate: the stored RFC 3161 tokens must verify with
    /// it, and at least one must.
    pub tsa: Option<TsaCertificate>,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The class of damage.
    pub class: TamperClass,
    /// The first sequence number affected, when it is known.
    pub seq: Option<u64>,
    /// What exactly was seen.
    pub detail: String,
}

/// The result of a verification run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Entries in the ledger.
    pub size: u64,
    /// Entries whose leaf was recomputed.
    pub entries_checked: u64,
    /// Entries whose content was erased (their leaves are checked all the same).
    pub entries_erased: u64,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints_checked: usize,
    /// For each required witness (`name+key id`), the largest checkpoint it cosigned; the
    /// entries up to there are vouched for by that witness too.
    pub witnessed: Vec<(String, u64)>,
    /// With a TSA certificate: each checkpoint whose timestamp verified, and the time the
    /// TSA states (every entry it covers existed by then), by size.
    pub timestamped: Vec<(u64, jiff::Timestamp)>,
    /// Problems, in order of discovery; empty when the ledger is intact.
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    /// Whether nothing was found.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// The finding with the lowest sequence number (or the first without one).
    pub fn first(&self) -> Option<&Finding> {
        self.findings
            .iter()
            .min_by_key(|f| f.seq.unwrap_or(u64::MAX))
    }

    fn find(&mut self, class: TamperClass, seq: Option<u64>, detail: String) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(Finding { class, seq, detail });
        }
    }
}

/// The root of the empty tree: SHA-256 of nothing.
const EMPTY_HASH: Hash = Hash(tlog::EMPTY_HASH.0);

/// An RFC 9162 interior node: SHA-256(0x01 ‖ left ‖ right).
fn node_hash(left: Hash, right: Hash) -> Hash {
    tlog::node_hash(left.into(), right.into()).into()
}

/// A compact Merkle frontier: the roots of the perfect subtrees of the leaves seen so far,
/// largest first. Gives the RFC 9162 root of any prefix in O(log n) memory.
#[derive(Default)]
struct Frontier {
    /// (height, hash) of each perfect subtree.
    nodes: Vec<(u32, Hash)>,
    leaves: u64,
}

impl Frontier {
    fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.nodes.last() {
            if height != node.0 {
                break;
            }
            self.nodes.pop();
            node = (height + 1, node_hash(left, node.1));
        }
        self.nodes.push(node);
        self.leaves += 1;
    }

    fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(&(_, mut hash)) = iter.next() else {
            return EMPTY_HASH;
        };
        for &(_, left) in iter {
            hash = node_hash(left, hash);
        }
        hash
    }
}

/// Verifies the whole ledger (or, with `range`, the entries `from..to` by inclusion proofs
/// against the latest checkpoint). `progress` is called with (done, total) entries.
pub fn verify(
    store: &dyn StoreReader,
    vkey: &str,
    range: Option<(u64, u64)>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, LedgerError> {
    let anchor = Anchor {
        key: vkey.to_string(),
        trusted_key: false,
        checkpoint: None,
        witnesses: Vec::new(),
        policy: None,
        tsa: None,
    };
    verify_anchored(store, &anchor, range, progress)
}

/// Like [`verify`], against an [`Anchor`] kept outside the ledger: a trusted key (so a
/// ledger re-signed with another key is `wrong-key`) and a checkpoint saved earlier (so a
/// smaller ledger is `rolled-back` and one whose first entries differ is `forked`).
pub fn verify_anchored(
    store: &dyn StoreReader,
    anchor: &Anchor,
    range: Option<(u64, u64)>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, LedgerError> {
    let mut report = VerifyReport {
        size: store.size()?,
        ..VerifyReport::default()
    };
    let notes = store.checkpoints()?;
    let checkpoints = checked_checkpoints(&notes, anchor, &mut report);
    check_cosignatures(store, anchor, &notes, &checkpoints, &mut report)?;
    if let Some(tsa) = &anchor.tsa {
        check_timestamps(store, tsa, &notes, &checkpoints, &mut report)?;
    }
    let size = report.size;
    let trusted = anchor.checkpoint.as_ref();
    if let Some(t) = trusted {
        if t.size > size {
            report.find(
                TamperClass::RolledBack,
                Some(size),
                format!(
                    "the ledger has {size} entries but the trusted checkpoint covers {}",
                    t.size
                ),
            );
        } else if range.is_some() || t.size == 0 {
            // No recomputed frontier in a range check: compare the stored tree.
            let root = match crate::ledger::merkle::root(store, t.size) {
                Ok(root) => Some(root),
                Err(StoreError::Invalid(_)) => None,
                Err(e) => return Err(e.into()),
            };
            check_trusted_root(&mut report, t, root);
        }
    }
    if let Some(cp) = checkpoints.iter().rev().find(|cp| cp.size > size) {
        report.find(
            TamperClass::TruncatedAfterCheckpoint,
            Some(size),
            format!(
                "the ledger has {size} entries but a signed checkpoint covers {}",
                cp.size
            ),
        );
    }
    let (from, to) = range.map_or((0, size), |(f, t)| (f.min(size), t.min(size)));
    let mut frontier = range.is_none().then(Frontier::default);
    let mut next_checkpoint = checkpoints.iter().filter(|cp| cp.size <= size).peekable();
    let mut expected = from;
    let mut start = from;
    let mut erasures = Erasures::default();
    while start < to {
        let end = (start + CHUNK).min(to);
        let rows = store.entries(start, end)?;
        // Tree leaves for this chunk plus one look-ahead, where the tree has them.
        let mut tree = tree_leaves(store, start, end)?;
        tree.extend(tree_leaves(store, end, end + 1)?);
        let leaf_column: Vec<(u64, Hash)> = rows.iter().map(|(e, l)| (e.seq, *l)).collect();
        for (k, (entry, stored_leaf)) in rows.iter().enumerate() {
            if entry.seq > expected {
                report.find(
                    TamperClass::Deleted,
                    Some(expected),
                    format!("entries {expected}..{} are missing", entry.seq),
                );
            }
            expected = entry.seq + 1;
            let i = entry.seq;
            let recomputed = entry.leaf_hash();
            let t = |j: u64| match tree.get(j.wrapping_sub(start) as usize).copied().flatten() {
                Some(leaf) => Ok(Some(leaf)),
                None => tree_leaf(store, j),
            };
            let next_leaf = leaf_column
                .get(k + 1)
                .filter(|(s, _)| *s == i + 1)
                .map(|(_, l)| *l);
            let (tree_i, tree_next) = (t(i)?, t(i + 1)?);
            match tree_i {
                None => report.find(
                    TamperClass::Inserted,
                    Some(i),
                    format!("entry {i} is not in the Merkle tree"),
                ),
                Some(tree_hash) if recomputed == tree_hash && *stored_leaf == tree_hash => {}
                Some(tree_hash) => {
                    let class = if Some(*stored_leaf) == tree_next && next_leaf == Some(tree_hash) {
                        TamperClass::Reordered
                    } else if Some(*stored_leaf) == tree_next {
                        TamperClass::Deleted
                    } else if next_leaf == Some(tree_hash) {
                        TamperClass::Inserted
                    } else {
                        TamperClass::Modified
                    };
                    report.find(
                        class,
                        Some(i),
                        format!("entry {i} does not match the tree's leaf {i}"),
                    );
                }
            }
            if let Some(frontier) = frontier.as_mut() {
                frontier.push(recomputed);
                while let Some(cp) = next_checkpoint.next_if(|cp| cp.size == frontier.leaves) {
                    check_root(&mut report, cp, frontier.root());
                }
                if let Some(t) = trusted.filter(|t| t.size == frontier.leaves) {
                    check_trusted_root(&mut report, t, Some(frontier.root()));
                }
            } else if let Some(cp) = checkpoints.iter().rev().find(|cp| cp.size > i) {
                check_inclusion(store, &mut report, cp, i, recomputed);
            }
            erasures.note(entry, &mut report);
            report.entries_checked += 1;
        }
        progress(end - from, to - from);
        start = end;
    }
    if expected < to {
        report.find(
            TamperClass::Deleted,
            Some(expected),
            format!("entries {expected}..{to} are missing"),
        );
    }
    let signed = checkpoints.iter().map(|cp| cp.size).max().unwrap_or(0);
    erasures.check(range.is_none(), signed, &mut report);
    if range.is_none() {
        // A tree that goes on past the last row means rows were cut off the end.
        if tree_leaf(store, size)?.is_some() {
            let covered = checkpoints.iter().any(|cp| cp.size > size);
            if !covered {
                report.find(
                    TamperClass::Deleted,
                    Some(size),
                    format!("the tree has leaves past the last entry {size}"),
                );
            }
        }
        // Checkpoints of size 0 need no leaves.
        for cp in next_checkpoint.filter(|cp| cp.size == 0) {
            check_root(&mut report, cp, EMPTY_HASH);
        }
    }
    Ok(report)
}

/// The erased entries seen and the erasure records that must cover them.
#[derive(Default)]
struct Erasures {
    /// `(seq, key, the record it names)` of each erased entry.
    erased: Vec<(u64, Option<KeyId>, Option<u64>)>,
    /// The erasure records, by sequence number.
    records: HashMap<u64, ErasureRecord>,
}

impl Erasures {
    /// Notes an entry: erased, an erasure record, or content that does not open.
    fn note(&mut self, entry: &Entry, report: &mut VerifyReport) {
        let Some(seal) = &entry.seal else { return };
        let public = entry.stored.as_ref().is_some_and(|s| s.key.is_none());
        match (&seal.erased, &seal.salt) {
            (Some(erased), _) => {
                report.entries_erased += 1;
                self.erased.push((entry.seq, erased.key, erased.record));
            }
            (None, None) => {
                if let Some(damage) = entry.damage() {
                    report.find(
                        TamperClass::Modified,
                        Some(entry.seq),
                        format!("entry {}: {damage}", entry.seq),
                    );
                }
            }
            (None, Some(_)) if public && entry.event.kind == ERASURE_KIND => {
                if let Ok(record) = serde_json::from_str(entry.event.payload.as_str()) {
                    self.records.insert(entry.seq, record);
                }
            }
            (None, Some(_)) => {}
        }
    }

    /// Every erased entry must name a `vellum.erasure` record that covers it and that a
    /// signed checkpoint (of `signed` entries) covers. With `whole` unset (a range check)
    /// only entries that name no record are reported: the record may be out of range.
    fn check(&self, whole: bool, signed: u64, report: &mut VerifyReport) {
        for &(seq, key, record) in &self.erased {
            let problem = match record {
                None => Some("no erasure record covers it".to_string()),
                Some(_) if !whole => None,
                Some(r) => match self.records.get(&r) {
                    None => Some(format!(
                        "entry {r}, named as its erasure record, is not one"
                    )),
                    Some(rec) if !rec.covers(seq, key.as_ref()) => {
                        Some(format!("the erasure record {r} does not cover it"))
                    }
                    Some(_) if r >= signed => Some(format!(
                        "its erasure record {r} is not covered by a signed checkpoint"
                    )),
                    Some(_) => None,
                },
            };
            if let Some(problem) = problem {
                report.find(
                    TamperClass::ErasedWithoutRecord,
                    Some(seq),
                    format!("entry {seq}: content or data key removed, but {problem}"),
                );
            }
        }
    }
}

/// Verifies every stored checkpoint's signature; bad ones become findings.
fn checked_checkpoints(
    notes: &[(u64, String)],
    anchor: &Anchor,
    report: &mut VerifyReport,
) -> Vec<VerifiedCheckpoint> {
    let mut good = Vec::new();
    for &(size, ref note) in notes {
        match verify_checkpoint(note, &anchor.key) {
            Ok(cp) if cp.size == size => good.push(cp),
            Ok(cp) => report.find(
                TamperClass::BadCheckpoint,
                Some(size.min(cp.size)),
                format!("checkpoint stored under size {size} says {}", cp.size),
            ),
            Err(e @ CheckpointError::BadSignature(_)) if anchor.trusted_key => report.find(
                TamperClass::WrongKey,
                Some(size),
                format!("checkpoint {size} is not signed by the trusted key: {e}"),
            ),
            Err(e) => report.find(
                TamperClass::BadCheckpoint,
                Some(size),
                format!("checkpoint {size}: {e}"),
            ),
        }
    }
    report.checkpoints_checked = good.len();
    good
}

/// Checks the stored cosignatures of every required witness: each one of its lines must
/// verify on the checkpoint of its size, and at least one must exist. Valid cosignatures
/// sit on checkpoints whose roots the rest of `verify` checks against the entries.
fn check_cosignatures(
    store: &dyn StoreReader,
    anchor: &Anchor,
    notes: &[(u64, String)],
    checkpoints: &[VerifiedCheckpoint],
    report: &mut VerifyReport,
) -> Result<(), LedgerError> {
    if anchor.witnesses.is_empty() && anchor.policy.is_none() {
        return Ok(());
    }
    let cosignatures = store.cosignatures(None)?;
    if let Some(policy) = &anchor.policy {
        check_quorum(policy, notes, checkpoints, &cosignatures, report);
    }
    let notes: HashMap<u64, &str> = notes.iter().map(|(s, n)| (*s, n.as_str())).collect();
    let checked: HashSet<u64> = checkpoints.iter().map(|cp| cp.size).collect();
    for witness in &anchor.witnesses {
        let prefix = format!("— {} ", witness.name());
        let mut largest = None;
        for (size, line) in cosignatures.iter().filter(|(_, l)| l.starts_with(&prefix)) {
            let note = notes.get(size);
            let checked = checked.contains(size);
            match note.map(|note| witness.verify_line(note, line)) {
                Some(Ok(_)) if checked => largest = largest.max(Some(*size)),
                Some(Ok(_)) => {}
                Some(Err(e)) => report.find(
                    TamperClass::BadCheckpoint,
                    Some(*size),
                    format!(
                        "the cosignature of checkpoint {size} by {}: {e}",
                        witness.id()
                    ),
                ),
                None => report.find(
                    TamperClass::BadCheckpoint,
                    Some(*size),
                    format!(
                        "a cosignature by {} of checkpoint {size}, which is not stored",
                        witness.id()
                    ),
                ),
            }
        }
        match largest {
            Some(size) => report.witnessed.push((witness.id(), size)),
            None => report.find(
                TamperClass::Unwitnessed,
                None,
                format!(
                    "no checkpoint carries a valid cosignature by witness {}",
                    witness.id()
                ),
            ),
        }
    }
    Ok(())
}

/// Checks every stored timestamp token against its checkpoint's note with the TSA's
/// certificate; a bad one is a [`TamperClass::BadCheckpoint`], none that verifies
/// [`TamperClass::Untimestamped`].
fn check_timestamps(
    store: &dyn StoreReader,
    tsa: &TsaCertificate,
    notes: &[(u64, String)],
    checkpoints: &[VerifiedCheckpoint],
    report: &mut VerifyReport,
) -> Result<(), LedgerError> {
    let notes: HashMap<u64, &str> = notes.iter().map(|(s, n)| (*s, n.as_str())).collect();
    let checked: HashSet<u64> = checkpoints.iter().map(|cp| cp.size).collect();
    for (size, token) in store.timestamps()? {
        match notes.get(&size).map(|note| verify_token(&token, note, tsa)) {
            Some(Ok(time)) if checked.contains(&size) => report.timestamped.push((size, time)),
            Some(Ok(_)) => {}
            Some(Err(e)) => report.find(
                TamperClass::BadCheckpoint,
                Some(size),
                format!("the timestamp of checkpoint {size}: {e}"),
            ),
            None => report.find(
                TamperClass::BadCheckpoint,
                Some(size),
                format!("a timestamp of checkpoint {size}, which is not stored"),
            ),
        }
    }
    if report.timestamped.is_empty() {
        report.find(
            TamperClass::Untimestamped,
            None,
            "no checkpoint carries a timestamp that the TSA's certificate verifies".into(),
        );
    }
    Ok(())
}

/// Finds the largest verified checkpoint whose stored cosignatures meet `policy`'s quorum;
/// none is [`TamperClass::Unwitnessed`], naming what the newest checkpoint lacks.
fn check_quorum(
    policy: &WitnessPolicy,
    notes: &[(u64, String)],
    checkpoints: &[VerifiedCheckpoint],
    cosignatures: &[(u64, String)],
    report: &mut VerifyReport,
) {
    let checked: HashSet<u64> = checkpoints.iter().map(|cp| cp.size).collect();
    let mut by_size: HashMap<u64, Vec<String>> = HashMap::new();
    for (size, line) in cosignatures {
        by_size.entry(*size).or_default().push(line.clone());
    }
    let mut newest = None;
    for (size, note) in notes.iter().rev().filter(|(s, _)| checked.contains(s)) {
        let lines = by_size.get(size).map_or(&[][..], Vec::as_slice);
        let check = policy.check(note, lines);
        if check.met {
            report
                .witnessed
                .push((format!("quorum {}", policy.describe()), *size));
            return;
        }
        newest.get_or_insert((*size, check));
    }
    let detail = match newest {
        Some((size, check)) => format!(
            "no checkpoint meets the witness quorum {}; the newest, of {size} entries, is              cosigned by [{}] and lacks [{}]",
            policy.describe(),
            check.cosigned.join(", "),
            check.missing.join(", ")
        ),
        None => format!(
            "no checkpoint meets the witness quorum {}: there is no valid checkpoint",
            policy.describe()
        ),
    };
    report.find(TamperClass::Unwitnessed, None, detail);
}

/// The tree's stored leaf `i`, if it exists and is readable.
fn tree_leaf(store: &dyn StoreReader, i: u64) -> Result<Option<Hash>, StoreError> {
    Ok(tree_leaves(store, i, i + 1)?.pop().flatten())
}

/// The tree's stored leaves `from..to`, each `None` where it is missing or unreadable (a
/// finding); a storage error is an error, never a finding. One read for the range, one per
/// leaf only when some leaf is missing.
fn tree_leaves(
    store: &dyn StoreReader,
    from: u64,
    to: u64,
) -> Result<Vec<Option<Hash>>, StoreError> {
    let indexes: Vec<u64> = (from..to).map(|i| stored_hash_index(0, i)).collect();
    match store.read_hashes(&indexes) {
        Ok(hashes) if hashes.len() == indexes.len() => Ok(hashes.into_iter().map(Some).collect()),
        Ok(_) | Err(StoreError::Invalid(_)) => indexes
            .iter()
            .map(|&index| match store.read_hashes(&[index]) {
                Ok(mut one) => Ok(one.pop()),
                Err(StoreError::Invalid(_)) => Ok(None),
                Err(e) => Err(e),
            })
            .collect(),
        Err(e) => Err(e),
    }
}

/// Compares the ledger's tree of the trusted checkpoint's size (`None`: unreadable) with it.
fn check_trusted_root(report: &mut VerifyReport, trusted: &VerifiedCheckpoint, root: Option<Hash>) {
    if root != Some(trusted.root) {
        report.find(
            TamperClass::Forked,
            None,
            format!(
                "the ledger's first {} entries do not have the trusted checkpoint's root",
                trusted.size
            ),
        );
    }
}

fn check_root(report: &mut VerifyReport, cp: &VerifiedCheckpoint, root: Hash) {
    if root != cp.root {
        report.find(
            TamperClass::Modified,
            None,
            format!(
                "the entries' recomputed tree does not match the signed checkpoint of size {}",
                cp.size
            ),
        );
    }
}

fn check_inclusion(
    store: &dyn StoreReader,
    report: &mut VerifyReport,
    cp: &VerifiedCheckpoint,
    i: u64,
    leaf: Hash,
) {
    let reader = StoreHashes::new(store);
    let verified = tlog::prove_record(cp.size, i, &reader)
        .and_then(|path| tlog::check_record(&path, cp.size, cp.root.into(), i, leaf.into()));
    if verified.is_err() {
        report.find(
            TamperClass::Modified,
            Some(i),
            format!(
                "entry {i} is not included in the signed checkpoint of size {}",
                cp.size
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlog_tiles::tlog::record_hash;

    /// RFC 9162 MTH, by its recursive definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_HASH,
            1 => leaves[0],
            n => {
                // The largest power of two smaller than n.
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node_hash(mth(&leaves[..k]), mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn frontier_root_matches_the_recursive_definition() {
        let leaves: Vec<Hash> = (0..70u32)
            .map(|i| record_hash(&i.to_be_bytes()).into())
            .collect();
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), EMPTY_HASH);
        for (n, leaf) in leaves.iter().enumerate() {
            frontier.push(*leaf);
            assert_eq!(frontier.root(), mth(&leaves[..=n]), "size {}", n + 1);
        }
    }
}
