//! The deterministic population: fixed organizations and schemas, and user N of a seed.

use argon2::password_hash::{PasswordHasher, SaltString};
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::names::*;
use crate::domain::{UserState, fold_case};
use crate::store::entities::{
    authentication_key, idp_link, organization, otp_email, otp_sms, password, totp, user,
    user_schema, username, webauthn_credential,
};
use crate::store::writes::import::UserImport;

/// Every seeded password is this one, so that a demo can verify it.
pub const SEED_PASSWORD: &str = "seed-password";

/// 2024-01-01T00:00:00Z: user N was created about N minutes later.
const BASE_MICROS: i64 = 1_704_067_200_000_000;
const MINUTE_MICROS: i64 = 60_000_000;
const DAY_MICROS: i64 = 24 * 60 * MINUTE_MICROS;

/// Stream of the generator that makes the fixed objects; users use streams from 1 on.
const FIXED_STREAM: u64 = u64::MAX;

struct Org {
    name: &'static str,
    domain: &'static str,
    /// Relative share of users.
    weight: u32,
}

const ORGS: &[Org] = &[
    Org {
        name: "Acme Corporation",
        domain: "acme.example",
        weight: 40,
    },
    Org {
        name: "Globex",
        domain: "globex.example",
        weight: 25,
    },
    Org {
        name: "Initech",
        domain: "initech.example",
        weight: 15,
    },
    Org {
        name: "Umbrella Health",
        domain: "umbrella.example",
        weight: 12,
    },
    Org {
        name: "Zoë & Søn ApS",
        domain: "zoe-son.example",
        weight: 8,
    },
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Employee,
    Customer,
    ServiceAccount,
}

const SCHEMAS: &[(Kind, &str)] = &[
    (Kind::Employee, "employee"),
    (Kind::Customer, "customer"),
    (Kind::ServiceAccount, "service-account"),
];

pub struct Population {
    seed: u64,
    password_hash: String,
    organizations: Vec<organization::Model>,
    schemas: Vec<user_schema::Model>,
}

impl Population {
    pub fn new(seed: u64) -> anyhow::Result<Self> {
        let mut fixed = ChaCha8Rng::seed_from_u64(0);
        fixed.set_stream(FIXED_STREAM);
        let organizations = ORGS
            .iter()
            .enumerate()
            .map(|(i, org)| {
                let created = BASE_MICROS - (30 - i as i64) * DAY_MICROS;
                organization::Model {
                    id: uuid_v7(&mut fixed, created),
                    name: org.name.into(),
                    name_lower: fold_case(org.name),
                    created_at: created,
                    changed_at: created,
                    sequence: 0,
                }
            })
            .collect();
        let schemas = SCHEMAS
            .iter()
            .enumerate()
            .map(|(i, (kind, name))| {
                let created = BASE_MICROS - (10 - i as i64) * DAY_MICROS;
                user_schema::Model {
                    id: uuid_v7(&mut fixed, created),
                    r#type: (*name).into(),
                    type_lower: fold_case(name),
                    revision: 1,
                    json_schema: json_schema(*kind),
                    created_at: created,
                    changed_at: created,
                    sequence: 0,
                }
            })
            .collect();
        // One real argon2id hash per run: hashing each user's password would dominate seeding.
        let mut salt = [0u8; 16];
        ChaCha8Rng::seed_from_u64(seed).fill(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let password_hash = argon2::Argon2::default()
            .hash_password(SEED_PASSWORD.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("hashing the seed password: {e}"))?
            .to_string();
        Ok(Self {
            seed,
            password_hash,
            organizations,
            schemas,
        })
    }

    pub fn organizations(&self) -> Vec<organization::Model> {
        self.organizations.clone()
    }

    pub fn schemas(&self) -> Vec<user_schema::Model> {
        self.schemas.clone()
    }

    /// User number `index`: a function of (seed, index) only.
    pub fn user(&self, index: u64) -> UserImport {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(index);
        let rng = &mut rng;

        let created =
            BASE_MICROS + index as i64 * MINUTE_MICROS + rng.random_range(0..MINUTE_MICROS - 1_000);
        let id = uuid_v7(rng, created);
        let org_index = weighted(rng, ORGS.iter().map(|o| o.weight));
        let (org, org_def) = (&self.organizations[org_index], &ORGS[org_index]);
        let kind_index = weighted(rng, [70, 25, 5]);
        let (kind, schema) = (SCHEMAS[kind_index].0, &self.schemas[kind_index]);
        let state = UserState::ALL[weighted(rng, [85, 7, 4, 4])];
        let &(given, given_ascii) = GIVEN_NAMES.choose(rng).expect("non-empty list");
        let &(family, family_ascii) = FAMILY_NAMES.choose(rng).expect("non-empty list");
        let service = SERVICES.choose(rng).expect("non-empty list");

        let email = match kind {
            Kind::ServiceAccount => rng
                .random_bool(0.3)
                .then(|| format!("{service}-{index}@{}", org_def.domain)),
            _ => rng.random_bool(0.85).then(|| {
                let address = format!("{given_ascii}.{family_ascii}{index}@{}", org_def.domain);
                // Some people type their address capitalised; ignore-case search must find them.
                if rng.random_bool(0.1) {
                    capitalise(&address)
                } else {
                    address
                }
            }),
        };
        let phone = (kind != Kind::ServiceAccount && rng.random_bool(0.6))
            .then(|| format!("+41{}", rng.random_range(760_000_000u64..799_999_999)));
        let changed = created + rng.random_range(0..30 * DAY_MICROS);
        let data = match kind {
            Kind::Employee => json!({
                "givenName": given,
                "familyName": family,
                "displayName": format!("{given} {family}"),
                "department": DEPARTMENTS.choose(rng).expect("non-empty list"),
                "employeeNumber": 10_000 + index,
            }),
            Kind::Customer => json!({
                "givenName": given,
                "familyName": family,
                "locale": LOCALES.choose(rng).expect("non-empty list"),
                "marketingOptIn": rng.random_bool(0.4),
            }),
            Kind::ServiceAccount => json!({
                "name": format!("{service}-{index}"),
                "description": format!("Service account of {}", org_def.name),
            }),
        };

        let mut child_time = created;
        let mut next_child = |rng: &mut ChaCha8Rng| {
            child_time += 1;
            (uuid_v7(rng, child_time), child_time)
        };

        let login = match kind {
            Kind::ServiceAccount => format!("{service}-{index}"),
            _ => format!("{given_ascii}.{family_ascii}.{index}"),
        };
        let mut usernames = vec![new_username(next_child(rng), &id, &org.id, login, false)];
        if kind != Kind::ServiceAccount && rng.random_bool(0.4) {
            usernames.push(new_username(
                next_child(rng),
                &id,
                &org.id,
                format!("{given_ascii}{index}"),
                true,
            ));
        }
        if kind != Kind::ServiceAccount && rng.random_bool(0.15) {
            let short = format!("{}{family_ascii}{index}", &given_ascii[..1]);
            usernames.push(new_username(
                next_child(rng),
                &id,
                &org.id,
                capitalise(&short),
                false,
            ));
        }

        let has_password = kind != Kind::ServiceAccount && rng.random_bool(0.8);
        let password = has_password.then(|| password::Model {
            user_id: id.clone(),
            hash: self.password_hash.clone(),
            changed_at: created + rng.random_range(0..60 * DAY_MICROS),
            change_required: false,
        });
        let last_login = (has_password && rng.random_bool(0.75))
            .then(|| created + rng.random_range(0..90 * DAY_MICROS));

        let mut web_auth_n = Vec::new();
        if kind != Kind::ServiceAccount && rng.random_bool(0.2) {
            for _ in 0..rng.random_range(1..=2) {
                let (child_id, at) = next_child(rng);
                web_auth_n.push(webauthn_credential::Model {
                    id: child_id,
                    user_id: id.clone(),
                    name: (*WEBAUTHN_NAMES.choose(rng).expect("non-empty list")).into(),
                    is_verified: rng.random_bool(0.9),
                    user_verified: rng.random_bool(0.6),
                    credential: None,
                    created_at: at,
                });
            }
        }
        let mut totps = Vec::new();
        if kind != Kind::ServiceAccount && rng.random_bool(0.25) {
            let (child_id, at) = next_child(rng);
            let secret: [u8; 20] = rng.random();
            totps.push(totp::Model {
                id: child_id,
                user_id: id.clone(),
                name: "Authenticator app".into(),
                secret: data_encoding::BASE32_NOPAD.encode(&secret),
                is_verified: rng.random_bool(0.9),
                created_at: at,
            });
        }
        let mut sms = Vec::new();
        if let Some(phone) = &phone
            && rng.random_bool(0.15)
        {
            let (child_id, at) = next_child(rng);
            sms.push(otp_sms::Model {
                id: child_id,
                user_id: id.clone(),
                phone: phone.clone(),
                is_verified: rng.random_bool(0.8),
                created_at: at,
            });
        }
        let mut otp_emails = Vec::new();
        if let Some(email) = &email
            && kind != Kind::ServiceAccount
            && rng.random_bool(0.15)
        {
            let (child_id, at) = next_child(rng);
            otp_emails.push(otp_email::Model {
                id: child_id,
                user_id: id.clone(),
                address: email.clone(),
                is_verified: rng.random_bool(0.8),
                created_at: at,
            });
        }
        let mut keys = Vec::new();
        let key_count = match kind {
            Kind::ServiceAccount => rng.random_range(1..=2),
            _ => u32::from(rng.random_bool(0.02)),
        };
        for _ in 0..key_count {
            let (child_id, at) = next_child(rng);
            let secret: [u8; 32] = rng.random();
            let public_key = ed25519_dalek::SigningKey::from_bytes(&secret)
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("an Ed25519 public key always encodes");
            keys.push(authentication_key::Model {
                id: child_id,
                user_id: id.clone(),
                key_type: 1,
                public_key,
                expiration_date: rng.random_bool(0.5).then(|| at + 365 * DAY_MICROS),
                created_at: at,
                changed_at: at,
                sequence: 0,
            });
        }
        let mut idp_links = Vec::new();
        if kind != Kind::ServiceAccount && rng.random_bool(0.15) {
            let (child_id, at) = next_child(rng);
            let &(idp_id, idp_name) = IDPS.choose(rng).expect("non-empty list");
            idp_links.push(idp_link::Model {
                id: child_id,
                user_id: id.clone(),
                organization_id: org.id.clone(),
                idp_id: idp_id.into(),
                idp_name: idp_name.into(),
                external_user_id: format!("{}", rng.random_range(10u64.pow(15)..10u64.pow(16))),
                external_username: email
                    .clone()
                    .unwrap_or_else(|| format!("{given_ascii}{index}")),
                created_at: at,
            });
        }

        UserImport {
            user: user::Model {
                id: id.clone(),
                organization_id: org.id.clone(),
                schema_id: schema.id.clone(),
                schema_revision: schema.revision,
                schema_type: schema.r#type.clone(),
                schema_type_lower: schema.type_lower.clone(),
                // Derived from the data by the import.
                name: None,
                name_lower: None,
                data,
                state: state.number(),
                email_lower: email.as_deref().map(fold_case),
                email_verified: email.is_some() && rng.random_bool(0.7),
                email,
                phone_lower: phone.as_deref().map(fold_case),
                phone_verified: phone.is_some() && rng.random_bool(0.5),
                phone,
                last_login,
                created_at: created,
                changed_at: changed,
                sequence: 0,
                // Written with the rows (`store::authenticators::document`).
                authenticators: None,
            },
            usernames,
            password,
            web_auth_n,
            totps,
            otp_sms: sms,
            otp_emails,
            authentication_keys: keys,
            idp_links,
        }
    }
}

fn new_username(
    (id, at): (String, i64),
    user_id: &str,
    org_id: &str,
    name: String,
    org_specific: bool,
) -> username::Model {
    username::Model {
        id,
        user_id: user_id.into(),
        organization_id: org_id.into(),
        username_lower: fold_case(&name),
        username: name,
        is_organization_specific: org_specific,
        uniqueness_scope: if org_specific {
            org_id.into()
        } else {
            username::INSTANCE_SCOPE.into()
        },
        created_at: at,
    }
}

/// A UUIDv7 for the given time (µs) with random bits from `rng`: ids sort by creation time.
fn uuid_v7(rng: &mut ChaCha8Rng, micros: i64) -> String {
    let random: [u8; 10] = rng.random();
    uuid::Builder::from_unix_timestamp_millis((micros / 1000) as u64, &random)
        .into_uuid()
        .to_string()
}

/// An index drawn with probability proportional to its weight.
fn weighted(rng: &mut ChaCha8Rng, weights: impl IntoIterator<Item = u32> + Clone) -> usize {
    let total: u32 = weights.clone().into_iter().sum();
    let mut pick = rng.random_range(0..total);
    for (i, weight) in weights.into_iter().enumerate() {
        if pick < weight {
            return i;
        }
        pick -= weight;
    }
    0
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn json_schema(kind: Kind) -> Value {
    let text = json!({ "type": "string", "minLength": 1, "maxLength": 200 });
    match kind {
        Kind::Employee => json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["givenName", "familyName"],
            "properties": {
                "givenName": text, "familyName": text, "displayName": text,
                "department": { "enum": DEPARTMENTS },
                "employeeNumber": { "type": "integer", "minimum": 1 }
            },
            "additionalProperties": false
        }),
        Kind::Customer => json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["givenName", "familyName"],
            "properties": {
                "givenName": text, "familyName": text,
                "locale": { "type": "string", "pattern": "^[a-z]{2}-[A-Z]{2}$" },
                "marketingOptIn": { "type": "boolean" }
            },
            "additionalProperties": false
        }),
        Kind::ServiceAccount => json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["name"],
            "properties": { "name": text, "description": { "type": "string", "maxLength": 1000 } },
            "additionalProperties": false
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_and_index_give_the_same_user() {
        let a = Population::new(7).unwrap();
        let b = Population::new(7).unwrap();
        assert_eq!(a.user(42).user, b.user(42).user);
        assert_eq!(a.user(42).usernames, b.user(42).usernames);
        assert_ne!(
            a.user(42).user.id,
            Population::new(8).unwrap().user(42).user.id
        );
    }

    #[test]
    fn ids_follow_creation_order() {
        let population = Population::new(1).unwrap();
        let users: Vec<_> = (0..200).map(|i| population.user(i).user).collect();
        for pair in users.windows(2) {
            assert!(pair[0].created_at < pair[1].created_at);
            assert!(
                pair[0].id < pair[1].id,
                "{} then {}",
                pair[0].id,
                pair[1].id
            );
        }
    }
}
