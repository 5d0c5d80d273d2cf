//! Verification codes: random, short-lived, stored only as salted SHA-256 hashes, and
//! invalidated after a few wrong guesses.

use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Timestamp;

/// How long a code stays valid.
pub const CODE_LIFETIME_MICROS: i64 = 10 * 60 * 1_000_000;
/// Wrong guesses after which a code is void.
pub const MAX_FAILED_ATTEMPTS: i32 = 5;

/// Which kind of code: contact codes are typed by people from a message, OTP registration codes
/// are digits, as SMS and mail clients recognise them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    /// 8 characters, upper case letters and digits without look-alikes (about 40 bits).
    Contact,
    /// 6 digits.
    Otp,
}

pub struct IssuedCode {
    pub plain: String,
    pub hash: String,
    pub expires_at: Timestamp,
}

pub fn issue(kind: CodeKind, now: Timestamp) -> IssuedCode {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    const DIGITS: &[u8] = b"0123456789";
    let (alphabet, length) = match kind {
        CodeKind::Contact => (LETTERS, 8),
        CodeKind::Otp => (DIGITS, 6),
    };
    let mut rng = rand::rng();
    let plain: String = (0..length)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect();
    let salt: [u8; 16] = rng.random();
    IssuedCode {
        hash: hash_with_salt(&salt, &plain),
        plain,
        expires_at: Timestamp::from_micros(now.micros() + CODE_LIFETIME_MICROS),
    }
}

/// Whether `candidate` is the code behind `stored` (comparison in constant time). Letters are
/// compared ignoring case, as people type them.
pub fn matches(stored: &str, candidate: &str) -> bool {
    let Some((salt_hex, _)) = stored.split_once('$') else {
        return false;
    };
    let Ok(salt) = data_encoding::HEXLOWER.decode(salt_hex.as_bytes()) else {
        return false;
    };
    let expected = hash_with_salt(&salt, &candidate.trim().to_uppercase());
    expected.as_bytes().ct_eq(stored.as_bytes()).into()
}

fn hash_with_salt(salt: &[u8], code: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt)
        .chain_update(code.as_bytes())
        .finalize();
    format!(
        "{}${}",
        data_encoding::HEXLOWER.encode(salt),
        data_encoding::HEXLOWER.encode(&digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_codes_verify_and_others_do_not() {
        let code = issue(CodeKind::Contact, Timestamp::from_micros(0));
        assert_eq!(code.plain.len(), 8);
        assert!(matches(&code.hash, &code.plain));
        assert!(matches(&code.hash, &code.plain.to_lowercase()));
        assert!(!matches(&code.hash, "AAAAAAAA"));
        assert!(!code.hash.contains(&code.plain));
        assert_eq!(code.expires_at.micros(), CODE_LIFETIME_MICROS);
        let otp = issue(CodeKind::Otp, Timestamp::from_micros(0));
        assert!(otp.plain.len() == 6 && otp.plain.chars().all(|c| c.is_ascii_digit()));
    }
}
