//! Password hashing: argon2id for new passwords; imported hashes may be argon2 (PHC) or
//! bcrypt. Hashes never leave the server.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 200;

pub fn hash(plain: &str) -> Result<String, String> {
    let salt: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(plain.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Checks that an imported hash is one we can verify later, and returns it unchanged.
pub fn check_import(hash: &str) -> Result<&str, String> {
    if is_bcrypt(hash) {
        return Ok(hash);
    }
    let parsed = PasswordHash::new(hash).map_err(|_| {
        "must be an argon2 PHC string ($argon2id$...) or a bcrypt hash ($2b$...)".to_string()
    })?;
    match parsed.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => Ok(hash),
        other => Err(format!(
            "unsupported hash algorithm {other:?}; use argon2 or bcrypt"
        )),
    }
}

pub fn verify(stored: &str, plain: &str) -> bool {
    if is_bcrypt(stored) {
        return bcrypt::verify(plain, stored).unwrap_or(false);
    }
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(plain.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

fn is_bcrypt(hash: &str) -> bool {
    hash.len() == 60
        && ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|prefix| hash.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_imports_are_checked() {
        let stored = hash("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify(&stored, "correct horse"));
        assert!(!verify(&stored, "wrong horse"));
        let bcrypt = bcrypt::hash("battery staple", 4).unwrap();
        assert!(check_import(&bcrypt).is_ok());
        assert!(verify(&bcrypt, "battery staple"));
        assert!(check_import(&stored).is_ok());
        assert!(check_import("plain text").is_err());
        assert!(check_import("$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA").is_err());
    }
}
