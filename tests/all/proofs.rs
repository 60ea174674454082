//! Merkle proofs against a naive RFC 9162 reference for every tree size up to 64 (and every
//! proof of a small log on each storage backend), known-answer vectors for the tree hashing,
//! and robustness of the checkpoint parser and proof verifiers against arbitrary input (the
//! fuzz targets in `fuzz/` explore the same functions longer).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

per_backend!(every_proof_of_a_small_log_matches_the_reference);

/// Every inclusion and consistency proof of a log of 24 entries, read from the backend,
/// equals the reference's and verifies against the signed checkpoints.
fn every_proof_of_a_small_log_matches_the_reference(backend: common::backend::Backend) {
    const N: u64 = 24;
    let test = common::backend::TestLedger::new(&backend);
    let ledger = test.open();
    let mut checkpoints = Vec::new();
    for i in 0..N {
        ledger.append(records(&format!("s{i}"), 1)).unwrap();
        let note = ledger.checkpoint().unwrap();
        checkpoints.push(verify_checkpoint(&note, ledger.verifier_key()).unwrap());
    }
    let leaves: Vec<Hash> = test
        .reader()
        .entries(0, N)
        .unwrap()
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    for new in 1..=N {
        let cp_new = &checkpoints[new as usize - 1];
        assert_eq!(cp_new.root, mth(&leaves[..new as usize]), "root of {new}");
        for seq in 0..new {
            let (inclusion, _) = ledger.prove_inclusion(seq, Some(new)).unwrap();
            assert_eq!(inclusion.path, path(seq as usize, &leaves[..new as usize]));
            inclusion.verify(cp_new).unwrap();
        }
        for old in 1..=new {
            let consistency = ledger.prove_consistency(old, new).unwrap();
            assert_eq!(
                consistency.path,
                proof(old as usize, &leaves[..new as usize])
            );
            consistency
                .verify(&checkpoints[old as usize - 1], cp_new)
                .unwrap();
        }
    }
}

use crate::common;
use std::sync::OnceLock;

use common::{new_ledger, records};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use vellum::ledger::Hash;
use vellum::ledger::checkpoint::{VerifiedCheckpoint, verify_checkpoint};
use vellum::ledger::merkle::{ConsistencyProof, InclusionProof};
use vellum::ledger::store::StoreReader;
use vellum::ledger::store::sqlite::SqliteStore;
use vellum::{Ledger, LedgerOptions};

const MAX_SIZE: u64 = 64;

/// RFC 9162 leaf hash: SHA-256(0x00 ‖ data), computed here independently of the library.
fn record_hash(data: &[u8]) -> Hash {
    Hash(
        Sha256::new()
            .chain_update([0u8])
            .chain_update(data)
            .finalize()
            .into(),
    )
}

/// RFC 9162 node hash: SHA-256(0x01 ‖ left ‖ right).
fn node_hash(left: Hash, right: Hash) -> Hash {
    Hash(
        Sha256::new()
            .chain_update([1u8])
            .chain_update(left.0)
            .chain_update(right.0)
            .finalize()
            .into(),
    )
}

/// RFC 9162 section 2.1.1: the Merkle Tree Hash.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash(Sha256::digest(b"").into()),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(mth(&leaves[..k]), mth(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than n.
fn split(n: usize) -> usize {
    1usize << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// RFC 9162 section 2.1.3.1: the inclusion path of leaf m.
fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

/// RFC 9162 section 2.1.4.1: the consistency proof of the first m leaves.
fn proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    fn subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if complete {
                Vec::new()
            } else {
                vec![mth(leaves)]
            };
        }
        let k = split(n);
        if m <= k {
            let mut p = subproof(m, &leaves[..k], complete);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = subproof(m - k, &leaves[k..], false);
            p.push(mth(&leaves[..k]));
            p
        }
    }
    subproof(m, leaves, true)
}

/// One ledger of MAX_SIZE entries with a checkpoint at every size, built once.
struct Fixture {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    leaves: Vec<Hash>,
    checkpoints: Vec<VerifiedCheckpoint>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (dir, path) = new_ledger();
        let ledger = Ledger::open(&path, LedgerOptions::default()).unwrap();
        for i in 0..MAX_SIZE {
            ledger.append(records(&format!("p{i}"), 1)).unwrap();
            ledger.checkpoint().unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let leaves = store
            .entries(0, MAX_SIZE)
            .unwrap()
            .into_iter()
            .map(|(_, h)| h)
            .collect();
        let checkpoints: Vec<_> = ledger
            .checkpoints()
            .unwrap()
            .into_iter()
            .map(|(cp, _)| cp)
            .collect();
        assert_eq!(checkpoints.len() as u64, MAX_SIZE);
        Fixture {
            _dir: dir,
            ledger,
            leaves,
            checkpoints,
        }
    })
}

#[test]
fn known_answer_vectors_of_the_tree_hash() {
    // The eight leaves of the RFC 6962 test data (certificate-transparency-go).
    let inputs: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    let leaves: Vec<Hash> = inputs
        .iter()
        .map(|i| record_hash(&hex::decode(i).unwrap()))
        .collect();
    for (n, root) in roots.iter().enumerate() {
        assert_eq!(hex::encode(mth(&leaves[..=n]).0), *root, "size {}", n + 1);
    }
}

#[test]
fn the_ledger_tree_matches_the_reference_at_every_size() {
    let f = fixture();
    for cp in &f.checkpoints {
        assert_eq!(
            cp.root,
            mth(&f.leaves[..cp.size as usize]),
            "size {}",
            cp.size
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn inclusion_proofs_match_the_reference(size in 1..=MAX_SIZE, seq_seed in any::<u64>()) {
        let f = fixture();
        let seq = seq_seed % size;
        let (proof_, _) = f.ledger.prove_inclusion(seq, Some(size)).unwrap();
        prop_assert_eq!(&proof_.path, &path(seq as usize, &f.leaves[..size as usize]));
        let cp = &f.checkpoints[size as usize - 1];
        prop_assert!(proof_.verify(cp).is_ok());
        // Any single changed hash breaks it.
        if !proof_.path.is_empty() {
            let mut bad = proof_.clone();
            let i = (seq_seed as usize / 7) % bad.path.len();
            bad.path[i].0[0] ^= 1;
            prop_assert!(bad.verify(cp).is_err());
        }
        let mut wrong_leaf = proof_.clone();
        wrong_leaf.entry = None;
        wrong_leaf.leaf_hash.0[31] ^= 1;
        prop_assert!(wrong_leaf.verify(cp).is_err());
    }

    #[test]
    fn consistency_proofs_match_the_reference(a in 1..=MAX_SIZE, b in 1..=MAX_SIZE) {
        let f = fixture();
        let (old, new) = (a.min(b), a.max(b));
        let proof_ = f.ledger.prove_consistency(old, new).unwrap();
        prop_assert_eq!(&proof_.path, &proof(old as usize, &f.leaves[..new as usize]));
        let (cp_old, cp_new) = (&f.checkpoints[old as usize - 1], &f.checkpoints[new as usize - 1]);
        prop_assert!(proof_.verify(cp_old, cp_new).is_ok());
        if old != new {
            let mut bad = proof_.clone();
            bad.path[0].0[5] ^= 0x80;
            prop_assert!(bad.verify(cp_old, cp_new).is_err());
        }
    }

    #[test]
    fn checkpoint_parser_survives_arbitrary_input(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let f = fixture();
        let text = String::from_utf8_lossy(&bytes);
        let _ = verify_checkpoint(&text, f.ledger.verifier_key());
        let _ = verify_checkpoint(&format!("vellum/test\n{text}"), &text);
    }

    #[test]
    fn proof_verifiers_survive_arbitrary_proofs(
        seq in any::<u64>(),
        size in any::<u64>(),
        other in any::<u64>(),
        hashes in proptest::collection::vec(any::<[u8; 32]>(), 0..80),
    ) {
        let f = fixture();
        let cp = VerifiedCheckpoint { size, ..f.checkpoints[10].clone() };
        let old = VerifiedCheckpoint { size: other, ..f.checkpoints[3].clone() };
        let path: Vec<Hash> = hashes.into_iter().map(Hash).collect();
        let inclusion = InclusionProof { seq, tree_size: size, leaf_hash: Hash([0; 32]), path: path.clone(), entry: None };
        prop_assert!(inclusion.verify(&cp).is_err());
        let consistency = ConsistencyProof { old_size: other, new_size: size, path };
        let _ = consistency.verify(&old, &cp);
    }
}
