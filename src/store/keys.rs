//! Keys shared by every server on the database, created by the first server that needs one:
//! insert a fresh random key unless one of that name exists, then read whichever won. Servers
//! racing at startup thus all end up with the same key.

use rand::RngCore;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};

use crate::query::PageTokenKey;
use crate::store::entities::server_key;

/// The name of the key that authenticates page tokens.
const PAGE_TOKENS: &str = "page_tokens";

/// The key of page tokens (`query.pageToken`), created on first use.
pub async fn page_token_key(db: &impl ConnectionTrait) -> Result<PageTokenKey, DbErr> {
    let secret = shared_key(db, PAGE_TOKENS).await?;
    let bytes: [u8; 32] = secret.as_slice().try_into().map_err(|_| {
        DbErr::Custom(format!(
            "server key {PAGE_TOKENS} has {} bytes, not 32",
            secret.len()
        ))
    })?;
    Ok(PageTokenKey::new(bytes))
}

async fn shared_key(db: &impl ConnectionTrait, name: &str) -> Result<Vec<u8>, DbErr> {
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    let row = server_key::ActiveModel {
        name: Set(name.to_owned()),
        secret: Set(fresh.to_vec()),
    };
    // Another server may have created it meanwhile: then its key wins and this one is dropped.
    server_key::Entity::insert(row)
        .on_conflict_do_nothing_on([server_key::Column::Name])
        .exec(db)
        .await?;
    let key = server_key::Entity::find_by_id(name)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::Custom(format!("server key {name} vanished after its insert")))?;
    Ok(key.secret)
}
