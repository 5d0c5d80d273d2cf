//! Reading users with everything the API returns about them.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::domain::Scope;
use crate::domain::{
    AuthenticationKey, AuthenticationKeyType, Authenticators, Contact, IdentityProviderLink,
    OtpEmail, OtpSms, PasswordInfo, SchemaRef, Timestamp, Totp, User, UserState, Username,
    Verifiable, WebAuthN,
};
use crate::error::Error;
use crate::limits::regex_searches::RegexSearches;
use crate::query::{Filter, Query, TextMatch, TextOp, UserSearch};
use crate::store::entities::{
    authentication_key, idp_link, otp_email, otp_sms, password, totp, user, username,
    webauthn_credential,
};
use crate::store::reads::compile;
use crate::store::writes::events;
use crate::store::{ScopedDb, begin_snapshot};

/// One page of a user search.
#[derive(Clone, Debug)]
pub struct UserPage {
    /// Distinct matching users, independent of offset and limit.
    pub total: u64,
    /// The newest event the page reflects, if the directory has any.
    pub processed: Option<(i64, Timestamp)>,
    pub users: Vec<User>,
}

/// The users matching `search` within the caller's scope: a scoped caller's search is narrowed
/// to its organization before it is compiled, so totals never count other organizations. A
/// search with a regex leaf holds a place of `regex_searches` while it runs (ResourceExhausted
/// when there is none).
pub async fn list_users(
    db: &ScopedDb,
    regex_searches: &RegexSearches,
    search: &UserSearch,
) -> Result<UserPage, Error> {
    let _place = match &search.query {
        Some(query) if query.uses_regex() => Some(regex_searches.enter().await?),
        _ => None,
    };
    Ok(page(db, search).await?)
}

async fn page(db: &ScopedDb, search: &UserSearch) -> Result<UserPage, DbErr> {
    let query = narrowed(db.scope(), search.query.clone());
    let txn = begin_snapshot(db.connection()).await?;
    let total = compile::filter_users(query.as_ref()).count(&txn).await?;
    let rows = compile::select_users(query.as_ref(), search.sort, search.ascending)
        .offset(search.offset)
        .limit(search.limit)
        .all(&txn)
        .await?;
    let processed = events::processed(&txn, db.scope()).await?;
    let users = assemble(&txn, db.scope(), rows).await?;
    txn.commit().await?;
    Ok(UserPage {
        total,
        processed,
        users,
    })
}

fn narrowed(scope: &Scope, query: Option<Query>) -> Option<Query> {
    let Some(organization) = scope.organization() else {
        return query;
    };
    let own = Query::Filter(Filter::OrganizationId(TextMatch {
        op: TextOp::Equals,
        ignore_case: false,
        value: organization.to_owned(),
    }));
    Some(match query {
        None => own,
        Some(query) => Query::And(vec![own, query]),
    })
}

/// One user; a user outside the caller's scope is None, exactly like a missing one.
pub async fn get_user(db: &ScopedDb, id: &str) -> Result<Option<User>, DbErr> {
    let txn = begin_snapshot(db.connection()).await?;
    let Some(row) = user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .filter(|row| db.scope().admits(&row.organization_id))
    else {
        return Ok(None);
    };
    let user = assemble(&txn, db.scope(), vec![row]).await?.pop();
    txn.commit().await?;
    Ok(user)
}

/// Loads the authenticators of all rows with one query per kind, keeping the rows' order;
/// sequences as the caller counts them (see `events::as_seen`).
async fn assemble(
    db: &impl ConnectionTrait,
    scope: &Scope,
    mut rows: Vec<user::Model>,
) -> Result<Vec<User>, DbErr> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
    let mut usernames = by_user::<username::Entity, _>(
        db,
        &ids,
        username::Column::UserId,
        username::Column::CreatedAt,
        username::Column::Id,
        |m| &m.user_id,
    )
    .await?;
    let mut passwords = by_user::<password::Entity, _>(
        db,
        &ids,
        password::Column::UserId,
        password::Column::ChangedAt,
        password::Column::UserId,
        |m| &m.user_id,
    )
    .await?;
    let mut web_auth_n = by_user::<webauthn_credential::Entity, _>(
        db,
        &ids,
        webauthn_credential::Column::UserId,
        webauthn_credential::Column::CreatedAt,
        webauthn_credential::Column::Id,
        |m| &m.user_id,
    )
    .await?;
    let mut totps = by_user::<totp::Entity, _>(
        db,
        &ids,
        totp::Column::UserId,
        totp::Column::CreatedAt,
        totp::Column::Id,
        |m| &m.user_id,
    )
    .await?;
    let mut sms = by_user::<otp_sms::Entity, _>(
        db,
        &ids,
        otp_sms::Column::UserId,
        otp_sms::Column::CreatedAt,
        otp_sms::Column::Id,
        |m| &m.user_id,
    )
    .await?;
    let mut emails = by_user::<otp_email::Entity, _>(
        db,
        &ids,
        otp_email::Column::UserId,
        otp_email::Column::CreatedAt,
        otp_email::Column::Id,
        |m| &m.user_id,
    )
    .await?;
    let mut keys = by_user::<authentication_key::Entity, _>(
        db,
        &ids,
        authentication_key::Column::UserId,
        authentication_key::Column::CreatedAt,
        authentication_key::Column::Id,
        |m| &m.user_id,
    )
    .await?;
    let mut idps = by_user::<idp_link::Entity, _>(
        db,
        &ids,
        idp_link::Column::UserId,
        idp_link::Column::CreatedAt,
        idp_link::Column::Id,
        |m| &m.user_id,
    )
    .await?;
    if scope.organization().is_some() {
        let sequences = rows.iter().map(|r| r.sequence).chain(
            keys.values()
                .flat_map(|keys| keys.iter().map(|k| k.sequence)),
        );
        let seen = events::as_seen(db, scope, sequences.collect::<Vec<_>>()).await?;
        let seen = |sequence: i64| seen.get(&sequence).copied().unwrap_or_default();
        for row in &mut rows {
            row.sequence = seen(row.sequence);
        }
        for key in keys.values_mut().flatten() {
            key.sequence = seen(key.sequence);
        }
    }

    rows.into_iter()
        .map(|row| {
            let id = row.id.clone();
            let authenticators = Authenticators {
                usernames: take(&mut usernames, &id)
                    .into_iter()
                    .map(|m| Username {
                        id: m.id,
                        username: m.username,
                        is_organization_specific: m.is_organization_specific,
                    })
                    .collect(),
                password: take(&mut passwords, &id)
                    .into_iter()
                    .next()
                    .map(|m| PasswordInfo {
                        last_changed: Timestamp::from_micros(m.changed_at),
                    }),
                web_auth_n: take(&mut web_auth_n, &id)
                    .into_iter()
                    .map(|m| WebAuthN {
                        id: m.id,
                        name: m.name,
                        is_verified: m.is_verified,
                        user_verified: m.user_verified,
                    })
                    .collect(),
                totps: take(&mut totps, &id)
                    .into_iter()
                    .map(|m| Totp {
                        id: m.id,
                        name: m.name,
                        is_verified: m.is_verified,
                    })
                    .collect(),
                otp_sms: take(&mut sms, &id)
                    .into_iter()
                    .map(|m| OtpSms {
                        id: m.id,
                        phone: m.phone,
                        is_verified: m.is_verified,
                    })
                    .collect(),
                otp_email: take(&mut emails, &id)
                    .into_iter()
                    .map(|m| OtpEmail {
                        id: m.id,
                        address: m.address,
                        is_verified: m.is_verified,
                    })
                    .collect(),
                authentication_keys: take(&mut keys, &id)
                    .into_iter()
                    .map(|m| AuthenticationKey {
                        id: m.id,
                        key_type: AuthenticationKeyType::Json,
                        expiration_date: m.expiration_date.map(Timestamp::from_micros),
                        changed_at: Timestamp::from_micros(m.changed_at),
                        sequence: m.sequence,
                    })
                    .collect(),
                identity_providers: take(&mut idps, &id)
                    .into_iter()
                    .map(|m| IdentityProviderLink {
                        idp_id: m.idp_id,
                        idp_name: m.idp_name,
                        external_user_id: m.external_user_id,
                        external_username: m.external_username,
                    })
                    .collect(),
            };
            user_from_row(row, authenticators)
        })
        .collect()
}

fn user_from_row(row: user::Model, authenticators: Authenticators) -> Result<User, DbErr> {
    let state = UserState::from_number(row.state.into())
        .ok_or_else(|| DbErr::Custom(format!("user {} has unknown state {}", row.id, row.state)))?;
    let revision = u32::try_from(row.schema_revision).map_err(|_| {
        DbErr::Custom(format!(
            "user {} has schema revision {}",
            row.id, row.schema_revision
        ))
    })?;
    let verifiable =
        |value: Option<String>, is_verified| value.map(|value| Verifiable { value, is_verified });
    Ok(User {
        id: row.id,
        organization_id: row.organization_id,
        state,
        schema: SchemaRef {
            id: row.schema_id,
            schema_type: row.schema_type,
            revision,
        },
        data: row.data,
        contact: Contact {
            email: verifiable(row.email, row.email_verified),
            phone: verifiable(row.phone, row.phone_verified),
        },
        authenticators,
        last_login: row.last_login.map(Timestamp::from_micros),
        created_at: Timestamp::from_micros(row.created_at),
        changed_at: Timestamp::from_micros(row.changed_at),
        sequence: row.sequence,
    })
}

fn take<M>(map: &mut HashMap<String, Vec<M>>, id: &str) -> Vec<M> {
    map.remove(id).unwrap_or_default()
}

/// Rows of one authenticator table belonging to the given users, grouped by user, each group
/// in creation order.
async fn by_user<E, C>(
    db: &impl ConnectionTrait,
    ids: &[String],
    user_id: E::Column,
    created: E::Column,
    id: E::Column,
    key: C,
) -> Result<HashMap<String, Vec<E::Model>>, DbErr>
where
    E: EntityTrait,
    C: Fn(&E::Model) -> &String,
{
    let rows = E::find()
        .filter(user_id.is_in(ids.iter().map(String::as_str)))
        .order_by_asc(created)
        .order_by_asc(id)
        .all(db)
        .await?;
    let mut groups: HashMap<String, Vec<E::Model>> = HashMap::new();
    for row in rows {
        groups.entry(key(&row).clone()).or_default().push(row);
    }
    Ok(groups)
}
