//! Trusted time (RFC 3161): a timestamp authority signs the hash of each checkpoint, which
//! bounds when every entry it covers existed, something the log's own clock cannot prove.
//!
//! The side-effect thread (see [`super::side_effects`]) sends a `TimeStampReq` for
//! SHA-256 of the signed checkpoint note (the log's note, without witness cosignatures)
//! and stores the `TimeStampToken` (a CMS `SignedData` over a `TSTInfo`) beside the
//! checkpoint. `vellum verify --tsa-cert` checks every stored token with the TSA's
//! certificate, and so does `openssl ts -verify -digest <hex> -token_in`.
//!
//! What [`verify_token`] checks: the token is `SignedData` of a `TSTInfo` whose message
//! imprint is SHA-256 of the note; its one signer's signed attributes hold the digest of
//! that `TSTInfo`; and the signature over them verifies with the pinned certificate's key
//! (ECDSA P-256 or RSA PKCS #1 v1.5, with SHA-256). The certificate is pinned, not
//! chain-validated: give the TSA's own certificate.

use std::time::Duration;

use cmpv2::status::PkiStatus;
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::{Int, OctetString};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode};
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::spki::AlgorithmIdentifier;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

/// How long one request to the authority may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from an authority.
const MAX_RESPONSE_BYTES: u64 = 64 << 10;

const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// A timestamp authority the ledger asks.
#[derive(Debug, Clone)]
pub struct TimestampAuthority {
    url: String,
    agent: ureq::Agent,
    /// When set, each token is checked before it is stored.
    certificate: Option<TsaCertificate>,
}

/// A TSA's certificate, pinned: tokens must verify with its key.
#[derive(Debug, Clone)]
pub struct TsaCertificate(Certificate);

impl TsaCertificate {
    /// Parses a PEM (or DER) certificate.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text = String::from_utf8_lossy(bytes);
        let parsed = match text.contains("-----BEGIN CERTIFICATE-----") {
            true => der::DecodePem::from_pem(text.as_bytes()),
            false => Certificate::from_der(bytes),
        };
        parsed
            .map(Self)
            .map_err(|e| format!("not an X.509 certificate: {e}"))
    }

    /// Reads a certificate file.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the TSA certificate {}: {e}", path.display()))?;
        Self::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}

impl TimestampAuthority {
    /// The authority at `url` (`http://` or `https://`), checking its tokens with
    /// `certificate` when given.
    pub fn new(url: &str, certificate: Option<TsaCertificate>) -> Result<Self, String> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "timestamp authority URL `{url}` must start with http:// or https://"
            ));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Ok(Self {
            url: url.to_string(),
            agent,
            certificate,
        })
    }

    /// The authority's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Asks for a token over SHA-256 of `note`; returns the token's DER.
    pub fn stamp(&self, note: &str) -> Result<Vec<u8>, String> {
        let failed = |why: String| format!("timestamp authority {}: {why}", self.url);
        let nonce: u64 = rand::random::<u64>() >> 1;
        let request = TimeStampReq {
            version: TspVersion::V1,
            message_imprint: imprint(note).map_err(failed)?,
            req_policy: None,
            nonce: Some(int(nonce).map_err(failed)?),
            cert_req: true,
            extensions: None,
        };
        let body = request.to_der().map_err(|e| failed(e.to_string()))?;
        let mut response = self
            .agent
            .post(&self.url)
            .header("content-type", "application/timestamp-query")
            .send(&body[..])
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| failed(format!("reading the answer: {e}")))?;
        if status != 200 {
            return Err(failed(format!("HTTP {status}")));
        }
        let answer =
            TimeStampResp::from_der(&bytes).map_err(|e| failed(format!("not a reply: {e}")))?;
        if !matches!(
            answer.status.status,
            PkiStatus::Accepted | PkiStatus::GrantedWithMods
        ) {
            return Err(failed(format!("refused: {:?}", answer.status.status)));
        }
        let token = answer
            .time_stamp_token
            .ok_or_else(|| failed("granted, but no token".into()))?
            .to_der()
            .map_err(|e| failed(e.to_string()))?;
        let info = token_info(&token).map_err(failed)?;
        if info.nonce != Some(int(nonce).map_err(failed)?) {
            return Err(failed("the token's nonce is not the request's".into()));
        }
        if let Some(certificate) = &self.certificate {
            verify_token(&token, note, certificate).map_err(failed)?;
        }
        Ok(token)
    }
}

/// The message imprint of `note`: SHA-256.
fn imprint(note: &str) -> Result<MessageImprint, String> {
    Ok(MessageImprint {
        hash_algorithm: AlgorithmIdentifier {
            oid: ID_SHA256,
            parameters: None,
        },
        hashed_message: OctetString::new(Sha256::digest(note.as_bytes()).to_vec())
            .map_err(|e| e.to_string())?,
    })
}

fn int(n: u64) -> Result<Int, String> {
    Int::new(&n.to_be_bytes()).map_err(|e| e.to_string())
}

/// The signed data of a token and its `TSTInfo` bytes.
fn signed_content(token: &[u8]) -> Result<(SignedData, Vec<u8>), String> {
    let info = ContentInfo::from_der(token).map_err(|e| format!("not a CMS token: {e}"))?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(format!(
            "content type {} is not signed data",
            info.content_type
        ));
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|e| format!("not CMS signed data: {e}"))?;
    if signed.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err("the signed content is not a TSTInfo".into());
    }
    let content = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("the token carries no TSTInfo")?;
    let bytes = OctetString::from_der(&content.to_der().map_err(|e| e.to_string())?)
        .map_err(|e| format!("the TSTInfo is not an octet string: {e}"))?
        .into_bytes();
    Ok((signed, bytes))
}

fn token_info(token: &[u8]) -> Result<TstInfo, String> {
    let (_, bytes) = signed_content(token)?;
    TstInfo::from_der(&bytes).map_err(|e| format!("unreadable TSTInfo: {e}"))
}

/// Checks `token` (DER) for `note` with the TSA's certificate; returns the time the TSA
/// states.
pub fn verify_token(
    token: &[u8],
    note: &str,
    certificate: &TsaCertificate,
) -> Result<Timestamp, String> {
    let (signed, tst_bytes) = signed_content(token)?;
    let info = TstInfo::from_der(&tst_bytes).map_err(|e| format!("unreadable TSTInfo: {e}"))?;
    // Compared by algorithm and hash: TSAs may add NULL parameters to the algorithm.
    let expected = imprint(note)?;
    if info.message_imprint.hash_algorithm.oid != ID_SHA256
        || info.message_imprint.hashed_message != expected.hashed_message
    {
        return Err("the token is for another checkpoint (its message imprint differs)".into());
    }
    let signer = match signed.signer_infos.0.as_slice() {
        [signer] => signer,
        other => return Err(format!("{} signers; a token has one", other.len())),
    };
    if signer.digest_alg.oid != ID_SHA256 {
        return Err(format!("digest {} is not SHA-256", signer.digest_alg.oid));
    }
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or("the signer has no signed attributes")?;
    let digest = attrs
        .iter()
        .find(|a| a.oid == ID_MESSAGE_DIGEST)
        .and_then(|a| a.values.iter().next())
        .ok_or("the signed attributes hold no message digest")?;
    let digest = OctetString::from_der(&digest.to_der().map_err(|e| e.to_string())?)
        .map_err(|e| format!("unreadable message digest: {e}"))?;
    if digest.as_bytes() != Sha256::digest(&tst_bytes).as_slice() {
        return Err("the signed digest is not the TSTInfo's".into());
    }
    let message = attrs.to_der().map_err(|e| e.to_string())?;
    verify_signature(certificate, &message, signer.signature.as_bytes())?;
    let unix = info.gen_time.to_unix_duration();
    Timestamp::from_second(i64::try_from(unix.as_secs()).unwrap_or(i64::MAX))
        .map_err(|e| format!("genTime: {e}"))
}

/// Verifies `signature` over `message` (SHA-256) with the certificate's key.
fn verify_signature(
    certificate: &TsaCertificate,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let spki = &certificate.0.tbs_certificate.subject_public_key_info;
    let key = spki.subject_public_key.raw_bytes();
    let bad = |e: String| format!("the signature does not verify with the TSA's key: {e}");
    match spki.algorithm.oid {
        ID_EC_PUBLIC_KEY => {
            use p256::ecdsa::signature::Verifier;
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                .map_err(|e| format!("the certificate's EC key is not P-256: {e}"))?;
            let signature =
                p256::ecdsa::Signature::from_der(signature).map_err(|e| bad(e.to_string()))?;
            key.verify(message, &signature)
                .map_err(|e| bad(e.to_string()))
        }
        ID_RSA_ENCRYPTION => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            use rsa::signature::Verifier;
            let key = rsa::RsaPublicKey::from_pkcs1_der(key)
                .map_err(|e| format!("the certificate's RSA key: {e}"))?;
            let key = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(key);
            let signature =
                rsa::pkcs1v15::Signature::try_from(signature).map_err(|e| bad(e.to_string()))?;
            key.verify(message, &signature)
                .map_err(|e| bad(e.to_string()))
        }
        other => Err(format!(
            "the certificate's key type {other} is not supported (ECDSA P-256 or RSA)"
        )),
    }
}
