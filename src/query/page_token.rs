//! Page tokens: where the next page of a user search starts, handed to the client as an opaque
//! string and taken back only for the same search. A token holds the last row's sort key (the
//! sorted value, with its NULL-ness, and the user id), the sort column and direction, and a
//! fingerprint of the query tree, the sort and the caller's organization; an HMAC-SHA256 under
//! the directory's key (shared by every server on the database) makes it tamper-proof. It is
//! base64url without padding.
//!
//! A page reached by token is a keyset seek (`store::reads::compile::seek`): it costs what the
//! first page costs, and a walk never repeats or skips a user that exists throughout it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{CompareOp, Filter, Query, SortField, TextMatch, TextOp, UserSearch};
use crate::error::Error;

/// The request field a token travels in, as errors name it.
pub const FIELD: &str = "query.pageToken";

/// Bumped when the layout changes: older tokens then fail as undecodable, never misread.
const VERSION: u8 = 1;
const FINGERPRINT_BYTES: usize = 16;
const MAC_BYTES: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The value of the sorted column in the last row of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortValue {
    /// Sorting by id: the id is the whole key.
    None,
    /// The user lacks the sorted (nullable) property: it is in the group that comes last.
    Null,
    /// Timestamps (microseconds) and states.
    Int(i64),
    /// Emails (folded), phone numbers, schema ids and (folded) schema types.
    Text(String),
}

/// A position in the order of a search: the page resumes strictly after this row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub value: SortValue,
    pub id: String,
}

/// The key that signs and checks page tokens. No `Debug` of its bytes: it must not reach a log.
#[derive(Clone)]
pub struct PageTokenKey([u8; 32]);

impl std::fmt::Debug for PageTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokenKey(..)")
    }
}

/// A token whose MAC checked out: issued by this directory, not yet matched to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageToken {
    sort: SortField,
    ascending: bool,
    fingerprint: [u8; FINGERPRINT_BYTES],
    cursor: Cursor,
}

impl PageTokenKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes a key of any length")
    }

    /// The token of the page after `cursor` in `search`, for a caller in `organization`.
    pub fn issue(
        &self,
        search: &UserSearch,
        organization: Option<&str>,
        cursor: &Cursor,
    ) -> String {
        let mut bytes = vec![VERSION, sort_code(search.sort), u8::from(search.ascending)];
        bytes.extend_from_slice(&fingerprint(search, organization));
        match &cursor.value {
            SortValue::None => bytes.push(0),
            SortValue::Null => bytes.push(1),
            SortValue::Int(value) => {
                bytes.push(2);
                bytes.extend_from_slice(&value.to_be_bytes());
            }
            SortValue::Text(text) => {
                bytes.push(3);
                put_text(&mut bytes, text);
            }
        }
        put_text(&mut bytes, &cursor.id);
        let mut mac = self.mac();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes a token and checks its MAC. Anything this directory did not issue (garbage, a
    /// flipped byte, another directory's token) is InvalidArgument naming [`FIELD`].
    pub fn open(&self, token: &str) -> Result<PageToken, Error> {
        let not_ours = || Error::invalid(FIELD, "is not a page token of this directory");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| not_ours())?;
        let signed_len = bytes.len().checked_sub(MAC_BYTES).ok_or_else(not_ours)?;
        let (signed, tag) = bytes.split_at(signed_len);
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| not_ours())?;
        // Signed by us, so well formed unless the layout changed: still never trusted blindly.
        decode(signed).ok_or_else(not_ours)
    }
}

impl PageToken {
    /// The position to resume `search` at, if the token was issued for this very search (query,
    /// sort, direction) of a caller in `organization`; otherwise InvalidArgument naming
    /// [`FIELD`]. The caller checks the offset (a token replaces it).
    pub fn resume(self, search: &UserSearch, organization: Option<&str>) -> Result<Cursor, Error> {
        if self.sort != search.sort {
            return Err(Error::invalid(
                FIELD,
                "was issued for another sortingColumn; send the sorting of the first page",
            ));
        }
        if self.ascending != search.ascending {
            return Err(Error::invalid(
                FIELD,
                "was issued for the other direction; send the query.asc of the first page",
            ));
        }
        if self.fingerprint != fingerprint(search, organization) {
            return Err(Error::invalid(
                FIELD,
                "was issued for another query; send the queries of the first page",
            ));
        }
        Ok(self.cursor)
    }
}

fn put_text(bytes: &mut Vec<u8>, text: &str) {
    let len = u32::try_from(text.len()).expect("texts of a search are short");
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(text.as_bytes());
}

/// A reader over the signed part of a token.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn text(&mut self) -> Option<String> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().ok()?);
        let bytes = self.take(usize::try_from(len).ok()?)?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

fn decode(signed: &[u8]) -> Option<PageToken> {
    let mut reader = Reader(signed);
    if reader.byte()? != VERSION {
        return None;
    }
    let sort = sort_from_code(reader.byte()?)?;
    let ascending = match reader.byte()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let fingerprint = reader.take(FINGERPRINT_BYTES)?.try_into().ok()?;
    let value = match reader.byte()? {
        0 => SortValue::None,
        1 => SortValue::Null,
        2 => SortValue::Int(i64::from_be_bytes(reader.take(8)?.try_into().ok()?)),
        3 => SortValue::Text(reader.text()?),
        _ => return None,
    };
    let id = reader.text()?;
    if !reader.0.is_empty() || !fits(sort, &value) {
        return None;
    }
    Some(PageToken {
        sort,
        ascending,
        fingerprint,
        cursor: Cursor { value, id },
    })
}

/// Whether a sort key can come from a row sorted by `sort`.
fn fits(sort: SortField, value: &SortValue) -> bool {
    use SortField as S;
    match value {
        SortValue::None => sort == S::Id,
        SortValue::Null => matches!(sort, S::Email | S::Phone),
        SortValue::Int(_) => matches!(sort, S::CreationDate | S::ChangeDate | S::State),
        SortValue::Text(_) => matches!(sort, S::Email | S::Phone | S::SchemaId | S::SchemaType),
    }
}

fn sort_code(sort: SortField) -> u8 {
    match sort {
        SortField::CreationDate => 0,
        SortField::Id => 1,
        SortField::ChangeDate => 2,
        SortField::Email => 3,
        SortField::Phone => 4,
        SortField::State => 5,
        SortField::SchemaId => 6,
        SortField::SchemaType => 7,
    }
}

fn sort_from_code(code: u8) -> Option<SortField> {
    Some(match code {
        0 => SortField::CreationDate,
        1 => SortField::Id,
        2 => SortField::ChangeDate,
        3 => SortField::Email,
        4 => SortField::Phone,
        5 => SortField::State,
        6 => SortField::SchemaId,
        7 => SortField::SchemaType,
        _ => return None,
    })
}

/// What a token is bound to: the query tree, sort and direction, and the caller's organization,
/// hashed from a canonical encoding of the typed values, so the same search sent as JSON or as
/// protobuf (or with other whitespace, field order or defaults spelled out) has one fingerprint.
fn fingerprint(search: &UserSearch, organization: Option<&str>) -> [u8; FINGERPRINT_BYTES] {
    let mut bytes = vec![sort_code(search.sort), u8::from(search.ascending)];
    match organization {
        None => bytes.push(0),
        Some(organization) => {
            bytes.push(1);
            put_text(&mut bytes, organization);
        }
    }
    match &search.query {
        None => bytes.push(0),
        Some(query) => {
            bytes.push(1);
            canonical(query, &mut bytes);
        }
    }
    let digest = Sha256::digest(&bytes);
    digest[..FINGERPRINT_BYTES]
        .try_into()
        .expect("SHA-256 is longer than a fingerprint")
}

/// A prefix-free encoding of the tree: a tag per node, counts before lists, lengths before
/// texts. Exhaustive, so a new filter cannot be forgotten.
fn canonical(query: &Query, out: &mut Vec<u8>) {
    let list = |tag: u8, queries: &[Query], out: &mut Vec<u8>| {
        out.push(tag);
        out.extend_from_slice(&(queries.len() as u64).to_be_bytes());
        for query in queries {
            canonical(query, out);
        }
    };
    match query {
        Query::And(queries) => list(1, queries, out),
        Query::Or(queries) => list(2, queries, out),
        Query::Not(query) => {
            out.push(3);
            canonical(query, out);
        }
        Query::Filter(filter) => {
            out.push(4);
            canonical_filter(filter, out);
        }
    }
}

fn canonical_filter(filter: &Filter, out: &mut Vec<u8>) {
    let text = |tag: u8, text: &TextMatch, out: &mut Vec<u8>| {
        out.push(tag);
        out.push(match text.op {
            TextOp::Equals => 0,
            TextOp::StartsWith => 1,
            TextOp::Contains => 2,
            TextOp::EndsWith => 3,
            TextOp::Like => 4,
            TextOp::Regex => 5,
        });
        out.push(u8::from(text.ignore_case));
        put_text(out, &text.value);
    };
    let time = |tag: u8, comparison: &super::Comparison, out: &mut Vec<u8>| {
        out.push(tag);
        out.push(match comparison.op {
            CompareOp::Eq => 0,
            CompareOp::Ne => 1,
            CompareOp::Gt => 2,
            CompareOp::Ge => 3,
            CompareOp::Lt => 4,
        });
        out.extend_from_slice(&comparison.value.micros().to_be_bytes());
    };
    match filter {
        Filter::UserId(t) => text(1, t, out),
        Filter::OrganizationId(t) => text(2, t, out),
        Filter::Username {
            text: t,
            organization_specific,
        } => {
            text(3, t, out);
            out.push(match organization_specific {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            });
        }
        Filter::Email(t) => text(4, t, out),
        Filter::Phone(t) => text(5, t, out),
        Filter::Name(t) => text(6, t, out),
        Filter::State(state) => {
            out.push(7);
            out.extend_from_slice(&state.number().to_be_bytes());
        }
        Filter::SchemaId(id) => {
            out.push(8);
            put_text(out, id);
        }
        Filter::SchemaType(t) => text(9, t, out),
        Filter::Role(id) => {
            out.push(10);
            put_text(out, id);
        }
        Filter::CreatedAt(c) => time(11, c, out),
        Filter::ChangedAt(c) => time(12, c, out),
        Filter::LastLogin(c) => time(13, c, out),
        Filter::Nothing => out.push(14),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserState;

    fn key(byte: u8) -> PageTokenKey {
        PageTokenKey::new([byte; 32])
    }

    fn search(query: Option<Query>, sort: SortField, ascending: bool) -> UserSearch {
        UserSearch {
            query,
            sort,
            ascending,
            offset: 0,
            limit: 10,
            after: None,
        }
    }

    fn email(value: &str) -> Query {
        Query::Filter(Filter::Email(TextMatch::new(
            TextOp::StartsWith,
            true,
            value,
        )))
    }

    fn cursor(value: SortValue) -> Cursor {
        Cursor {
            value,
            id: "0193c0de-0000-7000-8000-000000000001".into(),
        }
    }

    fn reason(error: Error) -> String {
        match error {
            Error::InvalidArgument { field, reason } => {
                assert_eq!(field, FIELD);
                reason
            }
            other => panic!("not InvalidArgument: {other:?}"),
        }
    }

    #[test]
    fn every_kind_of_sort_key_survives_the_round_trip() {
        let cases = [
            (SortField::Id, SortValue::None),
            (SortField::Email, SortValue::Null),
            (SortField::Email, SortValue::Text("ä@b.c".into())),
            (SortField::CreationDate, SortValue::Int(-5)),
            (SortField::State, SortValue::Int(i64::MAX)),
            (SortField::SchemaType, SortValue::Text(String::new())),
        ];
        for (sort, value) in cases {
            for ascending in [false, true] {
                let search = search(Some(email("a")), sort, ascending);
                let token = key(1).issue(&search, Some("org"), &cursor(value.clone()));
                assert!(!token.contains(['=', '+', '/']), "{token}");
                let opened = key(1).open(&token).unwrap();
                assert_eq!(
                    opened.resume(&search, Some("org")).unwrap(),
                    cursor(value.clone())
                );
            }
        }
    }

    #[test]
    fn garbage_flipped_bytes_and_other_keys_are_not_ours() {
        let search = search(None, SortField::CreationDate, false);
        let token = key(1).issue(&search, None, &cursor(SortValue::Int(42)));
        for garbage in ["", "!!!", "AAAA", "a.b.c", &token[..token.len() - 1]] {
            let error = key(1).open(garbage).unwrap_err();
            assert!(reason(error).contains("not a page token"), "{garbage}");
        }
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x01;
            let flipped = URL_SAFE_NO_PAD.encode(flipped);
            assert!(key(1).open(&flipped).is_err(), "byte {i} flipped");
        }
        assert!(key(2).open(&token).is_err(), "another directory's key");
    }

    #[test]
    fn a_token_resumes_only_its_own_search() {
        let first = search(Some(email("a")), SortField::Email, true);
        let token = key(1).issue(&first, None, &cursor(SortValue::Null));
        let replay = |other: &UserSearch, organization| {
            reason(
                key(1)
                    .open(&token)
                    .unwrap()
                    .resume(other, organization)
                    .unwrap_err(),
            )
        };
        assert!(replay(&search(Some(email("b")), SortField::Email, true), None).contains("query"));
        assert!(replay(&search(None, SortField::Email, true), None).contains("query"));
        assert!(replay(&search(Some(email("a")), SortField::Phone, true), None).contains("sort"));
        assert!(
            replay(&search(Some(email("a")), SortField::Email, false), None).contains("direction")
        );
        assert!(
            replay(&first, Some("org")).contains("query"),
            "another scope"
        );
        // Offset and limit are not part of the search a token belongs to.
        let mut bigger = first.clone();
        bigger.limit = 500;
        assert!(key(1).open(&token).unwrap().resume(&bigger, None).is_ok());
    }

    #[test]
    fn fingerprints_tell_trees_apart_that_print_alike() {
        let leaf = |v: &str| email(v);
        let trees = [
            Query::And(vec![leaf("a"), leaf("b")]),
            Query::Or(vec![leaf("a"), leaf("b")]),
            Query::And(vec![leaf("ab")]),
            Query::And(vec![leaf("a"), Query::And(vec![leaf("b")])]),
            Query::Not(Box::new(leaf("a"))),
            leaf("a"),
            Query::Filter(Filter::Email(TextMatch::new(
                TextOp::StartsWith,
                false,
                "a",
            ))),
            Query::Filter(Filter::Name(TextMatch::new(TextOp::StartsWith, true, "a"))),
            Query::Filter(Filter::State(UserState::Locked)),
            Query::Filter(Filter::State(UserState::Active)),
            Query::Filter(Filter::Nothing),
        ];
        let prints: Vec<_> = trees
            .iter()
            .map(|tree| fingerprint(&search(Some(tree.clone()), SortField::Id, false), None))
            .collect();
        for (i, a) in prints.iter().enumerate() {
            for b in &prints[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Stable: the same tree, built again, has the same print.
        let again = fingerprint(&search(Some(trees[0].clone()), SortField::Id, false), None);
        assert_eq!(prints[0], again);
    }

    #[test]
    fn a_sort_key_that_cannot_come_from_its_sort_is_refused() {
        let search = search(None, SortField::CreationDate, false);
        let token = key(1).issue(&search, None, &cursor(SortValue::Null));
        assert!(key(1).open(&token).is_err());
    }
}
