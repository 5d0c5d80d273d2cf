use super::Timestamp;

/// Largest data a user may hold, in bytes of compact JSON, and most JSON values in it
/// (objects, arrays and scalars, the data object included). Data is read and written whole on
/// every read of the user and in every page of a listing, so one user must not hold what the
/// message limit would let through (4 MiB, or a million values). The value cap keeps any data
/// that is accepted small enough for a JSON body under the default limits (65,536 values). Its
/// nesting needs no bound of its own: protobuf decoding already stops at 100 levels (about 33
/// nested objects).
pub const MAX_USER_DATA_BYTES: usize = 256 * 1024;
pub const MAX_USER_DATA_VALUES: usize = 32 * 1024;

/// Refuses data above [`MAX_USER_DATA_BYTES`] as compact JSON or above
/// [`MAX_USER_DATA_VALUES`]. Both are counted without writing anything out, and counting stops
/// at the limit.
pub fn check_data_size(data: &serde_json::Value) -> Result<(), String> {
    /// Counts bytes and fails once there are more than the limit.
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            if self.0 > MAX_USER_DATA_BYTES {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    /// Takes `value` and everything in it from `left`; false once that runs out.
    fn take(value: &serde_json::Value, left: &mut usize) -> bool {
        let Some(rest) = left.checked_sub(1) else {
            return false;
        };
        *left = rest;
        match value {
            serde_json::Value::Array(items) => items.iter().all(|item| take(item, left)),
            serde_json::Value::Object(fields) => fields.values().all(|item| take(item, left)),
            _ => true,
        }
    }
    let mut left = MAX_USER_DATA_VALUES;
    if !take(data, &mut left) {
        return Err(format!(
            "must hold at most {MAX_USER_DATA_VALUES} JSON values"
        ));
    }
    serde_json::to_writer(Counter(0), data)
        .map_err(|_| format!("must be at most {MAX_USER_DATA_BYTES} bytes as compact JSON"))
}

/// The name a user goes by, derived from its data: `name` when it is a non-blank string, else
/// the non-blank strings `givenName` and `familyName` joined by a space, else none. Stored (with
/// its case folding) in the `users.name` column on every write of the data, so that searches
/// by name are indexed and fold the same on both backends. Migration 3 holds a copy of this
/// rule for existing rows.
pub fn display_name(data: &serde_json::Value) -> Option<String> {
    let string = |key: &str| {
        data.get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    if let Some(name) = string("name") {
        return Some(name.to_owned());
    }
    let parts: Vec<&str> = ["givenName", "familyName"]
        .into_iter()
        .filter_map(string)
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Lifecycle state of a user. The numbers are the proto enum's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserState {
    Active = 1,
    Inactive = 2,
    Deleted = 3,
    Locked = 4,
}

impl UserState {
    pub const ALL: [UserState; 4] = [Self::Active, Self::Inactive, Self::Deleted, Self::Locked];

    pub fn number(self) -> i16 {
        self as i16
    }

    pub fn from_number(number: i64) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|state| state.number() as i64 == number)
    }
}

/// A change of a user's lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateChange {
    Deactivate,
    Reactivate,
    Lock,
    Unlock,
}

impl UserState {
    /// The state after `change`, or why the change is not allowed from this state.
    pub fn apply(self, change: StateChange) -> Result<UserState, &'static str> {
        use StateChange::*;
        use UserState::*;
        match (change, self) {
            (_, Deleted) => Err("the user is deleted"),
            (Deactivate, Active | Locked) => Ok(Inactive),
            (Deactivate, Inactive) => Err("the user is already inactive"),
            (Reactivate, Inactive) => Ok(Active),
            (Reactivate, _) => Err("only an inactive user can be reactivated"),
            (Lock, Active) => Ok(Locked),
            (Lock, Locked) => Err("the user is already locked"),
            (Lock, Inactive) => Err("an inactive user cannot be locked"),
            (Unlock, Locked) => Ok(Active),
            (Unlock, _) => Err("only a locked user can be unlocked"),
        }
    }
}

/// A user with everything a read returns.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: String,
    pub organization_id: String,
    pub state: UserState,
    pub schema: SchemaRef,
    pub data: serde_json::Value,
    pub contact: Contact,
    pub authenticators: Authenticators,
    pub last_login: Option<Timestamp>,
    pub created_at: Timestamp,
    pub changed_at: Timestamp,
    /// Sequence of the user's last event.
    pub sequence: i64,
}

/// The schema revision a user's data follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaRef {
    pub id: String,
    pub schema_type: String,
    pub revision: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contact {
    pub email: Option<Verifiable>,
    pub phone: Option<Verifiable>,
}

/// A contact value and whether the user proved to own it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifiable {
    pub value: String,
    pub is_verified: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authenticators {
    pub usernames: Vec<Username>,
    pub password: Option<PasswordInfo>,
    pub web_auth_n: Vec<WebAuthN>,
    pub totps: Vec<Totp>,
    pub otp_sms: Vec<OtpSms>,
    pub otp_email: Vec<OtpEmail>,
    pub authentication_keys: Vec<AuthenticationKey>,
    pub identity_providers: Vec<IdentityProviderLink>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username {
    pub id: String,
    pub username: String,
    pub is_organization_specific: bool,
}

/// What is visible of a password: only when it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordInfo {
    pub last_changed: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebAuthN {
    pub id: String,
    pub name: String,
    pub is_verified: bool,
    pub user_verified: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totp {
    pub id: String,
    pub name: String,
    pub is_verified: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtpSms {
    pub id: String,
    pub phone: String,
    pub is_verified: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtpEmail {
    pub id: String,
    pub address: String,
    pub is_verified: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthenticationKeyType {
    Json = 1,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticationKey {
    pub id: String,
    pub key_type: AuthenticationKeyType,
    pub expiration_date: Option<Timestamp>,
    pub changed_at: Timestamp,
    pub sequence: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityProviderLink {
    pub idp_id: String,
    pub idp_name: String,
    pub external_user_id: String,
    pub external_username: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_size_is_counted_in_bytes_and_values_up_to_the_limits() {
        let data = |size: usize| {
            let value = serde_json::json!({"pad": "x".repeat(size - r#"{"pad":""}"#.len())});
            assert_eq!(serde_json::to_vec(&value).unwrap().len(), size);
            value
        };
        assert_eq!(check_data_size(&data(MAX_USER_DATA_BYTES)), Ok(()));
        assert_eq!(
            check_data_size(&data(MAX_USER_DATA_BYTES + 1)),
            Err("must be at most 262144 bytes as compact JSON".into())
        );
        // The list and its items.
        let list = |items: usize| serde_json::json!(vec![0; items]);
        assert_eq!(check_data_size(&list(MAX_USER_DATA_VALUES - 1)), Ok(()));
        assert_eq!(
            check_data_size(&list(MAX_USER_DATA_VALUES)),
            Err("must hold at most 32768 JSON values".into())
        );
        assert!(check_data_size(&list(1_000_000)).is_err());
    }

    #[test]
    fn display_names_prefer_name_then_given_and_family() {
        use serde_json::json;
        assert_eq!(
            display_name(&json!({"name": "Zoë", "givenName": "x"})),
            Some("Zoë".into())
        );
        assert_eq!(
            display_name(&json!({"name": " ", "givenName": "Ann", "familyName": "Lee"})),
            Some("Ann Lee".into())
        );
        assert_eq!(
            display_name(&json!({"familyName": "Lee"})),
            Some("Lee".into())
        );
        assert_eq!(display_name(&json!({"givenName": 3})), None);
        assert_eq!(display_name(&json!([1])), None);
    }

    #[test]
    fn state_changes_follow_the_lifecycle() {
        use StateChange::*;
        use UserState::*;
        assert_eq!(Active.apply(Deactivate), Ok(Inactive));
        assert_eq!(Locked.apply(Deactivate), Ok(Inactive));
        assert_eq!(Inactive.apply(Reactivate), Ok(Active));
        assert_eq!(Active.apply(Lock), Ok(Locked));
        assert_eq!(Locked.apply(Unlock), Ok(Active));
        assert!(Active.apply(Reactivate).is_err());
        assert!(Inactive.apply(Deactivate).is_err());
        assert!(Active.apply(Unlock).is_err());
        assert!(Inactive.apply(Lock).is_err());
        for change in [Deactivate, Reactivate, Lock, Unlock] {
            assert_eq!(Deleted.apply(change), Err("the user is deleted"));
        }
    }
}
