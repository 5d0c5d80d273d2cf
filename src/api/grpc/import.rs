//! Import records into the command's typed `ImportUser`: from protobuf (the ImportUsers RPC)
//! or from JSON (`userdir import`'s JSON Lines, read exactly as the transcoder reads a JSON
//! body), with CreateUser's validation (`parse::new_user`) plus the import's own fields. And
//! the RPC's side of the import: a stream of records, decided in batches.

use prost::Message;
use prost_reflect::{DescriptorPool, MessageDescriptor};
use tonic::Status;

use super::parse::{self, UserFields};
use crate::api::http::{bind, body};
use crate::command::authenticators::PasswordSecret;
use crate::command::contact::Verification;
use crate::command::import::{
    ImportUser, ImportedContact, ImportedKey, ImportedPassword, ImportedTotp, Importer, Outcome,
};
use crate::domain::{UserState, keys, totp};
use crate::error::{Error, Result};
use crate::proto::user::v1 as pb;
use crate::store::ScopedDb;

/// Most authenticators of one kind a record may carry.
pub const MAX_AUTHENTICATORS: usize = 20;
/// Most records one ImportUsers call takes; its answer (an id or an error per record) stays far
/// below a client's default 4 MiB message limit. Larger imports make several calls, or use
/// `userdir import`.
pub const MAX_RECORDS_PER_CALL: u64 = 10_000;
/// Records per batch (one transaction) of an ImportUsers call.
pub const RPC_BATCH: usize = 1000;
/// Bytes of records (as protobuf) after which a batch is written early, whatever its count:
/// a batch's memory stays bounded even when every record is as large as a record can be.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Longest public key PEM a record may carry (an Ed25519 key's is 113 characters).
const MAX_PUBLIC_KEY_CHARS: usize = 1000;

/// One import record as the command takes it. What an import cannot do is refused before
/// CreateUser's validation: it sends no verification codes and hashes no passwords.
pub fn record(r: &pb::ImportUserRecord, max_text: usize) -> Result<ImportUser> {
    if let Some(contact) = &r.contact {
        use pb::set_email::Verification as E;
        use pb::set_phone::Verification as P;
        let email = contact.email.as_ref().and_then(|e| match &e.verification {
            Some(E::SendCode(_)) => Some("contact.email.sendCode"),
            Some(E::ReturnCode(_)) => Some("contact.email.returnCode"),
            _ => None,
        });
        let phone = contact.phone.as_ref().and_then(|p| match &p.verification {
            Some(P::SendCode(_)) => Some("contact.phone.sendCode"),
            Some(P::ReturnCode(_)) => Some("contact.phone.returnCode"),
            _ => None,
        });
        if let Some(field) = email.or(phone) {
            return Err(Error::invalid(
                field,
                "an import sends no verification codes; set isVerified, or leave the \
                 verification out for an unverified value",
            ));
        }
    }
    if let Some(pb::SetPassword {
        r#type: Some(pb::set_password::Type::Password(_)),
        ..
    }) = &r.password
    {
        return Err(Error::invalid(
            "password.password",
            "an import takes only an existing hash (password.hash); it never hashes a password",
        ));
    }
    let new = parse::new_user(
        UserFields {
            organization_id: &r.organization_id,
            schema_id: &r.schema_id,
            data: r.data.as_ref(),
            contact: r.contact.as_ref(),
            usernames: &r.usernames,
            password: r.password.as_ref(),
        },
        max_text,
    )?;
    let user_id = match r.user_id.as_str() {
        "" => None,
        id => Some(uuid(id, "userId")?),
    };
    let state = match pb::State::try_from(r.state) {
        Ok(pb::State::UserStateUnspecified | pb::State::UserStateActive) => UserState::Active,
        Ok(pb::State::UserStateInactive) => UserState::Inactive,
        Ok(pb::State::UserStateLocked) => UserState::Locked,
        Ok(pb::State::UserStateDeleted) => UserState::Deleted,
        Err(_) => {
            return Err(Error::invalid(
                "state",
                format!("unknown state {}", r.state),
            ));
        }
    };
    let password = match new.password {
        Some(password) => match password.secret {
            PasswordSecret::Hash(hash) => Some(ImportedPassword {
                hash,
                change_required: password.change_required,
            }),
            // Refused above already.
            PasswordSecret::Plain(_) => {
                return Err(Error::invalid("password.password", "is not imported"));
            }
        },
        None => None,
    };
    bounded("idpLinks", r.idp_links.len())?;
    bounded("authenticationKeys", r.authentication_keys.len())?;
    bounded("totps", r.totps.len())?;
    bounded("otpSms", r.otp_sms.len())?;
    bounded("otpEmails", r.otp_emails.len())?;
    Ok(ImportUser {
        user_id,
        organization_id: new.organization_id,
        schema_id: new.schema_id,
        data: new.data,
        email: new.email.map(|e| ImportedContact {
            verified: e.verification == Verification::Verified,
            value: e.value,
        }),
        phone: new.phone.map(|p| ImportedContact {
            verified: p.verification == Verification::Verified,
            value: p.value,
        }),
        usernames: new.usernames,
        password,
        state,
        idp_links: r
            .idp_links
            .iter()
            .enumerate()
            .map(|(i, l)| {
                parse::idp_link(
                    &format!("idpLinks[{i}]."),
                    &l.idp_id,
                    &l.idp_name,
                    &l.linked_user_id,
                    &l.linked_username,
                    max_text,
                )
            })
            .collect::<Result<_>>()?,
        authentication_keys: r
            .authentication_keys
            .iter()
            .enumerate()
            .map(|(i, k)| authentication_key(k, &format!("authenticationKeys[{i}]")))
            .collect::<Result<_>>()?,
        totps: r
            .totps
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let field = format!("totps[{i}]");
                let secret = parse::text(&t.secret, &format!("{field}.secret"), 1, 200)?;
                Ok(ImportedTotp {
                    name: parse::totp_name(&t.name, &format!("{field}.name"), max_text)?,
                    secret: totp::imported_secret(&secret)
                        .map_err(|reason| Error::invalid(format!("{field}.secret"), reason))?,
                })
            })
            .collect::<Result<_>>()?,
        otp_sms: r
            .otp_sms
            .iter()
            .enumerate()
            .map(|(i, o)| parse::phone(&o.phone, &format!("otpSms[{i}].phone")))
            .collect::<Result<_>>()?,
        otp_emails: r
            .otp_emails
            .iter()
            .enumerate()
            .map(|(i, o)| parse::email(&o.address, &format!("otpEmails[{i}].address"), max_text))
            .collect::<Result<_>>()?,
    })
}

fn bounded(field: &str, count: usize) -> Result<()> {
    if count > MAX_AUTHENTICATORS {
        return Err(Error::invalid(
            field,
            format!("at most {MAX_AUTHENTICATORS}, got {count}"),
        ));
    }
    Ok(())
}

/// A caller-chosen user id: a UUID in any of its usual spellings, stored lower-case and
/// hyphenated (ids are stored lower-case, and a re-run must meet the same id).
fn uuid(value: &str, field: &str) -> Result<String> {
    let value = parse::id(value, field)?;
    uuid::Uuid::try_parse(value)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| Error::invalid(field, "must be a UUID"))
}

fn authentication_key(key: &pb::ImportAuthenticationKey, field: &str) -> Result<ImportedKey> {
    let public_key = format!("{field}.publicKey");
    let length = key.public_key.chars().count();
    if length > MAX_PUBLIC_KEY_CHARS {
        return Err(Error::invalid(
            public_key,
            format!("must be at most {MAX_PUBLIC_KEY_CHARS} characters, got {length}"),
        ));
    }
    Ok(ImportedKey {
        // Parsing the PEM refuses anything but a key (control characters, NUL included).
        public_key: keys::imported_public_key(&key.public_key)
            .map_err(|reason| Error::invalid(public_key, reason))?,
        expiration: key
            .expiration_date
            .as_ref()
            .map(|t| parse::timestamp(t, &format!("{field}.expirationDate")))
            .transpose()?,
    })
}

/// JSON records (`userdir import`'s lines): each is bound as the transcoder binds a JSON body
/// of ImportUserRecord (proto3 JSON names, unknown fields refused, the same value and size
/// limits), then parsed by [`record`].
pub struct JsonRecords {
    descriptor: MessageDescriptor,
    max_bytes: usize,
    max_values: usize,
    max_text: usize,
}

impl JsonRecords {
    /// Records of at most `max_message_bytes` (as JSON and as protobuf), names of at most
    /// `max_text` characters: the server's own limits.
    pub fn new(max_message_bytes: usize, max_text: usize) -> anyhow::Result<Self> {
        let pool = DescriptorPool::decode(crate::proto::DESCRIPTOR_SET)?;
        let descriptor = pool
            .get_message_by_name("userdir.user.v1.ImportUserRecord")
            .ok_or_else(|| anyhow::anyhow!("no ImportUserRecord in the descriptor set"))?;
        Ok(Self {
            descriptor,
            max_bytes: max_message_bytes,
            max_values: body::max_values(max_message_bytes),
            max_text,
        })
    }

    /// The largest record, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    pub fn parse(&self, json: &[u8]) -> Result<ImportUser> {
        // The transcoder's words are about a request body; here it is a record.
        let refused = |why: String| {
            Error::invalid(
                "record",
                why.replace("invalid JSON body", "invalid JSON")
                    .replace("the request body", "the record"),
            )
        };
        if json.len() > self.max_bytes {
            return Err(refused(format!(
                "is larger than the limit of {} bytes",
                self.max_bytes
            )));
        }
        let checked = body::check(json, self.max_values).map_err(|refusal| match refusal {
            body::Refused::TooMany(why) | body::Refused::Duplicate(why) => refused(why),
        })?;
        let message =
            bind::bind_message(self.descriptor.clone(), checked).map_err(|e| refused(e.0))?;
        let bytes = message.encode_to_vec();
        if bytes.len() > self.max_bytes {
            return Err(refused(format!(
                "is {} bytes as protobuf, more than the limit of {} bytes",
                bytes.len(),
                self.max_bytes
            )));
        }
        let record = pb::ImportUserRecord::decode(bytes.as_slice())
            .map_err(|error| refused(format!("does not decode: {error}")))?;
        self::record(&record, self.max_text)
    }
}

/// The answer of an ImportUsers call, built record by record.
#[derive(Default)]
struct Answer {
    response: pb::ImportUsersResponse,
}

impl Answer {
    fn fail(&mut self, index: u64, error: Error) {
        let status = Status::from(error);
        self.response.failed += 1;
        self.response.errors.push(pb::ImportUserError {
            index,
            code: status.code() as i32,
            message: status.message().to_owned(),
        });
    }

    fn outcome(&mut self, index: u64, outcome: Outcome) {
        match outcome {
            Outcome::Imported(user_id) => {
                self.response.imported += 1;
                self.response.users.push(pb::ImportedUser {
                    index,
                    user_id,
                    skipped: false,
                });
            }
            Outcome::Present(user_id) => {
                self.response.skipped += 1;
                self.response.users.push(pb::ImportedUser {
                    index,
                    user_id,
                    skipped: true,
                });
            }
            Outcome::Failed(error) => self.fail(index, error),
        }
    }
}

/// ImportUsers: reads the stream, decides its records a batch at a time ([`RPC_BATCH`], or
/// [`MAX_BATCH_BYTES`]) as they arrive, and answers with every record's outcome in stream order. After
/// [`MAX_RECORDS_PER_CALL`] records the stream is not read further: the next record is answered
/// ResourceExhausted and the call ends with what it did. A broken stream or a database error
/// ends the call with that status; the batches before it stay written.
pub async fn import_stream(
    db: ScopedDb,
    mut stream: tonic::Streaming<pb::ImportUserRecord>,
    max_text: usize,
) -> std::result::Result<pb::ImportUsersResponse, Status> {
    let mut importer = Importer::new(db);
    let mut answer = Answer::default();
    let mut pending: Vec<(u64, ImportUser)> = Vec::with_capacity(RPC_BATCH);
    let mut pending_bytes = 0;
    let mut index = 0;
    while let Some(message) = stream.message().await? {
        if index == MAX_RECORDS_PER_CALL {
            answer.fail(
                index,
                Error::ResourceExhausted(format!(
                    "ImportUsers takes at most {MAX_RECORDS_PER_CALL} records per call; this \
                     record and any after it were not read: send them in another call"
                )),
            );
            break;
        }
        match record(&message, max_text) {
            Ok(parsed) => {
                pending_bytes += message.encoded_len();
                pending.push((index, parsed));
            }
            Err(error) => answer.fail(index, error),
        }
        index += 1;
        if pending.len() == RPC_BATCH || pending_bytes >= MAX_BATCH_BYTES {
            flush(&mut importer, &mut pending, &mut answer).await?;
            pending_bytes = 0;
        }
    }
    flush(&mut importer, &mut pending, &mut answer).await?;
    let mut response = answer.response;
    response.errors.sort_by_key(|e| e.index);
    response.users.sort_by_key(|u| u.index);
    Ok(response)
}

async fn flush(
    importer: &mut Importer,
    pending: &mut Vec<(u64, ImportUser)>,
    answer: &mut Answer,
) -> std::result::Result<(), Status> {
    if pending.is_empty() {
        return Ok(());
    }
    let (indexes, records): (Vec<u64>, Vec<ImportUser>) =
        std::mem::take(pending).into_iter().unzip();
    let outcomes = importer.import(records).await?;
    for (index, outcome) in indexes.into_iter().zip(outcomes) {
        answer.outcome(index, outcome);
    }
    Ok(())
}
