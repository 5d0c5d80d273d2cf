//! The pages of ListUsers and ListRoleUsers: resume a search at its page token, answer the
//! token of the next page.

use tonic::Status;

use super::{ServiceState, convert};
use crate::proto::user::v1 as pb;
use crate::query::{PageToken, UserSearch};
use crate::store::ScopedDb;
use crate::store::reads::users;

/// One page of `search` (whole: every filter the request implies already in it), after the
/// position of `token` if there is one; the token must have been issued for this search of a
/// caller in the same organization.
pub(super) async fn users_page(
    state: &ServiceState,
    db: &ScopedDb,
    mut search: UserSearch,
    token: Option<PageToken>,
) -> Result<pb::ListUsersResponse, Status> {
    let organization = db.scope().organization();
    if let Some(token) = token {
        search.after = Some(token.resume(&search, organization)?);
    }
    let page = users::list_users(db, &state.regex_searches, &search).await?;
    let next = page
        .next
        .as_ref()
        .map(|cursor| state.page_tokens.issue(&search, organization, cursor))
        .unwrap_or_default();
    Ok(convert::list_users_response(page, search.sort, next))
}
