//! A small PEM reader (RFC 7468 "strict" form plus whitespace tolerance).
//!
//! Kept hand-written rather than rustls-pki-types' reader because that one
//! skips labels it does not know: `RSA PUBLIC KEY` (PKCS#1 public keys, which
//! this crate accepts) and `ENCRYPTED PRIVATE KEY` / `Proc-Type` encrypted keys
//! (which must be refused with a clear [`PemError::Encrypted`], not "no key").
//!
//! Decoded bytes live in [`Zeroizing`] buffers, so private key DER is wiped
//! when dropped. Panic-free on any input.

use base64::Engine as _;
use zeroize::Zeroizing;

/// Why PEM text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// No `-----BEGIN <label>-----` line with an accepted label was found.
    #[error("PEM: no block labelled {expected}")]
    NoBlock {
        /// The accepted label(s).
        expected: &'static str,
    },
    /// A BEGIN line without a matching END line.
    #[error("PEM: block {label:?} has no matching END line")]
    MissingEnd {
        /// The block's label.
        label: String,
    },
    /// A BEGIN line that is cut off or malformed.
    #[error("PEM: malformed BEGIN line")]
    MalformedBegin,
    /// Encrypted PEM (`Proc-Type`/`DEK-Info` headers or `ENCRYPTED PRIVATE KEY`).
    #[error("PEM: encrypted keys are not supported; decrypt it first (e.g. `openssl pkey`)")]
    Encrypted,
    /// The block's body is not valid Base64.
    #[error("PEM: block {label:?} is not valid Base64")]
    Base64 {
        /// The block's label.
        label: String,
    },
}

/// One decoded PEM block.
pub(crate) struct PemBlock {
    pub(crate) label: String,
    pub(crate) der: Zeroizing<Vec<u8>>,
}

/// Decodes every PEM block in `text`, in order.
pub(crate) fn parse_blocks(text: &str) -> Result<Vec<PemBlock>, PemError> {
    const BEGIN: &str = "-----BEGIN ";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some((_, after_begin)) = rest.split_once(BEGIN) {
        let (label, after_label) = after_begin
            .split_once("-----")
            .ok_or(PemError::MalformedBegin)?;
        if label.is_empty() || label.len() > 64 || label.contains(['\r', '\n', '-']) {
            return Err(PemError::MalformedBegin);
        }
        let end = format!("-----END {label}-----");
        let (body, after_end) =
            after_label
                .split_once(end.as_str())
                .ok_or_else(|| PemError::MissingEnd {
                    label: label.to_owned(),
                })?;
        if body.contains(':') || label == "ENCRYPTED PRIVATE KEY" {
            return Err(PemError::Encrypted);
        }
        let compact: Zeroizing<String> =
            Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
        let mut der = Zeroizing::new(Vec::new());
        base64::engine::general_purpose::STANDARD
            .decode_vec(compact.as_bytes(), &mut der)
            .map_err(|_| PemError::Base64 {
                label: label.to_owned(),
            })?;
        blocks.push(PemBlock {
            label: label.to_owned(),
            der,
        });
        rest = after_end;
    }
    Ok(blocks)
}

/// The first block whose label is one of `labels`.
pub(crate) fn first_block(
    text: &str,
    labels: &[&str],
    expected: &'static str,
) -> Result<PemBlock, PemError> {
    parse_blocks(text)?
        .into_iter()
        .find(|b| labels.contains(&b.label.as_str()))
        .ok_or(PemError::NoBlock { expected })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_blocks_and_ignores_text_around() {
        let text = "junk\n-----BEGIN A-----\nAAEC\r\nAw==\n-----END A-----\ntrailing\n-----BEGIN B-----\n-----END B-----\n";
        let blocks = parse_blocks(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "A");
        assert_eq!(&blocks[0].der[..], &[0, 1, 2, 3]);
        assert!(blocks[1].der.is_empty());
    }

    #[test]
    fn typed_errors() {
        assert!(matches!(
            parse_blocks("-----BEGIN A-----\nAAEC\n"),
            Err(PemError::MissingEnd { .. })
        ));
        assert!(matches!(
            parse_blocks("-----BEGIN A-----\n!!!!\n-----END A-----"),
            Err(PemError::Base64 { .. })
        ));
        assert!(matches!(
            parse_blocks("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAEC\n-----END RSA PRIVATE KEY-----"),
            Err(PemError::Encrypted)
        ));
        assert!(matches!(
            parse_blocks("-----BEGIN "),
            Err(PemError::MalformedBegin)
        ));
        assert!(matches!(
            first_block("nothing", &["CERTIFICATE"], "CERTIFICATE"),
            Err(PemError::NoBlock { .. })
        ));
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,300}") {
            let _ = parse_blocks(&text);
        }

        #[test]
        fn never_panics_on_framed_garbage(label in "[A-Z ]{0,12}", body in ".{0,200}") {
            let text = format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
            let _ = parse_blocks(&text);
        }

        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let mut text = String::from("-----BEGIN X-----\n");
            for chunk in b64.as_bytes().chunks(64) {
                text.push_str(std::str::from_utf8(chunk).unwrap());
                text.push('\n');
            }
            text.push_str("-----END X-----\n");
            let blocks = parse_blocks(&text).unwrap();
            prop_assert_eq!(&blocks[0].der[..], &bytes[..]);
        }
    }
}
