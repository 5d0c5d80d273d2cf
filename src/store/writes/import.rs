//! Bulk import of whole objects: `userdir import`, the ImportUsers RPC and `userdir seed`.
//!
//! A batch of users is one transaction ([`ImportBatch`]) that holds the event-log lock, reads
//! what the batch's decisions need (which ids, usernames and links are taken), then writes the
//! rows in one go per table and one `user.created` event per user with consecutive sequences.
//! PostgreSQL gets every table by `COPY ... FROM STDIN`, SQLite by large multi-row INSERTs.
//! The counters (migration 8) and SQLite's trigram tables (migration 10) are kept by triggers,
//! which COPY fires like INSERT (statement triggers with transition tables included), so an
//! import leaves what individual creates would have left.
//!
//! The batch runs on a sqlx transaction of sea-orm's own pool: sea-orm does not hand out the
//! connection behind its transactions, and COPY needs it. Statements are still built with
//! sea-query, their values bound, as everywhere else in the store.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::io::Write as _;

use sea_orm::sea_query::{PostgresQueryBuilder, SelectStatement, SqliteQueryBuilder, Values};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityName, EntityTrait,
    IdenStatic, IntoActiveModel, Iterable, ModelTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, RuntimeErr, Value,
};
use sea_query_sqlx::{SqlxBinder, SqlxValues};
use serde_json::json;
use sqlx::{AssertSqlSafe, Postgres, SqlSafeStr, Sqlite};

use super::events::{self, NewEvent};
use crate::domain::{Timestamp, display_name, fold_case};
use crate::store::authenticators::{self, Parts};
use crate::store::begin_write;
use crate::store::entities::{
    authentication_key, event, idp_link, organization, otp_email, otp_sms, password, totp, user,
    user_schema, user_schema_revision, username, webauthn_credential,
};

/// The actor of seeded events.
const SEED: &str = "seed";

/// A user with every authenticator, as stored. Sequences are assigned on import.
#[derive(Clone, Debug)]
pub struct UserImport {
    pub user: user::Model,
    pub usernames: Vec<username::Model>,
    pub password: Option<password::Model>,
    pub web_auth_n: Vec<webauthn_credential::Model>,
    pub totps: Vec<totp::Model>,
    pub otp_sms: Vec<otp_sms::Model>,
    pub otp_emails: Vec<otp_email::Model>,
    pub authentication_keys: Vec<authentication_key::Model>,
    pub idp_links: Vec<idp_link::Model>,
}

pub async fn import_organizations(
    db: &DatabaseConnection,
    mut organizations: Vec<organization::Model>,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    let first = events::lock(&txn)
        .await?
        .map_or(1, |(sequence, _)| sequence + 1);
    let mut log = Vec::with_capacity(organizations.len());
    for (sequence, org) in (first..).zip(organizations.iter_mut()) {
        org.sequence = sequence;
        log.push(NewEvent {
            created_at: Timestamp::from_micros(org.created_at),
            aggregate_type: "organization",
            aggregate_id: org.id.clone(),
            resource_owner: org.id.clone(),
            event_type: "organization.added",
            payload: json!({ "name": org.name }),
            organization: Some(org.id.clone()),
            actor: SEED.to_owned(),
        });
    }
    events::append(&txn, first, log, &mut HashMap::new()).await?;
    for org in organizations {
        organization::Entity::insert(org.into_active_model())
            .exec_without_returning(&*txn)
            .await?;
    }
    txn.commit().await
}

/// Imports schemas at their current revision, with that revision's history row.
pub async fn import_schemas(
    db: &DatabaseConnection,
    mut schemas: Vec<user_schema::Model>,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    let first = events::lock(&txn)
        .await?
        .map_or(1, |(sequence, _)| sequence + 1);
    let mut log = Vec::with_capacity(schemas.len());
    let mut revisions = Vec::with_capacity(schemas.len());
    for (sequence, schema) in (first..).zip(schemas.iter_mut()) {
        schema.sequence = sequence;
        revisions.push(user_schema_revision::Model {
            schema_id: schema.id.clone(),
            revision: schema.revision,
            r#type: schema.r#type.clone(),
            json_schema: schema.json_schema.clone(),
            created_at: schema.changed_at,
        });
        log.push(NewEvent {
            created_at: Timestamp::from_micros(schema.created_at),
            aggregate_type: "user_schema",
            aggregate_id: schema.id.clone(),
            resource_owner: String::new(),
            event_type: "user_schema.created",
            payload: json!({ "type": schema.r#type, "revision": schema.revision }),
            organization: None,
            actor: SEED.to_owned(),
        });
    }
    events::append(&txn, first, log, &mut HashMap::new()).await?;
    for schema in schemas {
        user_schema::Entity::insert(schema.into_active_model())
            .exec_without_returning(&*txn)
            .await?;
    }
    for revision in revisions {
        user_schema_revision::Entity::insert(revision.into_active_model())
            .exec_without_returning(&*txn)
            .await?;
    }
    txn.commit().await
}

/// Seeds a batch of users as they are (ids and times included); see [`ImportBatch::write`].
pub async fn import_users(db: &DatabaseConnection, batch: Vec<UserImport>) -> Result<(), DbErr> {
    ImportBatch::begin(db).await?.write(batch, SEED).await?;
    Ok(())
}

/// The transaction of one batch, on the backend's own sqlx connection: its own, or a savepoint
/// of an exclusive import's (`'c` borrows that import).
pub(super) enum Txn<'c> {
    Postgres(sqlx::Transaction<'c, Postgres>),
    Sqlite(sqlx::Transaction<'c, Sqlite>),
}

impl Txn<'_> {
    /// A savepoint of this transaction.
    pub(super) async fn savepoint(&mut self) -> Result<Txn<'_>, DbErr> {
        Ok(match self {
            Txn::Postgres(txn) => {
                Txn::Postgres(sqlx::Acquire::begin(&mut **txn).await.map_err(exec_error)?)
            }
            Txn::Sqlite(txn) => {
                Txn::Sqlite(sqlx::Acquire::begin(&mut **txn).await.map_err(exec_error)?)
            }
        })
    }

    /// Runs a statement made of the store's own text and the catalog's names, never input.
    pub(super) async fn execute_trusted(&mut self, statement: String) -> Result<(), DbErr> {
        match self {
            Txn::Postgres(txn) => execute_trusted(txn, statement).await,
            Txn::Sqlite(txn) => execute_trusted(txn, statement).await,
        }
    }

    pub(super) async fn commit(self) -> Result<(), DbErr> {
        match self {
            Txn::Postgres(txn) => txn.commit().await,
            Txn::Sqlite(txn) => txn.commit().await,
        }
        .map_err(exec_error)
    }
}

/// One batch of an import: a write transaction holding the event-log lock from [`begin`] to
/// [`write`] (or its drop, which rolls back), so what the batch reads stays true until it is
/// written, and its events follow every earlier write.
///
/// [`begin`]: ImportBatch::begin
/// [`write`]: ImportBatch::write
pub struct ImportBatch<'c> {
    txn: Txn<'c>,
    /// The sequence of the batch's first event.
    first: i64,
    /// The time of the batch: now, and never before the newest event.
    now: Timestamp,
}

/// Most values one `IN (...)` list of a batch's reads binds.
const IN_LIST: usize = 1000;

/// A PostgreSQL transaction for importing: it holds the event log's lock, and plans its reads
/// with their values. Why the latter: the batch's reads (which ids and usernames are taken) are
/// prepared once per connection; after five runs PostgreSQL may keep a generic plan made while
/// the tables looked empty, a sequential scan that an import of a million users then runs for
/// every chunk (1.2 s each at 200k users, 80 % of the import). Planned with their values every
/// time, they stay index lookups.
pub(super) async fn begin_postgres(
    db: &DatabaseConnection,
) -> Result<sqlx::Transaction<'static, Postgres>, DbErr> {
    let mut txn = db
        .get_postgres_connection_pool()
        .begin()
        .await
        .map_err(exec_error)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(events::EVENT_LOG_LOCK)
        .execute(&mut *txn)
        .await
        .map_err(exec_error)?;
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
        .execute(&mut *txn)
        .await
        .map_err(exec_error)?;
    Ok(txn)
}

/// SQLite's page cache of an import's connection, in KiB (see [`begin_sqlite`]).
const IMPORT_PAGE_CACHE_KIB: u32 = 32 * 1024;

/// An SQLite transaction for importing: `BEGIN IMMEDIATE` (SQLite's one writer at a time is the
/// event log's lock) on a connection of its own with an import-sized page cache.
pub(super) async fn begin_sqlite(
    db: &DatabaseConnection,
) -> Result<sqlx::Transaction<'static, Sqlite>, DbErr> {
    let mut connection = db
        .get_sqlite_connection_pool()
        .acquire()
        .await
        .map_err(exec_error)?;
    // A batch inserts into every index of users at random places, more pages than a serving
    // connection's cache holds: with that cache SQLite spills dirty pages to the WAL and reads
    // them back within the batch. The import's connection gets a cache of its own size, and is
    // closed after it (also when it fails), so no pooled connection keeps it.
    connection.close_on_drop();
    sqlx::query(AssertSqlSafe(format!(
        "PRAGMA cache_size = -{IMPORT_PAGE_CACHE_KIB}"
    )))
    .execute(&mut *connection)
    .await
    .map_err(exec_error)?;
    sqlx::Transaction::begin(
        connection,
        Some(SqlSafeStr::into_sql_str("BEGIN IMMEDIATE")),
    )
    .await
    .map_err(exec_error)
}

impl ImportBatch<'static> {
    /// Begins the batch's transaction and waits for the event log's lock (on SQLite, its
    /// IMMEDIATE write transaction is the lock).
    pub async fn begin(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let txn = match db.get_database_backend() {
            DbBackend::Postgres => Txn::Postgres(begin_postgres(db).await?),
            DbBackend::Sqlite => Txn::Sqlite(begin_sqlite(db).await?),
            other => return Err(DbErr::Custom(format!("no bulk import on {other:?}"))),
        };
        ImportBatch::started(txn).await
    }
}

impl<'c> ImportBatch<'c> {
    /// A batch on a savepoint of an exclusive import's transaction (`exclusive::ExclusiveImport`),
    /// which holds the event log's lock already.
    pub(super) async fn within(savepoint: Txn<'c>) -> Result<Self, DbErr> {
        Self::started(savepoint).await
    }

    /// The batch on its transaction, after the newest event.
    async fn started(txn: Txn<'c>) -> Result<Self, DbErr> {
        let mut batch = Self {
            txn,
            first: 1,
            now: Timestamp::now(),
        };
        let latest: Vec<(i64, i64)> = batch
            .fetch(
                event::Entity::find()
                    .select_only()
                    .column(event::Column::Sequence)
                    .column(event::Column::CreatedAt)
                    .order_by_desc(event::Column::Sequence)
                    .limit(1)
                    .as_query(),
            )
            .await?;
        if let Some((sequence, at)) = latest.first() {
            batch.first = sequence + 1;
            // Event times never go backwards along the sequence, even if the clock does.
            batch.now = Timestamp::from_micros(batch.now.micros().max(at + 1));
        }
        Ok(batch)
    }

    /// The time of the batch's events.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Which of `ids` are users already.
    pub async fn present_users(&mut self, ids: &[String]) -> Result<HashSet<String>, DbErr> {
        let mut present = HashSet::new();
        for chunk in ids.chunks(IN_LIST) {
            let rows: Vec<(String,)> = self
                .fetch(
                    user::Entity::find()
                        .select_only()
                        .column(user::Column::Id)
                        .filter(user::Column::Id.is_in(chunk.iter().cloned()))
                        .as_query(),
                )
                .await?;
            present.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(present)
    }

    /// Which of `ids` are organizations.
    pub async fn organizations(&mut self, ids: &[String]) -> Result<HashSet<String>, DbErr> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(IN_LIST) {
            let rows: Vec<(String,)> = self
                .fetch(
                    organization::Entity::find()
                        .select_only()
                        .column(organization::Column::Id)
                        .filter(organization::Column::Id.is_in(chunk.iter().cloned()))
                        .as_query(),
                )
                .await?;
            found.extend(rows.into_iter().map(|(id,)| id));
        }
        Ok(found)
    }

    /// The schemas among `ids`, at their current revision (without their JSON Schema, which
    /// [`Self::json_schema`] reads when a revision is new to the caller).
    pub async fn schemas(&mut self, ids: &[String]) -> Result<Vec<SchemaHead>, DbErr> {
        let mut found = Vec::new();
        for chunk in ids.chunks(IN_LIST) {
            let rows: Vec<(String, i32, String, String)> = self
                .fetch(
                    user_schema::Entity::find()
                        .select_only()
                        .column(user_schema::Column::Id)
                        .column(user_schema::Column::Revision)
                        .column(user_schema::Column::Type)
                        .column(user_schema::Column::TypeLower)
                        .filter(user_schema::Column::Id.is_in(chunk.iter().cloned()))
                        .as_query(),
                )
                .await?;
            found.extend(
                rows.into_iter()
                    .map(|(id, revision, r#type, type_lower)| SchemaHead {
                        id,
                        revision,
                        r#type,
                        type_lower,
                    }),
            );
        }
        Ok(found)
    }

    /// The JSON Schema of a schema's current revision.
    pub async fn json_schema(&mut self, id: &str) -> Result<serde_json::Value, DbErr> {
        let rows: Vec<(sqlx::types::Json<serde_json::Value>,)> = self
            .fetch(
                user_schema::Entity::find()
                    .select_only()
                    .column(user_schema::Column::JsonSchema)
                    .filter(user_schema::Column::Id.eq(id))
                    .as_query(),
            )
            .await?;
        rows.into_iter()
            .next()
            .map(|(schema,)| schema.0)
            .ok_or_else(|| DbErr::RecordNotFound(format!("user schema {id}")))
    }

    /// The usernames taken among the folded names `lowers`: (uniqueness scope, folded name).
    pub async fn taken_usernames(
        &mut self,
        lowers: &[String],
    ) -> Result<HashSet<(String, String)>, DbErr> {
        let mut taken = HashSet::new();
        for chunk in lowers.chunks(IN_LIST) {
            let rows: Vec<(String, String)> = self
                .fetch(
                    username::Entity::find()
                        .select_only()
                        .column(username::Column::UniquenessScope)
                        .column(username::Column::UsernameLower)
                        .filter(username::Column::UsernameLower.is_in(chunk.iter().cloned()))
                        .as_query(),
                )
                .await?;
            taken.extend(rows);
        }
        Ok(taken)
    }

    /// The IdP links taken among the external user ids `linked`: (organization, IdP, id).
    pub async fn taken_idp_links(
        &mut self,
        linked: &[String],
    ) -> Result<HashSet<(String, String, String)>, DbErr> {
        let mut taken = HashSet::new();
        for chunk in linked.chunks(IN_LIST) {
            let rows: Vec<(String, String, String)> = self
                .fetch(
                    idp_link::Entity::find()
                        .select_only()
                        .column(idp_link::Column::OrganizationId)
                        .column(idp_link::Column::IdpId)
                        .column(idp_link::Column::ExternalUserId)
                        .filter(idp_link::Column::ExternalUserId.is_in(chunk.iter().cloned()))
                        .as_query(),
                )
                .await?;
            taken.extend(rows);
        }
        Ok(taken)
    }

    /// Writes the users with every authenticator and one `user.created` event each (acted by
    /// `actor`), with consecutive sequences in batch order, and commits. The users' names are
    /// derived from their data here, as every write of data does.
    pub async fn write(mut self, batch: Vec<UserImport>, actor: &str) -> Result<(), DbErr> {
        if batch.is_empty() {
            return self.commit().await;
        }
        let started = std::time::Instant::now();
        let users = batch.len();
        let mut log = Vec::with_capacity(batch.len());
        let mut tables = Tables::default();
        for (sequence, mut import) in (self.first..).zip(batch) {
            import.user.sequence = sequence;
            import.user.name = display_name(&import.user.data);
            import.user.name_lower = import.user.name.as_deref().map(fold_case);
            log.push(NewEvent {
                created_at: Timestamp::from_micros(import.user.created_at),
                aggregate_type: "user",
                aggregate_id: import.user.id.clone(),
                resource_owner: import.user.organization_id.clone(),
                event_type: "user.created",
                // CreateUser's payload, and that the user was imported.
                payload: json!({
                    "schemaId": import.user.schema_id,
                    "schemaRevision": import.user.schema_revision,
                    "usernames": import.usernames.iter().map(|u| &u.username).collect::<Vec<_>>(),
                    "hasPassword": import.password.is_some(),
                    "imported": true,
                }),
                organization: Some(import.user.organization_id.clone()),
                actor: actor.to_owned(),
            });
            for key in &mut import.authentication_keys {
                key.sequence = sequence;
            }
            for link in &mut import.idp_links {
                link.organization_id = import.user.organization_id.clone();
            }
            import.user.authenticators = authenticators::document(Parts {
                usernames: &import.usernames,
                password: import.password.as_ref(),
                web_auth_n: &import.web_auth_n,
                totps: &import.totps,
                otp_sms: &import.otp_sms,
                otp_emails: &import.otp_emails,
                authentication_keys: &import.authentication_keys,
                idp_links: &import.idp_links,
            });
            tables.push(import);
        }
        let mut next_in = HashMap::new();
        for organization in log.iter().filter_map(|e| e.organization.clone()) {
            if let Entry::Vacant(slot) = next_in.entry(organization) {
                let next = self.latest_position(slot.key()).await? + 1;
                slot.insert(next);
            }
        }
        let rows = events::numbered(self.first, log, &mut next_in);
        tables.insert(&mut self).await?;
        self.put(rows).await?;
        let first = self.first;
        self.commit().await?;
        tracing::debug!(
            users,
            first_sequence = first,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "import batch written"
        );
        Ok(())
    }

    /// The newest position of `organization`'s event stream (0 before its first event).
    async fn latest_position(&mut self, organization: &str) -> Result<i64, DbErr> {
        let rows: Vec<(Option<i64>,)> = self
            .fetch(
                event::Entity::find()
                    .select_only()
                    .column(event::Column::OrganizationSequence)
                    .filter(event::Column::OrganizationId.eq(organization))
                    .order_by_desc(event::Column::OrganizationSequence)
                    .limit(1)
                    .as_query(),
            )
            .await?;
        Ok(rows.into_iter().next().and_then(|(n,)| n).unwrap_or(0))
    }

    async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    /// Rows of a read, decoded as a tuple.
    async fn fetch<T>(&mut self, select: &SelectStatement) -> Result<Vec<T>, DbErr>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + Send
            + Unpin,
    {
        match &mut self.txn {
            Txn::Postgres(txn) => {
                let (sql, values) = select.build_sqlx(PostgresQueryBuilder);
                sqlx::query_as_with::<_, T, _>(AssertSqlSafe(sql), values)
                    .fetch_all(&mut **txn)
                    .await
            }
            Txn::Sqlite(txn) => {
                let (sql, values) = select.build_sqlx(SqliteQueryBuilder);
                sqlx::query_as_with::<_, T, _>(AssertSqlSafe(sql), values)
                    .fetch_all(&mut **txn)
                    .await
            }
        }
        .map_err(query_error)
    }

    /// Inserts rows: one COPY on PostgreSQL, multi-row INSERTs on SQLite.
    async fn put<M: Row>(&mut self, models: Vec<M>) -> Result<(), DbErr> {
        if models.is_empty() {
            return Ok(());
        }
        match &mut self.txn {
            Txn::Postgres(txn) => copy_in(txn, models).await,
            Txn::Sqlite(txn) => insert_many(txn, models).await,
        }
    }
}

/// A schema as an import batch needs it.
#[derive(Clone, Debug)]
pub struct SchemaHead {
    pub id: String,
    pub revision: i32,
    pub r#type: String,
    pub type_lower: String,
}

/// Rows of a batch, grouped by table.
#[derive(Default)]
struct Tables {
    users: Vec<user::Model>,
    usernames: Vec<username::Model>,
    passwords: Vec<password::Model>,
    web_auth_n: Vec<webauthn_credential::Model>,
    totps: Vec<totp::Model>,
    otp_sms: Vec<otp_sms::Model>,
    otp_emails: Vec<otp_email::Model>,
    authentication_keys: Vec<authentication_key::Model>,
    idp_links: Vec<idp_link::Model>,
}

impl Tables {
    fn push(&mut self, import: UserImport) {
        self.users.push(import.user);
        self.usernames.extend(import.usernames);
        self.passwords.extend(import.password);
        self.web_auth_n.extend(import.web_auth_n);
        self.totps.extend(import.totps);
        self.otp_sms.extend(import.otp_sms);
        self.otp_emails.extend(import.otp_emails);
        self.authentication_keys.extend(import.authentication_keys);
        self.idp_links.extend(import.idp_links);
    }

    async fn insert(self, batch: &mut ImportBatch<'_>) -> Result<(), DbErr> {
        // Parents first: the authenticator tables reference users.
        batch.put(self.users).await?;
        batch.put(self.usernames).await?;
        batch.put(self.passwords).await?;
        batch.put(self.web_auth_n).await?;
        batch.put(self.totps).await?;
        batch.put(self.otp_sms).await?;
        batch.put(self.otp_emails).await?;
        batch.put(self.authentication_keys).await?;
        batch.put(self.idp_links).await
    }
}

/// A model the import writes: its values are moved out of it column by column
/// ([`column_values`]), not copied.
trait Row: ModelTrait + IntoActiveModel<<Self::Entity as EntityTrait>::ActiveModel> {}

impl<M> Row for M where M: ModelTrait + IntoActiveModel<<M::Entity as EntityTrait>::ActiveModel> {}

/// The values of `model` in the order of `columns`, moved out of it (a million users' text
/// copied once more was a tenth of the importer's main thread).
fn column_values<M: Row>(
    model: M,
    columns: &[<M::Entity as EntityTrait>::Column],
) -> impl Iterator<Item = Result<Value, DbErr>> {
    let mut active = model.into_active_model();
    columns.iter().map(move |column| {
        active
            .take(*column)
            .into_value()
            .ok_or_else(|| DbErr::Custom(format!("a row without its column {}", column.as_str())))
    })
}

/// `"table" ("column", ...)` of `M`'s entity, and its columns in that order. The table's and
/// columns' own names, from the entity: no text from the input.
fn target<M: Row>() -> (String, Vec<<M::Entity as EntityTrait>::Column>) {
    let columns: Vec<_> = <M::Entity as EntityTrait>::Column::iter().collect();
    let names = columns
        .iter()
        .map(|column| format!("\"{}\"", column.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let target = format!("\"{}\" ({names})", M::Entity::default().table_name());
    (target, columns)
}

/// Bound parameters per statement, below SQLite's limit of 32766.
const MAX_PARAMETERS: usize = 30_000;

/// Multi-row `INSERT INTO table (columns) VALUES (?, ...), ...` of `models` on SQLite, each
/// statement under the parameter limit, every value bound.
///
/// Why not sea-query's `insert_many`: it builds an expression tree of every value and clones
/// each value into the bound list; building, cloning and dropping those took nearly half of
/// the importer's main thread (perf, 200,000 users). The text here
/// is the entity's table and column names and placeholders, the values are the model's own,
/// read column by column as the COPY of PostgreSQL reads them.
async fn insert_many<M: Row>(
    txn: &mut sqlx::Transaction<'_, Sqlite>,
    models: Vec<M>,
) -> Result<(), DbErr> {
    let (target, columns) = target::<M>();
    let rows_per_statement = (MAX_PARAMETERS / columns.len().max(1)).max(1);
    let head = format!("INSERT INTO {target} VALUES ");
    let row = format!("({})", vec!["?"; columns.len()].join(", "));
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        let chunk: Vec<M> = models.by_ref().take(rows_per_statement).collect();
        let mut sql = String::with_capacity(head.len() + chunk.len() * (row.len() + 2));
        sql.push_str(&head);
        let mut values = Vec::with_capacity(chunk.len() * columns.len());
        for (i, model) in chunk.into_iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&row);
            for value in column_values(model, &columns) {
                values.push(value?);
            }
        }
        sqlx::query_with(AssertSqlSafe(sql), SqlxValues(Values(values)))
            .execute(&mut **txn)
            .await
            .map_err(exec_error)?;
    }
    Ok(())
}

/// Bytes of COPY data sent per message.
const COPY_CHUNK: usize = 1 << 20;

/// `COPY table (columns) FROM STDIN` of `models`, in PostgreSQL's text format.
async fn copy_in<M: Row>(
    txn: &mut sqlx::Transaction<'_, Postgres>,
    models: Vec<M>,
) -> Result<(), DbErr> {
    let (target, columns) = target::<M>();
    let statement = format!("COPY {target} FROM STDIN");
    let mut data = Vec::with_capacity(COPY_CHUNK);
    let mut copy = txn.copy_in_raw(&statement).await.map_err(exec_error)?;
    for model in models {
        for (i, value) in column_values(model, &columns).enumerate() {
            if i > 0 {
                data.push(b'\t');
            }
            if let Err(error) = value.and_then(|value| copy_field(&mut data, value)) {
                copy.abort(error.to_string()).await.map_err(exec_error)?;
                return Err(error);
            }
        }
        data.push(b'\n');
        if data.len() >= COPY_CHUNK {
            // A new buffer of the full size: grown from nothing, it was copied at every doubling.
            let full = std::mem::replace(&mut data, Vec::with_capacity(COPY_CHUNK));
            copy.send(full).await.map_err(exec_error)?;
        }
    }
    if !data.is_empty() {
        copy.send(data).await.map_err(exec_error)?;
    }
    copy.finish().await.map_err(exec_error)?;
    Ok(())
}

/// One field in COPY's text format: `\N` for NULL, text with backslash, tab, newline and
/// carriage return escaped.
fn copy_field(out: &mut Vec<u8>, value: Value) -> Result<(), DbErr> {
    const NULL: &[u8] = b"\\N";
    match value {
        Value::Bool(Some(b)) => out.push(if b { b't' } else { b'f' }),
        Value::SmallInt(Some(n)) => write!(out, "{n}").expect("writing to memory"),
        Value::Int(Some(n)) => write!(out, "{n}").expect("writing to memory"),
        Value::BigInt(Some(n)) => write!(out, "{n}").expect("writing to memory"),
        Value::String(Some(text)) => copy_text(out, &text),
        Value::Json(Some(json)) => copy_text(out, &json.to_string()),
        Value::Bool(None)
        | Value::SmallInt(None)
        | Value::Int(None)
        | Value::BigInt(None)
        | Value::String(None)
        | Value::Json(None) => out.extend_from_slice(NULL),
        other => {
            return Err(DbErr::Custom(format!(
                "no COPY text form for the value {other:?}"
            )));
        }
    }
    Ok(())
}

fn copy_text(out: &mut Vec<u8>, text: &str) {
    for byte in text.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            other => out.push(other),
        }
    }
}

/// Runs a statement made of the store's own text and the catalog's names, never input, in
/// either backend's transaction.
pub(super) async fn execute_trusted<DB: sqlx::Database>(
    txn: &mut sqlx::Transaction<'_, DB>,
    statement: String,
) -> Result<(), DbErr>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    sqlx::query::<DB>(AssertSqlSafe(statement))
        .execute(&mut **txn)
        .await
        .map(drop)
        .map_err(exec_error)
}

pub(super) fn exec_error(error: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(error.into()))
}

fn query_error(error: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(error.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_the_format_reserves() {
        let mut out = Vec::new();
        copy_field(&mut out, Value::String(Some("a\tb\\c\nd\re".into()))).unwrap();
        assert_eq!(out, b"a\\tb\\\\c\\nd\\re");
        let mut out = Vec::new();
        copy_field(&mut out, Value::String(None)).unwrap();
        copy_field(&mut out, Value::Bool(Some(true))).unwrap();
        copy_field(&mut out, Value::BigInt(Some(-7))).unwrap();
        copy_field(
            &mut out,
            Value::Json(Some(Box::new(json!({"k": "tab\there"})))),
        )
        .unwrap();
        assert_eq!(out, b"\\Nt-7{\"k\":\"tab\\\\there\"}");
    }
}
