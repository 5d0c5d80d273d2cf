//! Access-token secrets: 256 random bits with a recognisable prefix (so secret scanners and
//! people can tell what leaked), stored as their SHA-256. A plain hash suffices because the
//! secret is random and long; slow password hashes protect guessable inputs, not these.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every secret starts with this.
pub const PREFIX: &str = "udpat_";

/// A freshly minted secret and the hash stored for it. No `Debug`: the secret must not reach
/// a log.
pub struct NewSecret {
    /// Shown to its owner once, never stored.
    pub secret: String,
    /// What the database stores (see [`hash`]).
    pub hash: String,
}

/// A new secret and its hash.
pub fn mint() -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", data_encoding::BASE64URL_NOPAD.encode(&bytes));
    let hash = hash(&secret);
    NewSecret { secret, hash }
}

/// What the database stores and looks up by.
pub fn hash(secret: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_hash_stably() {
        let NewSecret {
            secret: a,
            hash: hash_a,
        } = mint();
        let NewSecret { secret: b, .. } = mint();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 43, "{a}");
        assert_eq!(hash(&a), hash_a);
        assert_eq!(hash_a.len(), 64);
        assert!(!hash_a.contains(&a[PREFIX.len()..]));
    }
}
