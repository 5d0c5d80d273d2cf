//! Each user's authenticators kept on the user's row, as one JSON document
//! (`users.authenticators`): a page of users reads them with its rows, from the users table
//! alone. Read from the eight authenticator tables instead, a page of a hundred users cost
//! 800 index probes (eight tables by a hundred users): 1.7-1.9 ms of a PostgreSQL page whose
//! users took 0.15 ms, and a statement of its own.
//!
//! The document is what ZITADEL calls a projection: the tables stay the truth, and the document
//! is derived from them inside the same transaction, by one of two producers of the same
//! entries ([`Entry`]):
//! - [`refresh`], SQL over the tables: a unit of work that changed a user's authenticators
//!   runs it before it commits (`UnitOfWork::authenticators_changed`), whatever the change
//!   was, so the document is always what the tables hold at that point.
//! - [`document`], the same entries from the rows a create or an import is about to write,
//!   which a batch of a thousand new users never has to read back.
//!
//! [`read`] turns a document back into the API's authenticators, in creation order. A user
//! without authenticators has no document (NULL) or an empty one (`[]`).

use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, Func, IntoIden, Query as Sql, SelectStatement, UnionType,
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr};
use serde::{Deserialize, Serialize};

use crate::domain::{
    AuthenticationKey, AuthenticationKeyType, Authenticators, IdentityProviderLink, OtpEmail,
    OtpSms, PasswordInfo, Timestamp, Totp, Username, WebAuthN,
};
use crate::store::entities::{
    authentication_key, idp_link, otp_email, otp_sms, password, totp, user, username,
    webauthn_credential,
};

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

/// One authenticator, whichever its kind: an order, and typed slots that each kind fills with
/// its own fields (decided in `union` and [`Parts::entries`], read back in `add`); the others
/// are None.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    kind: i32,
    user_id: String,
    /// The authenticator's id (the user's for its one password), the order's tie-breaker.
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
    fn select(self, owner: &Expr) -> SelectStatement {
        let mut select = Sql::select();
        select
            .expr_as(Expr::val(self.kind as i32), KIND)
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
        select
            .from(self.table)
            .and_where(self.user_id.eq(owner.clone()));
        select
    }
}

/// The union over every authenticator table of the user whose id is `owner` (a column of the
/// enclosing statement), unordered.
fn union(owner: &Expr) -> SelectStatement {
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
            // The instance sequence: `read` leaves it to the reader to count it as its
            // caller does.
            k(K::Sequence),
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
    let mut branches = branches.into_iter().map(|branch| branch.select(owner));
    let mut union = branches.next().expect("eight branches");
    for branch in branches {
        union.union(UnionType::All, branch);
    }
    union
}

/// The union's name in [`refresh`].
const JOINED: &str = "authenticator";

/// Rewrites the documents of the users `ids` from the authenticator tables: one statement,
/// `UPDATE users SET authenticators = (the union of the user's rows, aggregated)`.
pub async fn refresh(db: &impl ConnectionTrait, ids: &[String]) -> Result<(), DbErr> {
    let owner = Expr::col((user::Entity, user::Column::Id));
    let document = from_tables(db.get_database_backend(), &owner);
    for chunk in ids.chunks(IN_LIST) {
        let update = Sql::update()
            .table(user::Entity)
            .value(user::Column::Authenticators, document.clone())
            .and_where(owner.clone().is_in(chunk.iter().map(String::as_str)))
            .to_owned();
        db.execute(&update).await?;
    }
    Ok(())
}

/// The document of the user whose id is `owner` (a column of the enclosing statement), from
/// the authenticator tables: a scalar subquery.
fn from_tables(backend: DbBackend, owner: &Expr) -> Expr {
    let slots = [KIND, ID, SORT_AT]
        .into_iter()
        .chain(TEXTS)
        .chain(FLAGS)
        .chain(NUMBERS)
        .map(|slot| Expr::col(Alias::new(slot)));
    Expr::from(
        Sql::select()
            .expr(json_rows(backend, slots))
            .from_subquery(union(owner), Alias::new(JOINED))
            .to_owned(),
    )
}

/// The aggregate of a JSON array of `values` per row, as text: one JSON array of arrays (NULL
/// or `[]` without rows) on both backends.
pub(crate) fn json_rows(backend: DbBackend, values: impl IntoIterator<Item = Expr>) -> Expr {
    let (array, aggregate) = match backend {
        DbBackend::Postgres => ("json_build_array", "json_agg"),
        _ => ("json_array", "json_group_array"),
    };
    let row = Func::cust(array).args(values);
    // Text on both backends (PostgreSQL's json_agg is of type json).
    Expr::from(Func::cust(aggregate).arg(row)).cast_as(Alias::new("text"))
}

/// What [`stale_documents`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audit {
    /// Users whose documents were compared.
    pub users: u64,
    /// The users whose documents read otherwise than their authenticator rows.
    pub stale: Vec<String>,
}

/// Users one [`stale_documents`] statement compares.
const AUDITED_PER_STATEMENT: u64 = 1000;

/// Compares every user's document with what its authenticator rows say (`userdir check`): a
/// document written by an operator's own SQL, or the rows changed without it. Each statement
/// reads a thousand users' documents beside their rows, so a concurrent write never shows as
/// drift.
pub async fn stale_documents(db: &impl ConnectionTrait) -> Result<Audit, DbErr> {
    let owner = Expr::col((user::Entity, user::Column::Id));
    let fresh = from_tables(db.get_database_backend(), &owner);
    let mut audit = Audit::default();
    let mut after: Option<String> = None;
    loop {
        let mut select = Sql::select();
        select
            .expr_as(owner.clone(), "id")
            .expr_as(
                Expr::col((user::Entity, user::Column::Authenticators)),
                "stored",
            )
            .expr_as(fresh.clone(), "fresh")
            .from(user::Entity)
            .order_by((user::Entity, user::Column::Id), sea_orm::Order::Asc)
            .limit(AUDITED_PER_STATEMENT);
        if let Some(after) = &after {
            select.and_where(owner.clone().gt(after.as_str()));
        }
        let rows = db.query_all(&select).await?;
        let Some(last) = rows.last() else {
            return Ok(audit);
        };
        after = Some(last.try_get("", "id")?);
        for row in &rows {
            let id: String = row.try_get("", "id")?;
            let stored: Option<String> = row.try_get("", "stored")?;
            let fresh: Option<String> = row.try_get("", "fresh")?;
            // A document that does not even parse is stale too.
            let same = match read(&id, stored.as_deref()) {
                Ok(stored) => stored == read(&id, fresh.as_deref())?,
                Err(_) => false,
            };
            if !same {
                audit.stale.push(id);
            }
        }
        audit.users += rows.len() as u64;
    }
}

/// Most ids one [`refresh`] statement binds.
const IN_LIST: usize = 500;

/// The rows of one new user a create or an import writes, for its [`document`].
#[derive(Clone, Copy, Default)]
pub struct Parts<'a> {
    pub usernames: &'a [username::Model],
    pub password: Option<&'a password::Model>,
    pub web_auth_n: &'a [webauthn_credential::Model],
    pub totps: &'a [totp::Model],
    pub otp_sms: &'a [otp_sms::Model],
    pub otp_emails: &'a [otp_email::Model],
    pub authentication_keys: &'a [authentication_key::Model],
    pub idp_links: &'a [idp_link::Model],
}

impl Parts<'_> {
    /// The entries [`refresh`] would make of these rows once written (in another order, which
    /// [`read`] does not depend on).
    fn entries(&self) -> Vec<Entry> {
        let row = |kind: Kind, id: &str, sort_at: i64| Row {
            kind: kind as i32,
            user_id: String::new(),
            id: id.to_owned(),
            sort_at,
            text_1: None,
            text_2: None,
            text_3: None,
            text_4: None,
            flag_1: None,
            flag_2: None,
            number_1: None,
            number_2: None,
            number_3: None,
        };
        let mut rows = Vec::new();
        rows.extend(self.usernames.iter().map(|u| Row {
            text_1: Some(u.username.clone()),
            flag_1: Some(u.is_organization_specific),
            ..row(Kind::Username, &u.id, u.created_at)
        }));
        rows.extend(
            self.password
                .map(|p| row(Kind::Password, &p.user_id, p.changed_at)),
        );
        rows.extend(self.web_auth_n.iter().map(|w| Row {
            text_1: Some(w.name.clone()),
            flag_1: Some(w.is_verified),
            flag_2: Some(w.user_verified),
            ..row(Kind::WebAuthN, &w.id, w.created_at)
        }));
        rows.extend(self.totps.iter().map(|t| Row {
            text_1: Some(t.name.clone()),
            flag_1: Some(t.is_verified),
            ..row(Kind::Totp, &t.id, t.created_at)
        }));
        rows.extend(self.otp_sms.iter().map(|s| Row {
            text_1: Some(s.phone.clone()),
            flag_1: Some(s.is_verified),
            ..row(Kind::OtpSms, &s.id, s.created_at)
        }));
        rows.extend(self.otp_emails.iter().map(|e| Row {
            text_1: Some(e.address.clone()),
            flag_1: Some(e.is_verified),
            ..row(Kind::OtpEmail, &e.id, e.created_at)
        }));
        rows.extend(self.authentication_keys.iter().map(|k| Row {
            number_1: k.expiration_date,
            number_2: Some(k.changed_at),
            number_3: Some(k.sequence),
            ..row(Kind::AuthenticationKey, &k.id, k.created_at)
        }));
        rows.extend(self.idp_links.iter().map(|i| Row {
            text_1: Some(i.idp_id.clone()),
            text_2: Some(i.idp_name.clone()),
            text_3: Some(i.external_user_id.clone()),
            text_4: Some(i.external_username.clone()),
            ..row(Kind::IdentityProvider, &i.id, i.created_at)
        }));
        rows.into_iter().map(Entry::from).collect()
    }
}

/// The document of a new user with the rows `parts` (None without authenticators).
pub fn document(parts: Parts<'_>) -> Option<String> {
    let entries = parts.entries();
    if entries.is_empty() {
        return None;
    }
    Some(serde_json::to_string(&entries).expect("entries are plain JSON values"))
}

/// The authenticators of user `user_id` from its `document`, each kind in creation order.
/// Authentication keys carry the instance sequence: a reader limited to an organization counts
/// it as that organization does (`events::as_seen`).
pub fn read(user_id: &str, document: Option<&str>) -> Result<Authenticators, DbErr> {
    let mut authenticators = Authenticators::default();
    let Some(document) = document else {
        return Ok(authenticators);
    };
    let mut entries: Vec<Entry> = serde_json::from_str(document)
        .map_err(|error| DbErr::Custom(format!("the authenticators of user {user_id}: {error}")))?;
    // Each kind's authenticators in creation order, as each kind was always listed.
    entries.sort_unstable_by(|a, b| (a.2, &a.1).cmp(&(b.2, &b.1)));
    for entry in entries {
        add(&mut authenticators, entry.into_row(user_id))?;
    }
    Ok(authenticators)
}

/// One authenticator in a document: the slots of a [`Row`] in the order [`refresh`] lists
/// them, without the user's id (the document's row's).
#[derive(Debug, Deserialize, Serialize)]
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

impl From<Row> for Entry {
    fn from(row: Row) -> Self {
        Entry(
            row.kind,
            row.id,
            row.sort_at,
            row.text_1,
            row.text_2,
            row.text_3,
            row.text_4,
            row.flag_1.map(Flag),
            row.flag_2.map(Flag),
            row.number_1,
            row.number_2,
            row.number_3,
        )
    }
}

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
#[derive(Debug, Serialize)]
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
