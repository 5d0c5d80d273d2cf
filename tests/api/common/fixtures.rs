//! Users built to order for tests, written through the store's import path.

use sea_orm::DatabaseConnection;
use serde_json::json;
use userdir::domain::{UserState, fold_case};
use userdir::store::entities::{
    authentication_key, idp_link, organization, otp_email, otp_sms, password, totp, user,
    user_schema, username, webauthn_credential,
};
use userdir::store::writes::import::{self, UserImport};

pub const ORG_A: &str = "018c0000-0000-7000-8000-00000000000a";
pub const ORG_B: &str = "018c0000-0000-7000-8000-00000000000b";
pub const EMPLOYEE: &str = "018c0000-0000-7000-8000-0000000000e1";
pub const CUSTOMER: &str = "018c0000-0000-7000-8000-0000000000c1";

/// 2023-11-14T22:13:20Z; fixture user N is created N seconds later unless told otherwise.
pub const BASE_MILLIS: u64 = 1_700_000_000_000;

/// Two organizations and two schemas ("Employee" and "customer").
pub async fn base(db: &DatabaseConnection) {
    let org = |id: &str, name: &str| organization::Model {
        id: id.into(),
        name: name.into(),
        name_lower: fold_case(name),
        created_at: 0,
        changed_at: 0,
        sequence: 0,
    };
    import::import_organizations(db, vec![org(ORG_A, "Org A"), org(ORG_B, "Org B")])
        .await
        .unwrap();
    let schema = |id: &str, kind: &str| user_schema::Model {
        id: id.into(),
        r#type: kind.into(),
        type_lower: fold_case(kind),
        revision: 1,
        json_schema: json!({"type": "object"}),
        created_at: 0,
        changed_at: 0,
        sequence: 0,
    };
    import::import_schemas(
        db,
        vec![schema(EMPLOYEE, "Employee"), schema(CUSTOMER, "customer")],
    )
    .await
    .unwrap();
}

/// The id of fixture user `n`: ids of higher `n` sort later, like creation order.
pub fn user_id(n: u64) -> String {
    uuid::Builder::from_unix_timestamp_millis(BASE_MILLIS + n * 1000, &[n as u8; 10])
        .into_uuid()
        .to_string()
}

/// A user under construction. Defaults: organization A, schema Employee, active, no contact,
/// one instance-wide username `user<n>`, no other authenticators.
pub struct NewUser(UserImport);

impl NewUser {
    pub fn new(n: u64) -> Self {
        let id = user_id(n);
        let created = ((BASE_MILLIS + n * 1000) * 1000) as i64;
        let mut user = NewUser(UserImport {
            user: user::Model {
                id: id.clone(),
                organization_id: ORG_A.into(),
                schema_id: EMPLOYEE.into(),
                schema_revision: 1,
                schema_type: "Employee".into(),
                schema_type_lower: "employee".into(),
                data: json!({"n": n}),
                state: UserState::Active.number(),
                email: None,
                email_lower: None,
                email_verified: false,
                phone: None,
                phone_lower: None,
                phone_verified: false,
                // Derived from the data by the import.
                name: None,
                name_lower: None,
                last_login: None,
                created_at: created,
                changed_at: created,
                sequence: 0,
                authenticators: None,
            },
            usernames: vec![],
            password: None,
            web_auth_n: vec![],
            totps: vec![],
            otp_sms: vec![],
            otp_emails: vec![],
            authentication_keys: vec![],
            idp_links: vec![],
        });
        user = user.username(&format!("user{n}"), false);
        user
    }

    pub fn id(&self) -> String {
        self.0.user.id.clone()
    }

    pub fn org(mut self, org: &str) -> Self {
        self.0.user.organization_id = org.into();
        for name in &mut self.0.usernames {
            name.organization_id = org.into();
            if name.is_organization_specific {
                name.uniqueness_scope = org.into();
            }
        }
        self
    }

    pub fn customer(mut self) -> Self {
        self.0.user.schema_id = CUSTOMER.into();
        self.0.user.schema_type = "customer".into();
        self.0.user.schema_type_lower = "customer".into();
        self
    }

    pub fn email(mut self, address: &str) -> Self {
        self.0.user.email = Some(address.into());
        self.0.user.email_lower = Some(fold_case(address));
        self
    }

    pub fn phone(mut self, number: &str) -> Self {
        self.0.user.phone = Some(number.into());
        self.0.user.phone_lower = Some(fold_case(number));
        self
    }

    pub fn state(mut self, state: UserState) -> Self {
        self.0.user.state = state.number();
        self
    }

    /// Creation time in micros since the epoch.
    pub fn created(mut self, micros: i64) -> Self {
        self.0.user.created_at = micros;
        self
    }

    pub fn changed(mut self, micros: i64) -> Self {
        self.0.user.changed_at = micros;
        self
    }

    pub fn without_usernames(mut self) -> Self {
        self.0.usernames.clear();
        self
    }

    pub fn username(mut self, name: &str, organization_specific: bool) -> Self {
        let n = self.0.usernames.len();
        let org = self.0.user.organization_id.clone();
        self.0.usernames.push(username::Model {
            id: format!("{}-u{n}", self.0.user.id),
            user_id: self.0.user.id.clone(),
            organization_id: org.clone(),
            username: name.into(),
            username_lower: fold_case(name),
            is_organization_specific: organization_specific,
            uniqueness_scope: if organization_specific {
                org
            } else {
                username::INSTANCE_SCOPE.into()
            },
            created_at: self.0.user.created_at + n as i64,
        });
        self
    }

    /// One authenticator of every kind.
    pub fn every_authenticator(mut self) -> Self {
        let id = self.0.user.id.clone();
        let at = self.0.user.created_at;
        self.0.password = Some(password::Model {
            user_id: id.clone(),
            hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
            changed_at: at + 10,
            change_required: false,
        });
        self.0.web_auth_n.push(webauthn_credential::Model {
            id: format!("{id}-w"),
            user_id: id.clone(),
            name: "YubiKey".into(),
            is_verified: true,
            user_verified: true,
            credential: None,
            created_at: at,
        });
        self.0.totps.push(totp::Model {
            id: format!("{id}-t"),
            user_id: id.clone(),
            name: "Phone app".into(),
            secret: "JBSWY3DPEHPK3PXP".into(),
            is_verified: false,
            created_at: at,
        });
        self.0.otp_sms.push(otp_sms::Model {
            id: format!("{id}-s"),
            user_id: id.clone(),
            phone: "+41790000000".into(),
            is_verified: true,
            created_at: at,
        });
        self.0.otp_emails.push(otp_email::Model {
            id: format!("{id}-e"),
            user_id: id.clone(),
            address: "otp@example.com".into(),
            is_verified: false,
            created_at: at,
        });
        self.0.authentication_keys.push(authentication_key::Model {
            id: format!("{id}-k"),
            user_id: id.clone(),
            key_type: 1,
            public_key: "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n".into(),
            expiration_date: Some(at + 1_000_000),
            created_at: at,
            changed_at: at + 20,
            sequence: 0,
        });
        self.0.idp_links.push(idp_link::Model {
            id: format!("{id}-i"),
            user_id: id.clone(),
            // Set by the import from the user's organization.
            organization_id: String::new(),
            idp_id: "github".into(),
            idp_name: "GitHub".into(),
            external_user_id: format!("ext-{id}"),
            external_username: "octocat".into(),
            created_at: at,
        });
        self
    }

    /// Replaces the data (`{"n": n}` by default).
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.0.user.data = data;
        self
    }

    pub fn last_login(mut self, micros: i64) -> Self {
        self.0.user.last_login = Some(micros);
        self
    }

    pub fn build(self) -> UserImport {
        self.0
    }
}

/// Writes the users in one batch (one event each, in the given order).
pub async fn insert(db: &DatabaseConnection, users: Vec<NewUser>) {
    import::import_users(db, users.into_iter().map(NewUser::build).collect())
        .await
        .unwrap();
}
