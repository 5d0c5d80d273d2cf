//! Bulk import (`userdir import`, the ImportUsers RPC): records decided a batch at a time, each
//! batch in one transaction that holds the event-log lock (`store::writes::import`).
//!
//! A record is decided as CreateUser decides one: its organization exists in the caller's
//! scope, its schema exists, its data fits the schema's current revision, its usernames are
//! allowed and free (in the directory and among the batch's earlier records), and so are its
//! IdP links. A record whose id is present already is skipped, so running the same file again
//! changes nothing. One record's failure is its own: the rest of its batch is written.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use super::authenticators::{
    NewIdpLink, NewUsername, check_username_scope, idp_link_taken, uniqueness_scope, username_taken,
};
use super::new_id;
use super::users::{check_data_with, organization_not_found, schema_not_found};
use crate::domain::{Timestamp, UserState, fold_case, schema};
use crate::error::{Error, Result};
use crate::store::ScopedDb;
use crate::store::entities::{
    authentication_key, idp_link, otp_email, otp_sms, password, totp, user, username,
};
use crate::store::writes::exclusive::ExclusiveImport;
use crate::store::writes::import::{ImportBatch, SchemaHead, UserImport};

/// One user to import, parsed (see `api::grpc::import`).
#[derive(Clone, Debug)]
pub struct ImportUser {
    /// The caller's id for the user (a UUID, lower-case); None: a new UUIDv7.
    pub user_id: Option<String>,
    pub organization_id: String,
    pub schema_id: String,
    pub data: Value,
    pub email: Option<ImportedContact>,
    pub phone: Option<ImportedContact>,
    pub usernames: Vec<NewUsername>,
    pub password: Option<ImportedPassword>,
    pub state: UserState,
    pub idp_links: Vec<NewIdpLink>,
    pub authentication_keys: Vec<ImportedKey>,
    pub totps: Vec<ImportedTotp>,
    /// Phone numbers of verified OTP SMS authenticators.
    pub otp_sms: Vec<String>,
    /// Addresses of verified OTP email authenticators.
    pub otp_emails: Vec<String>,
}

/// A contact value and whether it is verified; an import sends no codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedContact {
    pub value: String,
    pub verified: bool,
}

/// An existing hash, checked against the cost ceiling when it was parsed.
#[derive(Clone)]
pub struct ImportedPassword {
    pub hash: String,
    pub change_required: bool,
}

impl std::fmt::Debug for ImportedPassword {
    /// A hash never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImportedPassword(..)")
    }
}

/// An Ed25519 public key (PEM, as the store keeps it).
#[derive(Clone, Debug)]
pub struct ImportedKey {
    pub public_key: String,
    pub expiration: Option<Timestamp>,
}

/// A verified TOTP authenticator with its base32 secret.
#[derive(Clone)]
pub struct ImportedTotp {
    pub name: String,
    pub secret: String,
}

impl std::fmt::Debug for ImportedTotp {
    /// The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImportedTotp({:?}, ..)", self.name)
    }
}

/// What became of one record.
#[derive(Debug)]
pub enum Outcome {
    /// Written as a new user with this id.
    Imported(String),
    /// A user with the record's id was present already: left as it is.
    Present(String),
    Failed(Error),
}

/// Decides and writes batches of records for one caller; schemas are compiled once per
/// revision for the whole import.
pub struct Importer {
    db: ScopedDb,
    validators: HashMap<(String, i32), Arc<schema::Validator>>,
    /// The transaction of an exclusive import, whose savepoints the batches are; None: each
    /// batch commits on its own.
    exclusive: Option<ExclusiveImport>,
    /// An exclusive import's batch decided and not yet written: it is written while the next
    /// batch is decided (see [`Importer::import`]).
    decided: Option<Decided>,
}

/// The rows of a decided batch, what its records took, and the time they were created.
struct Decided {
    rows: Vec<UserImport>,
    taken: Taken,
    at: Timestamp,
}

impl Importer {
    pub fn new(db: ScopedDb) -> Self {
        Self {
            db,
            validators: HashMap::new(),
            exclusive: None,
            decided: None,
        }
    }

    /// An importer that writes every batch in one transaction with the directory to itself,
    /// its indexes and foreign keys built at [`Importer::finish`] (see
    /// `store::writes::exclusive`): the batches are committed together there, or not at all.
    pub async fn exclusive(db: ScopedDb) -> Result<Self> {
        let exclusive =
            ExclusiveImport::begin(db.connection())
                .await
                .map_err(|error| match error {
                    sea_orm::DbErr::Custom(message) => Error::FailedPrecondition(message),
                    other => other.into(),
                })?;
        Ok(Self {
            exclusive: Some(exclusive),
            ..Self::new(db)
        })
    }

    /// Ends the import: an exclusive one builds what it dropped and commits; otherwise every
    /// batch is committed already.
    pub async fn finish(mut self) -> Result<()> {
        if let Some(mut exclusive) = self.exclusive {
            if let Some(decided) = self.decided.take() {
                let batch = exclusive.batch().await?;
                batch.write(decided.rows, self.db.actor()).await?;
            }
            // The batches' memory, freed (by three threads, in three of malloc's arenas), is
            // not what the index builds allocate: without this their peaks add up.
            crate::memory::release_free_memory();
            exclusive.finish().await?;
        }
        Ok(())
    }

    /// Decides every record and writes those that pass, in one transaction; the outcomes are
    /// in record order. An error is the database's: nothing of the batch was written.
    ///
    /// An exclusive import writes a batch while it decides the next one, on another thread:
    /// deciding is the importer's CPU, writing mostly the database's, and one waited for the
    /// other. The next batch's reads run before the batch is written, so what the batch took
    /// is carried to its decisions (nobody else writes meanwhile); a batch's outcomes are
    /// final before it is written, since any error there fails the whole import.
    pub async fn import(&mut self, records: Vec<ImportUser>) -> Result<Vec<Outcome>> {
        let overlapped = self.exclusive.is_some();
        let (rows, unwritten) = match self.decided.take() {
            Some(decided) => (decided.rows, Some((decided.taken, decided.at))),
            None => (Vec::new(), None),
        };
        let mut batch = match &mut self.exclusive {
            Some(exclusive) => exclusive.batch().await?,
            None => ImportBatch::begin(self.db.connection()).await?,
        };
        let decider = decider(
            &mut self.validators,
            self.db.scope(),
            &mut batch,
            &records,
            unwritten,
        )
        .await?;
        if !overlapped {
            let (outcomes, decided) = decider.decide_all(records);
            batch.write(decided.rows, self.db.actor()).await?;
            return Ok(outcomes);
        }
        let deciding = tokio::task::spawn_blocking(move || decider.decide_all(records));
        let written = rows.len();
        let (decided, wrote) = tokio::join!(deciding, batch.write(rows, self.db.actor()));
        wrote?;
        let (outcomes, decided) = decided
            .map_err(|error| Error::Internal(format!("deciding a batch failed: {error}")))?;
        if let Some(exclusive) = &mut self.exclusive {
            exclusive.written(written).await?;
        }
        self.decided = Some(decided);
        Ok(outcomes)
    }
}

/// The decider of a batch: what the directory holds of its records' names (read in `batch`),
/// their schemas' validators (compiled once per revision for the whole import, in
/// `validators`), and what the batch before took if it is not written yet (`unwritten`).
async fn decider(
    validators: &mut HashMap<(String, i32), Arc<schema::Validator>>,
    scope: &crate::domain::Scope,
    batch: &mut ImportBatch<'_>,
    records: &[ImportUser],
    unwritten: Option<(Taken, Timestamp)>,
) -> Result<Decider> {
    let known = Known::read(batch, records).await?;
    let mut schemas = HashMap::new();
    for head in known.schemas.values() {
        let key = (head.id.clone(), head.revision);
        let compiled = match validators.get(&key) {
            Some(validator) => Ok(validator.clone()),
            None => {
                // A revision this import has not met: compiled once (a schema that does
                // not compile fails its records, as CreateUser fails).
                let json_schema = batch.json_schema(&head.id).await?;
                let compiled = schema::Validator::compile(&json_schema).map(Arc::new);
                if let Ok(validator) = &compiled {
                    validators.insert(key, validator.clone());
                }
                compiled
            }
        };
        schemas.insert(head.id.clone(), compiled);
    }
    let taken = Taken {
        ids: HashSet::new(),
        names_anywhere: known.usernames.iter().map(|(_, l)| l.clone()).collect(),
        names: known.usernames.clone(),
        links: known.idp_links.clone(),
    };
    let mut now = batch.now();
    let mut before = Taken::default();
    if let Some((taken, at)) = unwritten {
        before = taken;
        // Event times never go backwards along the sequence, even if the clock does: these
        // users' events follow the unwritten batch's.
        now = now.max(Timestamp::from_micros(at.micros() + 1));
    }
    Ok(Decider {
        known,
        schemas,
        scope: scope.clone(),
        now,
        taken,
        before,
    })
}

/// What the directory holds that a batch's records name, read in the batch's transaction.
struct Known {
    present: HashSet<String>,
    organizations: HashSet<String>,
    schemas: HashMap<String, SchemaHead>,
    /// Taken usernames among the records': (uniqueness scope, folded name).
    usernames: HashSet<(String, String)>,
    /// Taken IdP links among the records': (organization, IdP, linked user id).
    idp_links: HashSet<(String, String, String)>,
}

impl Known {
    async fn read(batch: &mut ImportBatch<'_>, records: &[ImportUser]) -> Result<Self> {
        let ids: Vec<String> = distinct(records.iter().filter_map(|r| r.user_id.clone()));
        let organizations = distinct(records.iter().map(|r| r.organization_id.clone()));
        let schemas = distinct(records.iter().map(|r| r.schema_id.clone()));
        let names = distinct(
            records
                .iter()
                .flat_map(|r| r.usernames.iter().map(|u| fold_case(&u.username))),
        );
        let linked = distinct(
            records
                .iter()
                .flat_map(|r| r.idp_links.iter().map(|l| l.linked_user_id.clone())),
        );
        Ok(Self {
            present: batch.present_users(&ids).await?,
            organizations: batch.organizations(&organizations).await?,
            schemas: batch
                .schemas(&schemas)
                .await?
                .into_iter()
                .map(|head| (head.id.clone(), head))
                .collect(),
            usernames: batch.taken_usernames(&names).await?,
            idp_links: batch.taken_idp_links(&linked).await?,
        })
    }
}

fn distinct(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(v.clone())).collect()
}

enum Decision {
    Write(Box<UserImport>),
    Present(String),
    Refuse(Error),
}

/// What accepted records take, for the records after them: their ids, and folded usernames
/// and IdP links (with those taken in the directory).
#[derive(Default)]
struct Taken {
    ids: HashSet<String>,
    /// Folded usernames in any scope, and with their scope.
    names_anywhere: HashSet<String>,
    names: HashSet<(String, String)>,
    /// (organization, IdP, linked user id).
    links: HashSet<(String, String, String)>,
}

/// Decides the records of one batch in order; what an accepted record takes (its id, its
/// usernames, its links) is taken for the records after it.
struct Decider {
    known: Known,
    schemas: HashMap<String, std::result::Result<Arc<schema::Validator>, String>>,
    scope: crate::domain::Scope,
    now: Timestamp,
    /// Taken in the directory and by the batch so far.
    taken: Taken,
    /// Taken by the batch before, not written yet (only that batch's, so that what is carried
    /// stays the size of a batch).
    before: Taken,
}

impl Decider {
    /// Every record's outcome in order, and the rows of those accepted.
    fn decide_all(mut self, records: Vec<ImportUser>) -> (Vec<Outcome>, Decided) {
        let mut rows = Vec::new();
        let outcomes = records
            .into_iter()
            .map(|record| match self.decide(record) {
                Decision::Write(row) => {
                    let id = row.user.id.clone();
                    rows.push(*row);
                    Outcome::Imported(id)
                }
                Decision::Present(id) => Outcome::Present(id),
                Decision::Refuse(error) => Outcome::Failed(error),
            })
            .collect();
        let decided = Decided {
            rows,
            taken: self.taken,
            at: self.now,
        };
        (outcomes, decided)
    }

    fn decide(&mut self, record: ImportUser) -> Decision {
        if let Some(id) = &record.user_id
            && (self.known.present.contains(id) || self.either(|t| t.ids.contains(id)))
        {
            return Decision::Present(id.clone());
        }
        match self.check(&record) {
            Ok(schema) => {
                let row = self.row(record, schema);
                self.take(&row);
                Decision::Write(Box::new(row))
            }
            Err(error) => Decision::Refuse(error),
        }
    }

    /// CreateUser's checks, in its order, then the import's own.
    fn check(&self, record: &ImportUser) -> Result<SchemaHead> {
        if !self.known.organizations.contains(&record.organization_id)
            || !self.scope.admits(&record.organization_id)
        {
            return Err(organization_not_found(&record.organization_id));
        }
        let (Some(head), Some(validator)) = (
            self.known.schemas.get(&record.schema_id),
            self.schemas.get(&record.schema_id),
        ) else {
            return Err(schema_not_found(&record.schema_id));
        };
        match validator {
            Ok(validator) => check_data_with(validator, &record.data)?,
            Err(reason) => return Err(Error::invalid("data", reason.clone())),
        }
        let mut own = HashSet::new();
        for (i, name) in record.usernames.iter().enumerate() {
            let field = format!("usernames[{i}]");
            check_username_scope(&self.scope, name, &field)?;
            let lower = fold_case(&name.username);
            let scope = uniqueness_scope(name, &record.organization_id);
            if self.name_taken(&lower, &scope) || !own.insert(lower.clone()) {
                return Err(username_taken(name, &field));
            }
        }
        let mut own_links = HashSet::new();
        for (i, link) in record.idp_links.iter().enumerate() {
            let key = (
                record.organization_id.clone(),
                link.idp_id.clone(),
                link.linked_user_id.clone(),
            );
            if self.either(|t| t.links.contains(&key)) || !own_links.insert(key) {
                return Err(idp_link_taken(link, &format!("idpLinks[{i}].linkedUserId")));
            }
        }
        for (i, key) in record.authentication_keys.iter().enumerate() {
            if let Some(at) = key.expiration
                && at <= self.now
            {
                return Err(Error::invalid(
                    format!("authenticationKeys[{i}].expirationDate"),
                    "must be in the future",
                ));
            }
        }
        Ok(head.clone())
    }

    /// Whether a username folded to `lower` clashes: an instance-wide name with the same name
    /// anywhere, an organization-specific one with the same name in its organization or
    /// instance-wide (`authenticators::insert_username`'s rule).
    fn name_taken(&self, lower: &str, scope: &str) -> bool {
        let instance = username::INSTANCE_SCOPE;
        let taken_in = |s: &str| {
            let key = (s.to_owned(), lower.to_owned());
            self.either(|t| t.names.contains(&key))
        };
        if scope == instance {
            self.either(|t| t.names_anywhere.contains(lower))
        } else {
            taken_in(instance) || taken_in(scope)
        }
    }

    /// Whether `test` holds for what is taken, by this batch or the unwritten one before it.
    fn either(&self, test: impl Fn(&Taken) -> bool) -> bool {
        test(&self.taken) || test(&self.before)
    }

    /// Marks what an accepted row takes.
    fn take(&mut self, row: &UserImport) {
        self.taken.ids.insert(row.user.id.clone());
        for name in &row.usernames {
            self.taken
                .names_anywhere
                .insert(name.username_lower.clone());
            self.taken
                .names
                .insert((name.uniqueness_scope.clone(), name.username_lower.clone()));
        }
        for link in &row.idp_links {
            self.taken.links.insert((
                link.organization_id.clone(),
                link.idp_id.clone(),
                link.external_user_id.clone(),
            ));
        }
    }

    /// The rows of an accepted record, created now.
    fn row(&self, record: ImportUser, schema: SchemaHead) -> UserImport {
        let now = self.now.micros();
        let id = record.user_id.unwrap_or_else(new_id);
        let (email, email_verified) = contact(record.email);
        let (phone, phone_verified) = contact(record.phone);
        let org = record.organization_id;
        UserImport {
            user: user::Model {
                id: id.clone(),
                organization_id: org.clone(),
                schema_id: schema.id,
                schema_revision: schema.revision,
                schema_type: schema.r#type,
                schema_type_lower: schema.type_lower,
                data: record.data,
                state: record.state.number(),
                email_lower: email.as_deref().map(fold_case),
                email,
                email_verified,
                phone_lower: phone.as_deref().map(fold_case),
                phone,
                phone_verified,
                // Derived from the data by the store, as every write of data derives it.
                name: None,
                name_lower: None,
                last_login: None,
                created_at: now,
                changed_at: now,
                sequence: 0,
                // Written with the rows (`store::authenticators::document`).
                authenticators: None,
            },
            usernames: record
                .usernames
                .iter()
                .map(|name| username::Model {
                    id: new_id(),
                    user_id: id.clone(),
                    organization_id: org.clone(),
                    username: name.username.clone(),
                    username_lower: fold_case(&name.username),
                    is_organization_specific: name.organization_specific,
                    uniqueness_scope: uniqueness_scope(name, &org),
                    created_at: now,
                })
                .collect(),
            password: record.password.map(|p| password::Model {
                user_id: id.clone(),
                hash: p.hash,
                changed_at: now,
                change_required: p.change_required,
            }),
            web_auth_n: Vec::new(),
            totps: record
                .totps
                .into_iter()
                .map(|t| totp::Model {
                    id: new_id(),
                    user_id: id.clone(),
                    name: t.name,
                    secret: t.secret,
                    is_verified: true,
                    created_at: now,
                })
                .collect(),
            otp_sms: record
                .otp_sms
                .into_iter()
                .map(|phone| otp_sms::Model {
                    id: new_id(),
                    user_id: id.clone(),
                    phone,
                    is_verified: true,
                    created_at: now,
                })
                .collect(),
            otp_emails: record
                .otp_emails
                .into_iter()
                .map(|address| otp_email::Model {
                    id: new_id(),
                    user_id: id.clone(),
                    address,
                    is_verified: true,
                    created_at: now,
                })
                .collect(),
            authentication_keys: record
                .authentication_keys
                .into_iter()
                .map(|key| authentication_key::Model {
                    id: new_id(),
                    user_id: id.clone(),
                    // AUTHN_KEY_TYPE_JSON, as AddAuthenticationKey's keys.
                    key_type: 1,
                    public_key: key.public_key,
                    expiration_date: key.expiration.map(Timestamp::micros),
                    created_at: now,
                    changed_at: now,
                    sequence: 0,
                })
                .collect(),
            idp_links: record
                .idp_links
                .into_iter()
                .map(|link| idp_link::Model {
                    id: new_id(),
                    user_id: id.clone(),
                    organization_id: org.clone(),
                    idp_id: link.idp_id,
                    idp_name: link.idp_name,
                    external_user_id: link.linked_user_id,
                    external_username: link.linked_username,
                    created_at: now,
                })
                .collect(),
        }
    }
}

fn contact(value: Option<ImportedContact>) -> (Option<String>, bool) {
    match value {
        Some(contact) => (Some(contact.value), contact.verified),
        None => (None, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decider(taken: &[(&str, &str)]) -> Decider {
        let usernames: HashSet<(String, String)> = taken
            .iter()
            .map(|(scope, name)| (scope.to_string(), name.to_string()))
            .collect();
        Decider {
            taken: Taken {
                names_anywhere: usernames.iter().map(|(_, l)| l.clone()).collect(),
                names: usernames.clone(),
                ..Taken::default()
            },
            before: Taken::default(),
            known: Known {
                present: HashSet::new(),
                organizations: HashSet::new(),
                schemas: HashMap::new(),
                usernames,
                idp_links: HashSet::new(),
            },
            schemas: HashMap::new(),
            scope: crate::domain::Scope::Instance,
            now: Timestamp::now(),
        }
    }

    #[test]
    fn usernames_clash_as_insert_username_decides() {
        let instance = username::INSTANCE_SCOPE;
        // An organization-specific name is taken in its organization and instance-wide only.
        let d = decider(&[("org-a", "gigi")]);
        assert!(d.name_taken("gigi", "org-a"));
        assert!(!d.name_taken("gigi", "org-b"));
        assert!(
            d.name_taken("gigi", instance),
            "instance-wide clashes anywhere"
        );
        // An instance-wide name is taken everywhere.
        let d = decider(&[(instance, "zoe")]);
        assert!(d.name_taken("zoe", "org-a"));
        assert!(d.name_taken("zoe", instance));
        assert!(!d.name_taken("zoey", instance));
    }
}
