//! Password hashing: argon2id for new passwords; imported hashes may be argon2 (PHC) or
//! bcrypt, within the cost ceiling of [`cost`]. Hashes never leave the server.

pub mod cost;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::Rng;

use cost::Cost;

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 200;

/// Argon2's working memory (19 MiB for our hashes, at most 64 MiB at the ceiling), kept from one
/// hash to the next by whoever hashes repeatedly. Allocating and freeing a buffer this large per
/// hash made glibc's allocator keep ever more of them: with two hashes at a time, a burst of
/// 120 SetPassword calls grew the server by 250 to 370 MiB instead of 2 × 19 MiB.
#[derive(Default)]
pub struct Memory(Vec<Block>);

impl Memory {
    /// The first `params.block_count()` blocks, grown when needed (argon2 writes every block
    /// before reading it, so what a previous hash left there does not matter).
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let count = params.block_count();
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }
}

pub fn hash(plain: &str) -> Result<String, String> {
    hash_in(&mut Memory::default(), plain)
}

/// An argon2id PHC string of `plain` with argon2's default parameters and a random salt.
pub fn hash_in(memory: &mut Memory, plain: &str) -> Result<String, String> {
    let salt: [u8; 16] = rand::rng().random();
    let salt_string = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let params = Params::default();
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::default()
        .hash_password_into_with_memory(
            plain.as_bytes(),
            &salt,
            &mut output,
            memory.blocks(&params),
        )
        .map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt_string.as_salt()),
        hash: Some(Output::new(&output).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// Checks that an imported hash is one we can verify later, at a cost within the ceiling,
/// and returns it unchanged.
pub fn check_import(hash: &str) -> Result<&str, String> {
    Cost::of(hash)?.within_ceiling()?;
    Ok(hash)
}

/// Checks that a stored hash may be run. A hash already stored may predate the ceiling or have
/// been written by SQL, so it is checked again before every verification.
pub fn check_stored(hash: &str) -> Result<Cost, String> {
    Cost::of(hash)?.within_ceiling()
}

/// Whether `plain` matches `stored`. A hash that is malformed or above the cost ceiling is
/// never run: it matches nothing (callers report why with [`check_stored`]).
pub fn verify(stored: &str, plain: &str) -> bool {
    verify_in(&mut Memory::default(), stored, plain)
}

/// [`verify`] in `memory`.
pub fn verify_in(memory: &mut Memory, stored: &str, plain: &str) -> bool {
    if check_stored(stored).is_err() {
        return false;
    }
    if is_bcrypt(stored) {
        return bcrypt::verify(plain, stored).unwrap_or(false);
    }
    argon2_matches(memory, stored, plain).unwrap_or(false)
}

/// What argon2's own `verify_password` does, with the memory given.
fn argon2_matches(memory: &mut Memory, stored: &str, plain: &str) -> Option<bool> {
    let parsed = PasswordHash::new(stored).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut output = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(plain.as_bytes(), salt, &mut output, memory.blocks(&params))
        .ok()?;
    // Output compares in constant time.
    Some(Output::new(&output).ok()? == expected)
}

/// Whether a stored hash was made with other parameters than [`hash`] uses (an imported bcrypt
/// or argon2 hash): after a successful check it is replaced by one of ours, so every later
/// check costs what ours cost.
pub fn is_outdated(stored: &str) -> bool {
    if is_bcrypt(stored) {
        return true;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    let ours = Params::new(
        Params::DEFAULT_M_COST,
        Params::DEFAULT_T_COST,
        Params::DEFAULT_P_COST,
        Some(Params::DEFAULT_OUTPUT_LEN),
    );
    parsed.algorithm != Algorithm::Argon2id.ident()
        || parsed.version != Some(Version::V0x13.into())
        || Params::try_from(&parsed).ok() != ours.ok()
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

    #[test]
    fn a_hash_above_the_ceiling_is_never_run() {
        // Running it would make argon2 allocate 4 TiB and abort the process.
        let real = hash("correct horse").unwrap();
        let huge = real.replace("m=19456", "m=4294967295");
        assert!(check_import(&huge).unwrap_err().contains("65536 KiB"));
        assert!(check_stored(&huge).is_err());
        assert!(!verify(&huge, "correct horse"));
        assert!(check_stored(&real).is_ok());
    }

    #[test]
    fn hashes_with_other_parameters_than_ours_are_outdated() {
        let ours = hash("correct horse").unwrap();
        assert!(!is_outdated(&ours));
        assert!(is_outdated(&ours.replace("t=2", "t=3")));
        assert!(is_outdated(&ours.replace("argon2id", "argon2i")));
        assert!(is_outdated(&bcrypt::hash("battery staple", 4).unwrap()));
    }

    #[test]
    fn hashes_are_argon2s_own_in_reused_memory() {
        use argon2::password_hash::PasswordVerifier;
        let mut memory = Memory::default();
        let ours = hash_in(&mut memory, "correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        let theirs = {
            use argon2::password_hash::PasswordHasher;
            let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
            let params = Params::new(64, 3, 2, Some(20)).unwrap();
            Argon2::new(Algorithm::Argon2i, Version::V0x10, params)
                .hash_password(b"battery staple", &salt)
                .unwrap()
                .to_string()
        };
        assert!(verify_in(&mut memory, &theirs, "battery staple"));
        assert!(!verify_in(&mut memory, &theirs, "battery stable"));
        assert!(verify_in(&mut memory, &ours, "correct horse"));
    }
}
