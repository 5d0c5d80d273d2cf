//! Authentication keys: the server makes an Ed25519 key pair, keeps the public key and hands
//! the private key out once, in a JSON key file like ZITADEL's.

use ed25519_dalek::SigningKey;
use ed25519_dalek::VerifyingKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rand::Rng;
use serde_json::json;

use super::Timestamp;

pub struct KeyPair {
    pub public_pem: String,
    pub private_pem: String,
}

pub fn generate() -> Result<KeyPair, String> {
    let secret: [u8; 32] = rand::rng().random();
    let key = SigningKey::from_bytes(&secret);
    Ok(KeyPair {
        public_pem: key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| e.to_string())?,
        private_pem: key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| e.to_string())?
            .to_string(),
    })
}

/// An existing Ed25519 public key (SPKI PEM, as `generate` stores them) carried over from
/// another directory; returned in the form the store keeps. The private key stays with its
/// owner.
pub fn imported_public_key(pem: &str) -> Result<String, String> {
    let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|_| {
        "must be an Ed25519 public key in PEM (-----BEGIN PUBLIC KEY-----)".to_owned()
    })?;
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| e.to_string())
}

/// The key file a client uses for JWT-profile authentication.
pub fn key_file(
    key_id: &str,
    user_id: &str,
    private_pem: &str,
    expiration: Option<Timestamp>,
) -> Vec<u8> {
    let file = json!({
        "type": "serviceaccount",
        "keyId": key_id,
        "key": private_pem,
        "algorithm": "EdDSA",
        "expirationDate": expiration.map(|at| at.to_string()),
        "userId": user_id,
    });
    serde_json::to_vec_pretty(&file).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imported_public_keys_are_ed25519_pem() {
        let pair = generate().unwrap();
        assert_eq!(
            imported_public_key(&pair.public_pem).unwrap(),
            pair.public_pem
        );
        let crlf = pair.public_pem.replace('\n', "\r\n");
        assert_eq!(imported_public_key(&crlf).unwrap(), pair.public_pem);
        assert!(imported_public_key("not a key").is_err());
        // A private key is no public key.
        assert!(imported_public_key(&pair.private_pem).is_err());
    }
}
