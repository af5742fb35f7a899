//! A tiny, panic-free DER walker: just enough to unwrap a SubjectPublicKeyInfo
//! into the PKCS#1 key ring verifies with, and to read a private key's
//! algorithm and modulus size before ring sees it (neither rustls-pki-types
//! nor rustls-webpki exposes these). X.509 certificates are read by
//! rustls-webpki.
//!
//! Only single-byte tags and definite lengths (up to 4 length bytes) are
//! accepted; everything else is a [`DerError`]. No function here indexes or
//! unwraps: every input, however malformed, yields a value or an error.

/// Why DER bytes could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DerError {
    /// The input ended in the middle of an element.
    #[error("DER: input ends inside an element")]
    Truncated,
    /// A multi-byte (high-number) tag, which these structures never use.
    #[error("DER: unsupported multi-byte tag")]
    UnsupportedTag,
    /// Indefinite, over-long or non-minimal length encoding.
    #[error("DER: invalid length encoding")]
    BadLength,
    /// A different element was expected here.
    #[error("DER: expected tag 0x{expected:02x}, found 0x{found:02x}")]
    UnexpectedTag {
        /// The expected tag byte.
        expected: u8,
        /// The tag byte found.
        found: u8,
    },
    /// Bytes left over after the outermost element or inside a structure.
    #[error("DER: unexpected trailing data")]
    TrailingData,
    /// A structure is well-formed DER but not what was expected (e.g. not RSA).
    #[error("DER: {0}")]
    Structure(&'static str),
}

/// Tag of INTEGER.
pub(crate) const INTEGER: u8 = 0x02;
/// Tag of BIT STRING.
pub(crate) const BIT_STRING: u8 = 0x03;
/// Tag of NULL.
pub(crate) const NULL: u8 = 0x05;
/// Tag of OBJECT IDENTIFIER.
pub(crate) const OID: u8 = 0x06;
/// Tag of SEQUENCE (constructed).
pub(crate) const SEQUENCE: u8 = 0x30;

/// DER encoding of the OID 1.2.840.113549.1.1.1 (rsaEncryption), value bytes only.
pub(crate) const RSA_ENCRYPTION_OID: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// One element: its tag byte and its value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) value: &'a [u8],
}

/// Reads elements one after another from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads the next element.
    pub(crate) fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let (&tag, after_tag) = self.rest.split_first().ok_or(DerError::Truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::UnsupportedTag);
        }
        let (&first, mut after_len) = after_tag.split_first().ok_or(DerError::Truncated)?;
        let len: usize = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(DerError::BadLength);
            }
            let (len_bytes, rest) =
                split_at_checked(after_len, count).ok_or(DerError::Truncated)?;
            after_len = rest;
            if len_bytes.first() == Some(&0) {
                return Err(DerError::BadLength);
            }
            let mut len: usize = 0;
            for &b in len_bytes {
                len = len
                    .checked_mul(256)
                    .and_then(|l| l.checked_add(usize::from(b)))
                    .ok_or(DerError::BadLength)?;
            }
            if len < 0x80 {
                return Err(DerError::BadLength);
            }
            len
        };
        let (value, rest) = split_at_checked(after_len, len).ok_or(DerError::Truncated)?;
        self.rest = rest;
        Ok(Tlv { tag, value })
    }

    /// Reads the next element and checks its tag; returns its value.
    pub(crate) fn expect(&mut self, tag: u8) -> Result<&'a [u8], DerError> {
        let tlv = self.read()?;
        if tlv.tag != tag {
            return Err(DerError::UnexpectedTag {
                expected: tag,
                found: tlv.tag,
            });
        }
        Ok(tlv.value)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError::TrailingData)
        }
    }
}

fn split_at_checked(input: &[u8], mid: usize) -> Option<(&[u8], &[u8])> {
    if mid <= input.len() {
        Some(input.split_at(mid))
    } else {
        None
    }
}

/// Reads exactly one element of `tag` spanning all of `input`; returns its value.
pub(crate) fn single(input: &[u8], tag: u8) -> Result<&[u8], DerError> {
    let mut r = Reader::new(input);
    let value = r.expect(tag)?;
    r.finish()?;
    Ok(value)
}

/// A positive INTEGER's magnitude: value bytes without the sign-padding zero.
fn unsigned_integer(value: &[u8]) -> Result<&[u8], DerError> {
    match value {
        [] => Err(DerError::Structure("empty INTEGER")),
        [first, ..] if first & 0x80 != 0 => Err(DerError::Structure("negative INTEGER")),
        [0, rest @ ..] if !rest.is_empty() => Ok(rest),
        other => Ok(other),
    }
}

/// An RSA public key's facts, read from its PKCS#1 `RSAPublicKey` DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RsaPublicKeyInfo {
    /// Bit length of the modulus.
    pub(crate) modulus_bits: usize,
}

/// Checks PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
pub(crate) fn parse_rsa_public_key(pkcs1: &[u8]) -> Result<RsaPublicKeyInfo, DerError> {
    let mut seq = Reader::new(single(pkcs1, SEQUENCE)?);
    let n = unsigned_integer(seq.expect(INTEGER)?)?;
    let e = unsigned_integer(seq.expect(INTEGER)?)?;
    seq.finish()?;
    let first = n.first().copied().unwrap_or(0);
    if first == 0 {
        return Err(DerError::Structure("RSA modulus is zero"));
    }
    if e == [0] {
        return Err(DerError::Structure("RSA exponent is zero"));
    }
    let modulus_bits = bit_length(n);
    Ok(RsaPublicKeyInfo { modulus_bits })
}

/// Unwraps `SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }`
/// holding an RSA key; returns the inner PKCS#1 `RSAPublicKey` DER.
pub(crate) fn spki_to_rsa_public_key(spki: &[u8]) -> Result<&[u8], DerError> {
    let mut seq = Reader::new(single(spki, SEQUENCE)?);
    let key = spki_fields(&mut seq)?;
    seq.finish()?;
    Ok(key)
}

/// Reads AlgorithmIdentifier + BIT STRING from inside an SPKI sequence.
fn spki_fields<'a>(seq: &mut Reader<'a>) -> Result<&'a [u8], DerError> {
    let mut alg = Reader::new(seq.expect(SEQUENCE)?);
    let oid = alg.expect(OID)?;
    if oid != RSA_ENCRYPTION_OID {
        return Err(DerError::Structure(
            "public key algorithm is not rsaEncryption",
        ));
    }
    // Parameters: NULL (required by RFC 3279, tolerated if absent).
    if !alg.is_empty() {
        let params = alg.expect(NULL)?;
        if !params.is_empty() {
            return Err(DerError::Structure("rsaEncryption parameters must be NULL"));
        }
    }
    alg.finish()?;
    let bits = seq.expect(BIT_STRING)?;
    let key = match bits.split_first() {
        Some((0, key)) => key,
        Some(_) => return Err(DerError::Structure("public key BIT STRING has unused bits")),
        None => return Err(DerError::Truncated),
    };
    parse_rsa_public_key(key)?;
    Ok(key)
}

/// Checks that PKCS#8 `PrivateKeyInfo` names rsaEncryption, so the caller can
/// tell "not an RSA key" apart from "a broken RSA key".
pub(crate) fn pkcs8_is_rsa(pkcs8: &[u8]) -> Result<bool, DerError> {
    let mut seq = Reader::new(single(pkcs8, SEQUENCE)?);
    seq.expect(INTEGER)?;
    let mut alg = Reader::new(seq.expect(SEQUENCE)?);
    let oid = alg.expect(OID)?;
    Ok(oid == RSA_ENCRYPTION_OID)
}

/// Tag of OCTET STRING.
pub(crate) const OCTET_STRING: u8 = 0x04;

/// The `privateKey` OCTET STRING content of PKCS#8 `PrivateKeyInfo`.
pub(crate) fn pkcs8_private_key(pkcs8: &[u8]) -> Result<&[u8], DerError> {
    let mut seq = Reader::new(single(pkcs8, SEQUENCE)?);
    seq.expect(INTEGER)?;
    seq.expect(SEQUENCE)?;
    seq.expect(OCTET_STRING)
}

/// Modulus size of PKCS#1 `RSAPrivateKey ::= SEQUENCE { version, modulus, ... }`.
pub(crate) fn rsa_private_key_modulus_bits(pkcs1: &[u8]) -> Result<usize, DerError> {
    let mut seq = Reader::new(single(pkcs1, SEQUENCE)?);
    seq.expect(INTEGER)?;
    let n = unsigned_integer(seq.expect(INTEGER)?)?;
    Ok(bit_length(n))
}

/// Bit length of a big-endian magnitude without leading zero bytes.
fn bit_length(n: &[u8]) -> usize {
    let first = n.first().copied().unwrap_or(0);
    n.len()
        .saturating_sub(1)
        .saturating_mul(8)
        .saturating_add(8 - first.leading_zeros() as usize)
}

/// Encodes a DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// Encodes one element.
pub(crate) fn encode(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    out.push(tag);
    push_len(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

/// Wraps PKCS#1 `RSAPublicKey` DER into a SubjectPublicKeyInfo (for PEM export).
pub(crate) fn rsa_public_key_to_spki(pkcs1: &[u8]) -> Vec<u8> {
    let mut alg = encode(OID, RSA_ENCRYPTION_OID);
    alg.extend(encode(NULL, &[]));
    let mut bits = Vec::with_capacity(pkcs1.len() + 1);
    bits.push(0);
    bits.extend_from_slice(pkcs1);
    let mut body = encode(SEQUENCE, &alg);
    body.extend(encode(BIT_STRING, &bits));
    encode(SEQUENCE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut r = Reader::new(&[0x02, 0x01, 0x05, 0x04, 0x81, 0x80]);
        assert_eq!(
            r.read().unwrap(),
            Tlv {
                tag: 2,
                value: &[5]
            }
        );
        assert_eq!(r.read(), Err(DerError::Truncated));

        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        let mut r = Reader::new(&long);
        assert_eq!(r.read().unwrap().value.len(), 0x80);
        assert!(r.is_empty());
    }

    #[test]
    fn rejects_bad_lengths_and_tags() {
        assert_eq!(Reader::new(&[0x30, 0x80]).read(), Err(DerError::BadLength));
        assert_eq!(
            Reader::new(&[0x30, 0x85, 1, 1, 1, 1, 1]).read(),
            Err(DerError::BadLength)
        );
        assert_eq!(
            Reader::new(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).read(),
            Err(DerError::BadLength)
        );
        assert_eq!(
            Reader::new(&[0x30, 0x82, 0x00, 0x90]).read(),
            Err(DerError::BadLength)
        );
        assert_eq!(
            Reader::new(&[0x1f, 0x01, 0x00]).read(),
            Err(DerError::UnsupportedTag)
        );
        assert_eq!(
            Reader::new(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).read(),
            Err(DerError::Truncated)
        );
        assert_eq!(
            single(&[0x05, 0x00, 0x00], NULL),
            Err(DerError::TrailingData)
        );
    }

    #[test]
    fn spki_round_trip() {
        // A fake 2048-bit modulus: 0x00 sign byte then 256 bytes with the top bit set.
        let mut n = vec![0u8];
        n.extend([0xc3u8; 256]);
        let mut body = encode(INTEGER, &n);
        body.extend(encode(INTEGER, &[1, 0, 1]));
        let pkcs1 = encode(SEQUENCE, &body);
        assert_eq!(parse_rsa_public_key(&pkcs1).unwrap().modulus_bits, 2048);
        let spki = rsa_public_key_to_spki(&pkcs1);
        assert_eq!(spki_to_rsa_public_key(&spki).unwrap(), &pkcs1[..]);
    }

    #[test]
    fn spki_rejects_other_algorithms() {
        let mut alg = encode(OID, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]); // ecPublicKey
        alg.extend(encode(NULL, &[]));
        let mut body = encode(SEQUENCE, &alg);
        body.extend(encode(BIT_STRING, &[0, 1, 2]));
        let spki = encode(SEQUENCE, &body);
        assert_eq!(
            spki_to_rsa_public_key(&spki),
            Err(DerError::Structure(
                "public key algorithm is not rsaEncryption"
            ))
        );
    }

    proptest! {
        #[test]
        fn walker_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut r = Reader::new(&bytes);
            for _ in 0..64 {
                if r.read().is_err() { break; }
            }
            let _ = crate::keys::RsaPublicKey::from_certificate_der(&bytes);
            let _ = spki_to_rsa_public_key(&bytes);
            let _ = parse_rsa_public_key(&bytes);
            let _ = pkcs8_is_rsa(&bytes);
            let _ = pkcs8_private_key(&bytes);
            let _ = rsa_private_key_modulus_bits(&bytes);
        }

        #[test]
        fn structured_garbage_never_panics(
            parts in proptest::collection::vec((prop_oneof![Just(0x30u8), Just(0x02), Just(0x03), Just(0x06), Just(0xa0), any::<u8>()],
                proptest::collection::vec(any::<u8>(), 0..40)), 0..12)
        ) {
            // Nested, well-framed elements with random content reach deeper code paths.
            let mut inner = Vec::new();
            for (tag, value) in &parts {
                inner.extend(encode(*tag, value));
            }
            let cert = encode(SEQUENCE, &encode(SEQUENCE, &inner));
            let _ = crate::keys::RsaPublicKey::from_certificate_der(&cert);
            let _ = spki_to_rsa_public_key(&encode(SEQUENCE, &inner));
            let _ = parse_rsa_public_key(&encode(SEQUENCE, &inner));
        }

        #[test]
        fn encode_then_read_round_trips(tag in 0u8..0x1f, value in proptest::collection::vec(any::<u8>(), 0..1000)) {
            let der = encode(tag, &value);
            prop_assert_eq!(single(&der, tag), Ok(&value[..]));
        }
    }
}
