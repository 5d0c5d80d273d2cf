//! Every authenticator of a set of users in one statement: a UNION ALL over the authenticator
//! tables, each selecting the same row shape (a kind, the owner, an order, and typed slots that
//! each kind fills with its own fields), so a page costs one round trip for all of them instead
//! of one per kind. Plain sea-query on both backends; the users' ids are bound parameters.
//!
//! A page's authenticators come grouped, one row per user holding all of that user's
//! authenticators as one JSON array (see [`of_users`]): 100 rows of two values instead of some
//! 300 rows of thirteen, each value of which the SQLite driver copies and hands from its
//! worker thread to ours, and sea-orm looks up by name.

use std::collections::HashMap;

use sea_orm::sea_query::{
    Alias, CommonTableExpression, Expr, ExprTrait, Func, IntoIden, JoinType, Order, Query as Sql,
    SelectStatement, UnionType, WithClause, WithQuery,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, QueryResult};
use serde::Deserialize;

use crate::domain::{
    AuthenticationKey, AuthenticationKeyType, Authenticators, IdentityProviderLink, OtpEmail,
    OtpSms, PasswordInfo, Scope, Timestamp, Totp, Username, WebAuthN,
};
use crate::store::entities::{
    authentication_key, idp_link, otp_email, otp_sms, password, totp, user, username,
    webauthn_credential,
};
use crate::store::reads::sequences;

/// Which table a row of the union comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Username = 1,
    Password = 2,
    WebAuthN = 3,
    Totp = 4,
    OtpSms = 5,
    OtpEmail = 6,
    AuthenticationKey = 7,
    IdentityProvider = 8,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Username,
        Kind::Password,
        Kind::WebAuthN,
        Kind::Totp,
        Kind::OtpSms,
        Kind::OtpEmail,
        Kind::AuthenticationKey,
        Kind::IdentityProvider,
    ];

    fn from_number(number: i32) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| *kind as i32 == number)
    }
}

/// One row of the union. Which slots a kind fills is decided in `branch` and read back in
/// `add`; the others are NULL.
#[derive(Debug, FromQueryResult)]
struct Row {
    kind: i32,
    user_id: String,
    /// The row's id (the user's for its one password), the order's tie-breaker.
    id: String,
    /// When it was created (a password: last changed), the order.
    sort_at: i64,
    text_1: Option<String>,
    text_2: Option<String>,
    text_3: Option<String>,
    text_4: Option<String>,
    flag_1: Option<bool>,
    flag_2: Option<bool>,
    number_1: Option<i64>,
    number_2: Option<i64>,
    number_3: Option<i64>,
}

/// The columns of a row of the union (see [`Row`]).
const KIND: &str = "kind";
const USER_ID: &str = "user_id";
const ID: &str = "id";
const SORT_AT: &str = "sort_at";
const TEXTS: [&str; 4] = ["text_1", "text_2", "text_3", "text_4"];
const FLAGS: [&str; 2] = ["flag_1", "flag_2"];
const NUMBERS: [&str; 3] = ["number_1", "number_2", "number_3"];

/// What one kind's table puts into the common row shape.
struct Branch {
    kind: Kind,
    table: sea_orm::sea_query::DynIden,
    user_id: Expr,
    id: Expr,
    sort_at: Expr,
    texts: Vec<Expr>,
    flags: Vec<Expr>,
    numbers: Vec<Expr>,
}

impl Branch {
    fn new(kind: Kind, table: impl IntoIden, user_id: Expr, id: Expr, sort_at: Expr) -> Self {
        Self {
            kind,
            table: table.into_iden(),
            user_id,
            id,
            sort_at,
            texts: Vec::new(),
            flags: Vec::new(),
            numbers: Vec::new(),
        }
    }

    fn texts(mut self, texts: impl IntoIterator<Item = Expr>) -> Self {
        self.texts = texts.into_iter().collect();
        self
    }

    fn flags(mut self, flags: impl IntoIterator<Item = Expr>) -> Self {
        self.flags = flags.into_iter().collect();
        self
    }

    fn numbers(mut self, numbers: impl IntoIterator<Item = Expr>) -> Self {
        self.numbers = numbers.into_iter().collect();
        self
    }

    /// The branch's SELECT over its table. Unused slots are NULLs bound with their slot's
    /// type, so PostgreSQL resolves every column of the union to one type whatever the order
    /// of the branches.
    fn select(self) -> SelectStatement {
        let mut select = Sql::select();
        select
            .expr_as(Expr::val(self.kind as i32), KIND)
            .expr_as(self.user_id.clone(), USER_ID)
            .expr_as(self.id, ID)
            .expr_as(self.sort_at, SORT_AT);
        let mut texts = self.texts.into_iter();
        for name in TEXTS {
            select.expr_as(texts.next().unwrap_or(Expr::val(None::<String>)), name);
        }
        let mut flags = self.flags.into_iter();
        for name in FLAGS {
            select.expr_as(flags.next().unwrap_or(Expr::val(None::<bool>)), name);
        }
        let mut numbers = self.numbers.into_iter();
        for name in NUMBERS {
            select.expr_as(numbers.next().unwrap_or(Expr::val(None::<i64>)), name);
        }
        select.from(self.table).and_where(
            self.user_id
                .in_subquery(Sql::select().column(WANTED_ID).from(WANTED).to_owned()),
        );
        select
    }
}

/// The common table of the wanted users' ids. The ids are bound once, in it, rather than once
/// per branch: eight copies of a page's ids make a statement large enough to leave the client
/// in several writes, and one waiting behind the database's delayed ACK costs about 40 ms.
const WANTED: &str = "wanted_users";
const WANTED_ID: &str = "user_id";

/// Every authenticator of the users in [`WANTED`], grouped by user: one row per user with
/// authenticators, its [`USER_ID`] and in [`GROUPED`] a JSON array of [`Entry`] rows, unordered
/// (see [`of_users`]). The wanted users are looked up once (MATERIALIZED) rather than once per
/// branch of the union.
fn statement(scope: &Scope, ids: &[String], backend: DbBackend) -> WithQuery {
    let (array, aggregate) = match backend {
        DbBackend::Postgres => ("json_build_array", "json_agg"),
        _ => ("json_array", "json_group_array"),
    };
    let slots = [KIND, ID, SORT_AT]
        .into_iter()
        .chain(TEXTS)
        .chain(FLAGS)
        .chain(NUMBERS)
        .map(|slot| Expr::col(Alias::new(slot)));
    let entry = Func::cust(array).args(slots);
    let mut grouped = Sql::select();
    grouped
        .expr_as(Expr::col(Alias::new(USER_ID)), USER_ID)
        // Text on both backends (PostgreSQL's json_agg is of type json).
        .expr_as(
            Expr::from(Func::cust(aggregate).arg(entry)).cast_as(Alias::new("text")),
            GROUPED,
        )
        .from_subquery(union(scope), Alias::new(JOINED))
        .group_by_col(Alias::new(USER_ID));
    WithClause::new()
        .cte(wanted(ids).materialized(true).to_owned())
        .to_owned()
        .query(grouped)
}

/// The column of [`statement`] holding a user's authenticators.
const GROUPED: &str = "authenticators";

/// One authenticator in [`GROUPED`]: the slots of a [`Row`] in the order [`statement`] lists
/// them, without the user's id (the row's).
#[derive(Debug, Deserialize)]
struct Entry(
    i32,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Flag>,
    Option<Flag>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

impl Entry {
    fn into_row(self, user_id: &str) -> Row {
        let Entry(kind, id, sort_at, t1, t2, t3, t4, f1, f2, n1, n2, n3) = self;
        Row {
            kind,
            user_id: user_id.to_owned(),
            id,
            sort_at,
            text_1: t1,
            text_2: t2,
            text_3: t3,
            text_4: t4,
            flag_1: f1.map(|Flag(flag)| flag),
            flag_2: f2.map(|Flag(flag)| flag),
            number_1: n1,
            number_2: n2,
            number_3: n3,
        }
    }
}

/// A boolean as JSON holds it: `true`/`false` from PostgreSQL, `1`/`0` from SQLite (which
/// stores booleans as integers).
#[derive(Debug)]
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Flag;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a boolean, or 0 or 1")
            }
            fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<Flag, E> {
                Ok(Flag(value))
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Flag, E> {
                match value {
                    0 | 1 => Ok(Flag(value == 1)),
                    _ => Err(E::invalid_value(
                        serde::de::Unexpected::Unsigned(value),
                        &self,
                    )),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Flag, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(E::invalid_value(
                        serde::de::Unexpected::Signed(value),
                        &self,
                    )),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The union over every authenticator table, of the users in [`WANTED`], unordered.
fn union(scope: &Scope) -> SelectStatement {
    use authentication_key::Column as K;
    use idp_link::Column as I;
    use otp_email::Column as E;
    use otp_sms::Column as S;
    use password::Column as P;
    use totp::Column as T;
    use username::Column as U;
    use webauthn_credential::Column as W;
    let u = |c: U| Expr::col((username::Entity, c));
    let p = |c: P| Expr::col((password::Entity, c));
    let w = |c: W| Expr::col((webauthn_credential::Entity, c));
    let t = |c: T| Expr::col((totp::Entity, c));
    let s = |c: S| Expr::col((otp_sms::Entity, c));
    let e = |c: E| Expr::col((otp_email::Entity, c));
    let k = |c: K| Expr::col((authentication_key::Entity, c));
    let i = |c: I| Expr::col((idp_link::Entity, c));
    let branches = [
        Branch::new(
            Kind::Username,
            username::Entity,
            u(U::UserId),
            u(U::Id),
            u(U::CreatedAt),
        )
        .texts([u(U::Username)])
        .flags([u(U::IsOrganizationSpecific)]),
        Branch::new(
            Kind::Password,
            password::Entity,
            p(P::UserId),
            p(P::UserId),
            p(P::ChangedAt),
        ),
        Branch::new(
            Kind::WebAuthN,
            webauthn_credential::Entity,
            w(W::UserId),
            w(W::Id),
            w(W::CreatedAt),
        )
        .texts([w(W::Name)])
        .flags([w(W::IsVerified), w(W::UserVerified)]),
        Branch::new(
            Kind::Totp,
            totp::Entity,
            t(T::UserId),
            t(T::Id),
            t(T::CreatedAt),
        )
        .texts([t(T::Name)])
        .flags([t(T::IsVerified)]),
        Branch::new(
            Kind::OtpSms,
            otp_sms::Entity,
            s(S::UserId),
            s(S::Id),
            s(S::CreatedAt),
        )
        .texts([s(S::Phone)])
        .flags([s(S::IsVerified)]),
        Branch::new(
            Kind::OtpEmail,
            otp_email::Entity,
            e(E::UserId),
            e(E::Id),
            e(E::CreatedAt),
        )
        .texts([e(E::Address)])
        .flags([e(E::IsVerified)]),
        Branch::new(
            Kind::AuthenticationKey,
            authentication_key::Entity,
            k(K::UserId),
            k(K::Id),
            k(K::CreatedAt),
        )
        .numbers([
            k(K::ExpirationDate),
            k(K::ChangedAt),
            sequences::as_seen(scope, k(K::Sequence)),
        ]),
        Branch::new(
            Kind::IdentityProvider,
            idp_link::Entity,
            i(I::UserId),
            i(I::Id),
            i(I::CreatedAt),
        )
        .texts([
            i(I::IdpId),
            i(I::IdpName),
            i(I::ExternalUserId),
            i(I::ExternalUsername),
        ]),
    ];
    let mut branches = branches.into_iter().map(Branch::select);
    let mut union = branches.next().expect("eight branches");
    for branch in branches {
        union.union(UnionType::All, branch);
    }
    union
}

/// The common table [`WANTED`] of the users `ids`.
fn wanted(ids: &[String]) -> CommonTableExpression {
    let wanted = Sql::select()
        .expr_as(Expr::col((user::Entity, user::Column::Id)), WANTED_ID)
        .from(user::Entity)
        .and_where(
            Expr::col((user::Entity, user::Column::Id)).is_in(ids.iter().map(String::as_str)),
        )
        .to_owned();
    CommonTableExpression::new()
        .query(wanted)
        .table_name(WANTED)
        .to_owned()
}

/// `user` (a select of the user `id` from `users`) with every authenticator of that user
/// joined to its row, one row per authenticator in the union's order (one row with NULL slots
/// for a user without any, none for no user): the user and its authenticators in one
/// statement, which one snapshot answers on both backends, so a lookup needs no transaction.
/// [`add_joined`] reads the authenticator of a row.
pub fn with_user(scope: &Scope, mut user: SelectStatement, id: &str) -> WithQuery {
    let joined = Alias::new(JOINED);
    for column in [KIND, USER_ID, ID, SORT_AT]
        .into_iter()
        .chain(TEXTS)
        .chain(FLAGS)
        .chain(NUMBERS)
    {
        user.expr_as(
            Expr::col((joined.clone(), Alias::new(column))),
            Alias::new(format!("{JOINED_PREFIX}{column}")),
        );
    }
    user.join_subquery(
        JoinType::LeftJoin,
        union(scope),
        joined.clone(),
        Expr::col((joined.clone(), Alias::new(USER_ID))).equals((user::Entity, user::Column::Id)),
    )
    .order_by((joined.clone(), Alias::new(SORT_AT)), Order::Asc)
    .order_by((joined, Alias::new(ID)), Order::Asc);
    WithClause::new()
        .cte(wanted(&[id.to_owned()]))
        .to_owned()
        .query(user)
}

/// The union's name in [`with_user`], and the prefix of its columns there.
const JOINED: &str = "authenticator";
const JOINED_PREFIX: &str = "authenticator_";

/// Adds the authenticator of a row of [`with_user`], if the row has one.
pub fn add_joined(authenticators: &mut Authenticators, row: &QueryResult) -> Result<(), DbErr> {
    let kind: Option<i32> = row.try_get(JOINED_PREFIX, KIND)?;
    if kind.is_none() {
        return Ok(());
    }
    add(authenticators, Row::from_query_result(row, JOINED_PREFIX)?)
}

/// The authenticators of the users `ids`, by user id (users without any are absent);
/// authentication keys carry their sequence as a caller in `scope` counts it.
pub async fn of_users(
    db: &impl ConnectionTrait,
    scope: &Scope,
    ids: &[String],
) -> Result<HashMap<String, Authenticators>, DbErr> {
    let mut by_user: HashMap<String, Authenticators> = HashMap::new();
    if ids.is_empty() {
        return Ok(by_user);
    }
    let statement = statement(scope, ids, db.get_database_backend());
    for row in db.query_all(&statement).await? {
        let user_id: String = row.try_get("", USER_ID)?;
        let grouped: String = row.try_get("", GROUPED)?;
        let mut entries: Vec<Entry> = serde_json::from_str(&grouped).map_err(|error| {
            DbErr::Custom(format!("the authenticators of user {user_id}: {error}"))
        })?;
        // Each kind's authenticators in creation order, as each kind was always listed.
        entries.sort_unstable_by(|a, b| (a.2, &a.1).cmp(&(b.2, &b.1)));
        let authenticators = by_user.entry(user_id.clone()).or_default();
        for entry in entries {
            add(authenticators, entry.into_row(&user_id))?;
        }
    }
    Ok(by_user)
}

/// Adds one row of the union to the authenticators of its kind.
fn add(authenticators: &mut Authenticators, row: Row) -> Result<(), DbErr> {
    let missing = |slot: &str| {
        DbErr::Custom(format!(
            "authenticator {} of user {} lacks its {slot}",
            row.id, row.user_id
        ))
    };
    let text = |value: &Option<String>, slot| value.clone().ok_or_else(|| missing(slot));
    let flag = |value: Option<bool>, slot| value.ok_or_else(|| missing(slot));
    let kind = Kind::from_number(row.kind)
        .ok_or_else(|| DbErr::Custom(format!("unknown authenticator kind {}", row.kind)))?;
    match kind {
        Kind::Username => authenticators.usernames.push(Username {
            id: row.id.clone(),
            username: text(&row.text_1, TEXTS[0])?,
            is_organization_specific: flag(row.flag_1, FLAGS[0])?,
        }),
        // One password per user (its primary key).
        Kind::Password => {
            authenticators.password = Some(PasswordInfo {
                last_changed: Timestamp::from_micros(row.sort_at),
            })
        }
        Kind::WebAuthN => authenticators.web_auth_n.push(WebAuthN {
            id: row.id.clone(),
            name: text(&row.text_1, TEXTS[0])?,
            is_verified: flag(row.flag_1, FLAGS[0])?,
            user_verified: flag(row.flag_2, FLAGS[1])?,
        }),
        Kind::Totp => authenticators.totps.push(Totp {
            id: row.id.clone(),
            name: text(&row.text_1, TEXTS[0])?,
            is_verified: flag(row.flag_1, FLAGS[0])?,
        }),
        Kind::OtpSms => authenticators.otp_sms.push(OtpSms {
            id: row.id.clone(),
            phone: text(&row.text_1, TEXTS[0])?,
            is_verified: flag(row.flag_1, FLAGS[0])?,
        }),
        Kind::OtpEmail => authenticators.otp_email.push(OtpEmail {
            id: row.id.clone(),
            address: text(&row.text_1, TEXTS[0])?,
            is_verified: flag(row.flag_1, FLAGS[0])?,
        }),
        Kind::AuthenticationKey => authenticators.authentication_keys.push(AuthenticationKey {
            id: row.id.clone(),
            key_type: AuthenticationKeyType::Json,
            expiration_date: row.number_1.map(Timestamp::from_micros),
            changed_at: Timestamp::from_micros(row.number_2.ok_or_else(|| missing(NUMBERS[1]))?),
            sequence: row.number_3.ok_or_else(|| missing(NUMBERS[2]))?,
        }),
        Kind::IdentityProvider => authenticators
            .identity_providers
            .push(IdentityProviderLink {
                idp_id: text(&row.text_1, TEXTS[0])?,
                idp_name: text(&row.text_2, TEXTS[1])?,
                external_user_id: text(&row.text_3, TEXTS[2])?,
                external_username: text(&row.text_4, TEXTS[3])?,
            }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_flags_as_each_backend_writes_them() {
        let sqlite = r#"[[3,"w",7,"key",null,null,null,1,0,null,null,null]]"#;
        let postgres = r#"[[3,"w",7,"key",null,null,null,true,false,null,null,null]]"#;
        for grouped in [sqlite, postgres] {
            let entries: Vec<Entry> = serde_json::from_str(grouped).unwrap();
            let row = entries.into_iter().next().unwrap().into_row("u");
            assert_eq!(
                (row.flag_1, row.flag_2),
                (Some(true), Some(false)),
                "{grouped}"
            );
            assert_eq!((row.kind, row.id.as_str(), row.sort_at), (3, "w", 7));
            assert_eq!(row.text_1.as_deref(), Some("key"));
        }
        let not_a_flag = r#"[[3,"w",7,null,null,null,null,2,null,null,null,null]]"#;
        assert!(serde_json::from_str::<Vec<Entry>>(not_a_flag).is_err());
    }
}
