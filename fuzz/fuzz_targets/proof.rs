//! The proof verifiers must reject, never panic on, any proof bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vellum::ledger::checkpoint::VerifiedCheckpoint;
use vellum::ledger::merkle::{ConsistencyProof, InclusionProof};

fuzz_target!(|data: &[u8]| {
    let checkpoint = |size| VerifiedCheckpoint {
        origin: "vellum/a".into(),
        size,
        root: root_from(data),
        time: None,
    };
    if let Ok(proof) = serde_json::from_slice::<InclusionProof>(data) {
        let _ = proof.verify(&checkpoint(proof.tree_size));
    }
    if let Ok(proof) = serde_json::from_slice::<ConsistencyProof>(data) {
        let _ = proof.verify(&checkpoint(proof.old_size), &checkpoint(proof.new_size));
    }
});

/// Some root derived from the input, so both matching and mismatching roots occur.
fn root_from(data: &[u8]) -> vellum::ledger::merkle::Hash {
    let mut root = [0u8; 32];
    for (i, b) in data.iter().take(32).enumerate() {
        root[i] = *b;
    }
    vellum::ledger::merkle::Hash(root)
}
