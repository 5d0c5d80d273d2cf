//! What checking a password against a hash costs. Argon2 and bcrypt hashes carry their own
//! parameters, and verifying runs with them: an imported `m=4294967295` makes argon2 allocate
//! 4 TiB, bcrypt cost 31 takes days of CPU. So every hash is parsed and held to a ceiling
//! before it is stored, and again before it is ever run.

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Params, Version};
use bcrypt::HashParts;

/// Most memory an argon2 hash may ask for, in KiB (64 MiB; our own hashes use 19 MiB).
pub const MAX_ARGON2_MEMORY_KIB: u32 = 64 * 1024;
/// Most argon2 passes (iterations); ours use 2.
pub const MAX_ARGON2_ITERATIONS: u32 = 10;
/// Most argon2 lanes (parallelism); ours use 1.
pub const MAX_ARGON2_PARALLELISM: u32 = 4;
/// Highest bcrypt cost (2^14 rounds, about a second); bcrypt's own default is 12.
pub const MAX_BCRYPT_COST: u32 = 14;

/// bcrypt's own lowest cost: lower costs cannot be verified.
const MIN_BCRYPT_COST: u32 = 4;

/// The parameters a hash asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    Argon2 {
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
    },
    Bcrypt {
        cost: u32,
    },
}

impl Cost {
    /// Reads the parameters of an argon2 PHC string or a bcrypt hash; anything that could not
    /// be verified (unknown algorithm or version, bad parameters, salt or output) is an error.
    pub fn of(hash: &str) -> Result<Self, String> {
        if super::is_bcrypt(hash) {
            let parts: HashParts = hash
                .parse()
                .map_err(|e| format!("is not a valid bcrypt hash: {e}"))?;
            let cost = parts.get_cost();
            if cost < MIN_BCRYPT_COST {
                return Err(format!(
                    "bcrypt cost {cost} is below bcrypt's minimum of {MIN_BCRYPT_COST}"
                ));
            }
            return Ok(Cost::Bcrypt { cost });
        }
        let parsed = PasswordHash::new(hash).map_err(|_| {
            "must be an argon2 PHC string ($argon2id$...) or a bcrypt hash ($2b$...)".to_string()
        })?;
        Algorithm::try_from(parsed.algorithm).map_err(|_| {
            format!(
                "unsupported hash algorithm {:?}; use argon2 or bcrypt",
                parsed.algorithm.as_str()
            )
        })?;
        if let Some(version) = parsed.version {
            Version::try_from(version)
                .map_err(|_| format!("argon2 version v={version} is not 16 or 19"))?;
        }
        let params =
            Params::try_from(&parsed).map_err(|e| format!("has invalid argon2 parameters: {e}"))?;
        let salt = parsed.salt.ok_or("has no argon2 salt")?;
        let mut buffer = [0u8; 64];
        let salt_bytes = salt
            .decode_b64(&mut buffer)
            .map_err(|e| format!("has an invalid argon2 salt: {e}"))?;
        if salt_bytes.len() < argon2::MIN_SALT_LEN {
            return Err(format!(
                "has an argon2 salt of {} bytes; at least {} are needed",
                salt_bytes.len(),
                argon2::MIN_SALT_LEN
            ));
        }
        if parsed.hash.is_none() {
            return Err("has no argon2 hash output".into());
        }
        Ok(Cost::Argon2 {
            memory_kib: params.m_cost(),
            iterations: params.t_cost(),
            parallelism: params.p_cost(),
        })
    }

    /// Refuses parameters above the server's ceiling, naming the parameter and the ceiling.
    pub fn within_ceiling(self) -> Result<Self, String> {
        let above = match self {
            Cost::Argon2 { memory_kib, .. } if memory_kib > MAX_ARGON2_MEMORY_KIB => format!(
                "argon2 memory m={memory_kib} KiB is above the ceiling of \
                 {MAX_ARGON2_MEMORY_KIB} KiB (64 MiB)"
            ),
            Cost::Argon2 { iterations, .. } if iterations > MAX_ARGON2_ITERATIONS => format!(
                "argon2 iterations t={iterations} are above the ceiling of \
                 {MAX_ARGON2_ITERATIONS}"
            ),
            Cost::Argon2 { parallelism, .. } if parallelism > MAX_ARGON2_PARALLELISM => format!(
                "argon2 parallelism p={parallelism} is above the ceiling of \
                 {MAX_ARGON2_PARALLELISM}"
            ),
            Cost::Bcrypt { cost } if cost > MAX_BCRYPT_COST => {
                format!("bcrypt cost {cost} is above the ceiling of {MAX_BCRYPT_COST}")
            }
            _ => return Ok(self),
        };
        Err(above)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &str = "c29tZXNhbHQ";

    /// The output of a real (cheap) argon2 hash, so that only the part under test is wrong.
    fn output() -> String {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = Params::new(8, 1, 1, None).unwrap();
        let hasher = argon2::Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::from_b64(SALT).unwrap();
        let hash = hasher.hash_password(b"x", &salt).unwrap().to_string();
        hash.rsplit('$').next().unwrap().to_owned()
    }

    fn argon2(params: &str) -> String {
        format!("$argon2id$v=19${params}${SALT}${}", output())
    }

    /// A real bcrypt hash (cost 4) with its cost digits replaced.
    fn bcrypt(cost: u32) -> String {
        let real = ::bcrypt::hash("battery staple", 4).unwrap();
        format!("$2b${cost:02}{}", &real[6..])
    }

    #[test]
    fn parameters_are_read_and_held_to_the_ceiling() {
        assert_eq!(
            Cost::of(&argon2("m=8,t=1,p=1")),
            Ok(Cost::Argon2 {
                memory_kib: 8,
                iterations: 1,
                parallelism: 1
            })
        );
        let at = argon2("m=65536,t=10,p=4");
        assert_eq!(
            Cost::of(&at).unwrap().within_ceiling(),
            Ok(Cost::Argon2 {
                memory_kib: 65536,
                iterations: 10,
                parallelism: 4
            })
        );
        let refused = |hash: &str| Cost::of(hash).unwrap().within_ceiling().unwrap_err();
        assert!(refused(&argon2("m=4294967295,t=1,p=1")).contains("65536 KiB"));
        assert!(refused(&argon2("m=65537,t=1,p=1")).contains("m=65537"));
        assert!(refused(&argon2("m=8,t=11,p=1")).contains("ceiling of 10"));
        assert!(refused(&argon2("m=64,t=1,p=5")).contains("ceiling of 4"));
        assert_eq!(
            Cost::of(&bcrypt(14)).unwrap().within_ceiling(),
            Ok(Cost::Bcrypt { cost: 14 })
        );
        assert!(refused(&bcrypt(31)).contains("ceiling of 14"));
    }

    #[test]
    fn hashes_that_cannot_be_verified_are_malformed() {
        for hash in [
            "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ".to_string(),
            format!("$argon2id$v=19$m=8,t=1,p=1$c2FsdA${}", output()),
            format!("$argon2id$v=18$m=8,t=1,p=1${SALT}${}", output()),
            argon2("m=8,t=1,p=4"),
            argon2("m=8,t=0,p=1"),
            argon2("m=8,t=1,p=1,x=1"),
            format!("$argon2x$v=19$m=8,t=1,p=1${SALT}${}", output()),
            bcrypt(3),
            format!("$2b$1x{}", &bcrypt(4)[6..]),
            format!("$2b$10${}", "a".repeat(53)),
            "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA".to_string(),
        ] {
            assert!(Cost::of(&hash).is_err(), "{hash}");
        }
    }
}
