//! Domain values to their proto messages.

use crate::domain::{Timestamp, User, UserState};
use crate::proto::user::v1 as pb;

pub fn timestamp(time: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.seconds(),
        nanos: time.subsec_nanos(),
    }
}

/// Sequences are never negative; a corrupt one shows as 0 rather than a huge number.
fn sequence(sequence: i64) -> u64 {
    u64::try_from(sequence).unwrap_or_default()
}

pub fn details(sequence_number: i64, changed: Timestamp, resource_owner: &str) -> pb::Details {
    pb::Details {
        sequence: sequence(sequence_number),
        change_date: Some(timestamp(changed)),
        resource_owner: resource_owner.to_owned(),
    }
}

pub fn written(written: &crate::store::writes::unit::Written) -> pb::Details {
    details(written.seen_sequence, written.at, &written.resource_owner)
}

/// A page of users; `next_page_token` is empty on the last page.
pub fn list_users_response(
    page: crate::store::reads::users::UserPage,
    sort: crate::query::SortField,
    next_page_token: String,
) -> pb::ListUsersResponse {
    pb::ListUsersResponse {
        details: Some(pb::ListDetails {
            next_page_token,
            ..list_details(page.total, page.processed)
        }),
        sorting_column: super::search::field_name(sort).into(),
        result: page.users.into_iter().map(user).collect(),
    }
}

pub fn list_details(total: u64, processed: Option<(i64, Timestamp)>) -> pb::ListDetails {
    pb::ListDetails {
        total_result: total,
        processed_sequence: processed
            .map(|(number, _)| sequence(number))
            .unwrap_or_default(),
        timestamp: processed.map(|(_, at)| timestamp(at)),
        next_page_token: String::new(),
    }
}

pub fn state(state: UserState) -> pb::State {
    match state {
        UserState::Active => pb::State::UserStateActive,
        UserState::Inactive => pb::State::UserStateInactive,
        UserState::Deleted => pb::State::UserStateDeleted,
        UserState::Locked => pb::State::UserStateLocked,
    }
}

pub fn user(user: User) -> pb::User {
    let a = user.authenticators;
    let resource_owner = user.organization_id;
    pb::User {
        details: Some(details(user.sequence, user.changed_at, &resource_owner)),
        user_id: user.id,
        authenticators: Some(pb::Authenticators {
            usernames: a
                .usernames
                .into_iter()
                .map(|u| pb::Username {
                    username_id: u.id,
                    username: u.username,
                    is_organization_specific: u.is_organization_specific,
                })
                .collect(),
            password: a.password.map(|p| pb::Password {
                last_changed: Some(timestamp(p.last_changed)),
            }),
            web_auth_n: a
                .web_auth_n
                .into_iter()
                .map(|w| pb::WebAuthN {
                    web_auth_n_id: w.id,
                    name: w.name,
                    is_verified: w.is_verified,
                    user_verified: w.user_verified,
                })
                .collect(),
            totps: a
                .totps
                .into_iter()
                .map(|t| pb::Totp {
                    totp_id: t.id,
                    name: t.name,
                    is_verified: t.is_verified,
                })
                .collect(),
            otp_sms: a
                .otp_sms
                .into_iter()
                .map(|o| pb::Otpsms {
                    otp_sms_id: o.id,
                    phone: o.phone,
                    is_verified: o.is_verified,
                })
                .collect(),
            otp_email: a
                .otp_email
                .into_iter()
                .map(|o| pb::OtpEmail {
                    otp_email_id: o.id,
                    address: o.address,
                    is_verified: o.is_verified,
                })
                .collect(),
            authentication_keys: a
                .authentication_keys
                .into_iter()
                .map(|k| pb::AuthenticationKey {
                    authentication_key_id: k.id,
                    details: Some(details(k.sequence, k.changed_at, &resource_owner)),
                    r#type: pb::AuthNKeyType::AuthnKeyTypeJson.into(),
                    expiration_date: k.expiration_date.map(timestamp),
                })
                .collect(),
            identity_providers: a
                .identity_providers
                .into_iter()
                .map(|i| pb::IdentityProvider {
                    idp_id: i.idp_id,
                    idp_name: i.idp_name,
                    user_id: i.external_user_id,
                    username: i.external_username,
                })
                .collect(),
        }),
        contact: Some(pb::Contact {
            email: user.contact.email.map(|e| pb::Email {
                address: e.value,
                is_verified: e.is_verified,
            }),
            phone: user.contact.phone.map(|p| pb::Phone {
                number: p.value,
                is_verified: p.is_verified,
            }),
        }),
        state: state(user.state).into(),
        schema: Some(pb::Schema {
            id: user.schema.id,
            r#type: user.schema.schema_type,
            revision: user.schema.revision,
        }),
        data: json_object(user.data),
        last_login: user.last_login.map(timestamp),
    }
}

/// A JSON object as a `google.protobuf.Struct`; user data is always an object.
pub fn json_object(value: serde_json::Value) -> Option<prost_types::Struct> {
    match value {
        serde_json::Value::Object(map) => Some(prost_types::Struct {
            fields: map.into_iter().map(|(k, v)| (k, json_value(v))).collect(),
        }),
        _ => None,
    }
}

fn json_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value as J;
    let kind = match value {
        J::Null => Kind::NullValue(prost_types::NullValue::NullValue.into()),
        J::Bool(b) => Kind::BoolValue(b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        J::String(s) => Kind::StringValue(s),
        J::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(json_value).collect(),
        }),
        J::Object(map) => Kind::StructValue(prost_types::Struct {
            fields: map.into_iter().map(|(k, v)| (k, json_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}
