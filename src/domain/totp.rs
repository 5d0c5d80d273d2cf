//! RFC 6238 time-based one-time passwords (SHA-1, 6 digits, 30 s), as authenticator apps use.

use rand::Rng;
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const ISSUER: &str = "userdir";

pub struct Registration {
    /// Base32, for manual entry and storage.
    pub secret: String,
    pub uri: String,
}

/// A new secret for `account` (shown in the app next to the issuer).
pub fn register(account: &str) -> Result<Registration, String> {
    let secret = Secret::new_stack(rand::rng().random());
    let totp = totp(secret, account)?;
    Ok(Registration {
        secret: totp.secret().to_base32(),
        uri: totp.to_url().map_err(|e| e.to_string())?,
    })
}

/// Whether `code` is valid now (one step of clock skew either way is accepted).
pub fn check(secret_base32: &str, code: &str) -> Result<bool, String> {
    let totp = from_base32(secret_base32)?;
    Ok(totp.check_current(code.trim()).is_some())
}

/// The current code for a secret: what an authenticator app would show (tests use it).
pub fn current_code(secret_base32: &str) -> Result<String, String> {
    Ok(from_base32(secret_base32)?.generate_current().to_string())
}

/// An existing secret carried over from another directory (an import): base32 (RFC 4648, no
/// padding, any case) of at least 128 bits, as RFC 4226 requires and [`check`] will need.
/// Returns it in the form the store keeps (upper-case base32, as [`register`] makes).
pub fn imported_secret(secret_base32: &str) -> Result<String, String> {
    let secret = Secret::try_from_base32(secret_base32.to_ascii_uppercase())
        .map_err(|_| "must be base32 (RFC 4648, A-Z and 2-7, no padding)".to_owned())?;
    let totp = totp(secret, "check")?;
    Ok(totp.secret().to_base32())
}

fn from_base32(secret_base32: &str) -> Result<Totp, String> {
    let secret =
        Secret::try_from_base32(secret_base32).map_err(|e| format!("stored TOTP secret: {e:?}"))?;
    totp(secret, "check")
}

fn totp(secret: Secret, account: &str) -> Result<Totp, String> {
    // The otpauth label may not contain ':'.
    let account = account.replace(':', "_");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_secret_checks_its_current_code() {
        let registration = register("gigi@example.com").unwrap();
        assert!(
            registration
                .uri
                .starts_with("otpauth://totp/userdir:gigi%40example.com?"),
            "{}",
            registration.uri
        );
        let code = current_code(&registration.secret).unwrap();
        assert_eq!(code.len(), 6);
        assert!(check(&registration.secret, &code).unwrap());
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        assert!(!check(&registration.secret, &wrong).unwrap());
    }

    #[test]
    fn imported_secrets_are_base32_of_at_least_128_bits() {
        let registration = register("gigi@example.com").unwrap();
        let lower = registration.secret.to_ascii_lowercase();
        assert_eq!(imported_secret(&lower).unwrap(), registration.secret);
        assert!(
            imported_secret("not base32!")
                .unwrap_err()
                .contains("base32")
        );
        // 64 bits: too short for RFC 4226.
        let short = imported_secret("JBSWY3DPEHPK3PXP").unwrap_err();
        assert!(short.contains("128 bits"), "{short}");
    }
}
