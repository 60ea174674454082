//! Trusted time: each checkpoint's hash is timestamped by an RFC 3161 authority — here a
//! throwaway one made with openssl (`openssl ts -reply` behind a small HTTP responder).
//! The token is stored beside the checkpoint and published beside its note; `openssl ts
//! -verify` accepts it; `vellum verify --tsa-cert` checks it, refuses another TSA's
//! certificate, and reports an insider who deleted the tokens. A TSA answering garbage
//! costs a counted failure and nothing else.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::vellum;
use crate::common::backend::{Backend, TestLedger};
use crate::common::records;
use vellum::LedgerOptions;
use vellum::ledger::publish::Publisher;
use vellum::ledger::timestamp::{TimestampAuthority, TsaCertificate};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A CA, a TSA certificate it signs (critical EKU timeStamping, an ECDSA P-256 key or,
/// with `rsa`, RSA 2048) and `ts.cnf`, in `dir`.
fn make_tsa(dir: &Path, name: &str, rsa: bool) {
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ca.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            &format!("/CN={name} CA"),
            "-days",
            "2",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    let key: &[&str] = match rsa {
        true => &["genrsa", "-out", "tsa.key", "2048"],
        false => &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "tsa.key",
        ],
    };
    openssl(dir, key);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "tsa.key",
            "-subj",
            &format!("/CN={name} TSA"),
            "-out",
            "tsa.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "extendedKeyUsage=critical,timeStamping\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "tsa.crt",
            "-extfile",
            "ext.cnf",
        ],
    );
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    std::fs::write(
        dir.join("ts.cnf"),
        format!(
            "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\ndir = {}\nserial = $dir/serial\n\
             crypto_device = builtin\nsigner_cert = $dir/tsa.crt\ncerts = $dir/ca.crt\n\
             signer_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\n\
             digests = sha256\naccuracy = secs:1\nordering = yes\ntsa_name = yes\n\
             ess_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            dir.display()
        ),
    )
    .unwrap();
}

/// Serves `POST /` by running `openssl ts -reply` on the body (or answering `junk`).
fn serve_tsa(dir: PathBuf, junk: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let count = AtomicUsize::new(0);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let answer = match junk {
                true => b"this is not DER".to_vec(),
                false => {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let (query, reply) = (format!("q{n}.tsq"), format!("r{n}.tsr"));
                    std::fs::write(dir.join(&query), &body).unwrap();
                    openssl(
                        &dir,
                        &[
                            "ts",
                            "-reply",
                            "-config",
                            "ts.cnf",
                            "-queryfile",
                            &query,
                            "-out",
                            &reply,
                        ],
                    );
                    std::fs::read(dir.join(&reply)).unwrap()
                }
            };
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/timestamp-reply\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                answer.len()
            );
            let _ = stream.write_all(&answer);
        }
    });
    url
}

#[test]
fn each_checkpoint_is_timestamped_and_openssl_and_verify_accept_the_token() {
    let tsa_dir = tempfile::tempdir().unwrap();
    make_tsa(tsa_dir.path(), "Vellum test", false);
    let url = serve_tsa(tsa_dir.path().to_path_buf(), false);
    let cert = TsaCertificate::load(&tsa_dir.path().join("tsa.crt")).unwrap();
    let test = TestLedger::new(&Backend::Sqlite);
    let published = tempfile::tempdir().unwrap();
    let options = LedgerOptions {
        timestamp: Some(TimestampAuthority::new(&url, Some(cert)).unwrap()),
        publishers: vec![Publisher::Directory(published.path().to_path_buf())],
        ..LedgerOptions::default()
    };
    let ledger = test.open_with(options);
    ledger.append(records("t", 10)).unwrap();
    let (note, failed) = ledger.checkpoint_witnessed().unwrap();
    assert!(failed.is_empty());
    assert_eq!(ledger.effect_counts().timestamps, 1);
    let stored = ledger.timestamps().unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, 10);
    drop(ledger);

    // openssl accepts the published token for SHA-256 of the note.
    let token = published.path().join("checkpoint.10.tsr");
    assert_eq!(std::fs::read(&token).unwrap(), stored[0].1);
    let digest = hex::encode(Sha256::digest(note.as_bytes()));
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-digest", &digest, "-token_in", "-in"])
        .arg(&token)
        .arg("-CAfile")
        .arg(tsa_dir.path().join("ca.crt"))
        .arg("-untrusted")
        .arg(tsa_dir.path().join("tsa.crt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verification: OK"));

    // `vellum verify` checks it with the TSA's certificate.
    let verify = |cert: &Path| {
        let out = vellum()
            .args([
                "verify",
                "--ledger",
                &test.location.to_string(),
                "--tsa-cert",
            ])
            .arg(cert)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stderr) = verify(&tsa_dir.path().join("tsa.crt"));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("1 RFC 3161 timestamp(s) verified; the first 10 entries existed by"),
        "{stderr}"
    );
    // Another TSA's certificate does not verify it.
    let other = tempfile::tempdir().unwrap();
    make_tsa(other.path(), "Other", false);
    let (code, stderr) = verify(&other.path().join("tsa.crt"));
    assert_eq!(code, Some(7), "{stderr}");
    assert!(
        stderr.contains("does not verify with the TSA's key"),
        "{stderr}"
    );
    // An insider who removes the tokens leaves the ledger untimestamped.
    test.insider("DELETE FROM timestamps");
    let (code, stderr) = verify(&tsa_dir.path().join("tsa.crt"));
    assert_eq!(code, Some(7), "{stderr}");
    assert!(stderr.contains("untimestamped"), "{stderr}");
}

#[test]
fn a_tsa_answering_garbage_is_a_counted_failure_and_the_checkpoint_stands() {
    let junk = tempfile::tempdir().unwrap();
    let url = serve_tsa(junk.path().to_path_buf(), true);
    let test = TestLedger::new(&Backend::Sqlite);
    let options = LedgerOptions {
        timestamp: Some(TimestampAuthority::new(&url, None).unwrap()),
        ..LedgerOptions::default()
    };
    let ledger = test.open_with(options);
    ledger.append(records("g", 3)).unwrap();
    let note = ledger.checkpoint().unwrap();
    assert!(note.contains("\n3\n"));
    let counts = ledger.effect_counts();
    assert_eq!((counts.timestamps, counts.timestamp_failures), (0, 1));
    assert!(ledger.timestamps().unwrap().is_empty());
}

#[test]
fn an_rsa_tsa_is_checked_before_its_token_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    make_tsa(dir.path(), "RSA", true);
    let url = serve_tsa(dir.path().to_path_buf(), false);
    let cert = TsaCertificate::load(&dir.path().join("tsa.crt")).unwrap();
    let tsa = TimestampAuthority::new(&url, Some(cert.clone())).unwrap();
    let note = "vellum/test\n1\nAAAA\n";
    let token = tsa.stamp(note).unwrap();
    vellum::ledger::timestamp::verify_token(&token, note, &cert).unwrap();
    let err = vellum::ledger::timestamp::verify_token(&token, "another note", &cert).unwrap_err();
    assert!(err.contains("another checkpoint"), "{err}");
    // Pinned to another TSA, the authority's answer is refused before it is kept.
    let other = tempfile::tempdir().unwrap();
    make_tsa(other.path(), "Other RSA", true);
    let pinned = TsaCertificate::load(&other.path().join("tsa.crt")).unwrap();
    let err = TimestampAuthority::new(&url, Some(pinned))
        .unwrap()
        .stamp(note)
        .unwrap_err();
    assert!(err.contains("does not verify with the TSA's key"), "{err}");
}
