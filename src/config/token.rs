//! `userdir token create`: the token to mint, and when it expires.

use clap::Args;

use super::DatabaseArgs;
use super::duration::{self, DAYS, DurationError, HOURS, MINUTES, SECONDS, WEEKS};
use crate::auth::Grant;
use crate::command::tokens::NewToken;
use crate::domain::Timestamp;

/// `userdir token create`.
#[derive(Args, Clone, Debug)]
#[command(group(clap::ArgGroup::new("grant").required(true).args(["admin", "permissions"])))]
pub struct TokenCreateArgs {
    /// Every permission (instance-wide unless --organization).
    #[arg(long)]
    pub admin: bool,

    /// Comma-separated: user.read, user.write, user.delete, role.read, role.write, org.read,
    /// org.write, schema.read, schema.write, token.write.
    #[arg(long, value_delimiter = ',')]
    pub permissions: Vec<String>,

    /// Limit the token to this organization's users.
    #[arg(long)]
    pub organization: Option<String>,

    /// When the token stops working: a duration from now (`90d`, `12h`, `30m`) or an RFC 3339
    /// time. Default: never.
    #[arg(long)]
    pub expires: Option<String>,

    /// What the token is for (shown by `token list`).
    #[arg(long, default_value = "created with userdir token create")]
    pub description: String,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

impl TokenCreateArgs {
    pub fn new_token(&self) -> anyhow::Result<NewToken> {
        // The RPC's rule: `token list` shows the description on the operator's terminal.
        if let Some(reason) = crate::domain::refused_characters(&self.description) {
            anyhow::bail!("--description: {reason}");
        }
        let grant = if self.admin {
            Grant::Admin
        } else {
            Grant::from_names(&self.permissions.join(","))?
        };
        let expires_at = self
            .expires
            .as_deref()
            .map(|text| expiry(text, Timestamp::now()))
            .transpose()?;
        Ok(NewToken {
            description: self.description.clone(),
            grant,
            organization_id: self.organization.clone(),
            expires_at,
        })
    }
}

/// `90d`, `12h`, `30m`, `45s`, `2w` from `now`, or an RFC 3339 time.
pub fn expiry(text: &str, now: Timestamp) -> anyhow::Result<Timestamp> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Timestamp::from_micros(time.timestamp_micros()));
    }
    let ahead =
        duration::parse(text, &[SECONDS, MINUTES, HOURS, DAYS, WEEKS], None).map_err(|error| {
            match error {
                DurationError::NoUnit => {
                    anyhow::anyhow!("--expires {text:?}: give a unit, e.g. 90d")
                }
                DurationError::NoNumber => {
                    anyhow::anyhow!("--expires {text:?}: expected a number before the unit")
                }
                DurationError::UnknownUnit => {
                    anyhow::anyhow!("--expires {text:?}: the unit must be s, m, h, d or w")
                }
            }
        })?;
    let micros = i64::try_from(ahead.as_micros())
        .ok()
        .and_then(|delta| now.micros().checked_add(delta))
        .ok_or_else(|| anyhow::anyhow!("--expires {text:?}: too far in the future"))?;
    Ok(Timestamp::from_micros(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_takes_durations_and_times() {
        let now = Timestamp::from_micros(1_000_000_000_000);
        assert_eq!(
            expiry("90d", now).unwrap().micros(),
            now.micros() + 90 * 86_400 * 1_000_000
        );
        assert_eq!(
            expiry("30m", now).unwrap().micros(),
            now.micros() + 1_800_000_000
        );
        assert_eq!(
            expiry("2030-01-01T00:00:00Z", now).unwrap().micros(),
            1_893_456_000_000_000
        );
        assert!(expiry("90", now).is_err());
        assert!(expiry("d", now).is_err());
        assert!(expiry("3y", now).is_err());
        assert!(expiry("99999999999999w", now).is_err());
    }
}
