//! Fuzzing entry points: one function per cargo-fuzz target in `fuzz/fuzz_targets/`, each
//! taking the fuzzer's raw bytes. The targets are one-liners that call these, and
//! `tests/api/fuzz_regressions.rs` replays every saved input (`fuzz/seeds/<target>/`,
//! `fuzz/regressions/<target>/`) through the same functions in a plain `cargo test`.
//!
//! Every function drives one parser we own the way the server does, then compiles whatever
//! it accepted to SQL for both backends. A panic anywhere (including a failed `assert!` on
//! an invariant below) is a finding. Inputs a parser refuses must be refused with a clean
//! error that says what is wrong; that is checked too.
//!
//! Not an API: hidden from the docs and free to change.

use std::sync::OnceLock;

use http::{Method, Uri};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use sea_orm::{DbBackend, QuerySelect, QueryTrait};

use crate::api::grpc::search;
use crate::api::http::routes::{Lookup, RouteTable};
use crate::api::http::template::PathTemplate;
use crate::api::http::{bind, body};
use crate::domain::fold_case;
use crate::error::Error;
use crate::proto::user::v1 as pb;
use crate::query::dialect::{logto, odata};
use crate::query::{
    Cursor, MAX_LEAVES, PageLimits, PageTokenKey, Query, QueryLimits, SortField, SortValue,
    UserSearch, page_token as token, regex,
};
use crate::store::reads::compile;

/// What a target runs on each input.
pub type Entry = fn(&[u8]);

/// Every target by name, as the directories under `fuzz/seeds/` and `fuzz/regressions/` are
/// named.
pub const TARGETS: &[(&str, Entry)] = &[
    ("zitadel_query", zitadel_query),
    ("zitadel_query_structured", zitadel_query_structured),
    ("odata_filter", odata_filter),
    ("logto_search", logto_search),
    ("transcoder_bind", transcoder_bind),
    ("path_template", path_template),
    ("regex_subset", regex_subset),
    ("page_token", page_token),
];

/// The entry function of a target, by name.
pub fn target(name: &str) -> Option<Entry> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Compiles an accepted search the way `store::reads::users::list_users` does (the count
/// query and the page query), for SQLite and PostgreSQL, and renders both statements with
/// their values inlined (as logs show them).
fn compile_search(
    query: Option<&Query>,
    sort: SortField,
    ascending: bool,
    offset: u64,
    limit: u64,
) {
    if let Some(query) = query {
        assert!(
            query.leaves() <= MAX_LEAVES,
            "a parser let {} leaves through",
            query.leaves()
        );
    }
    for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
        let count = compile::filter_users(query, backend, false).build(backend);
        let page =
            compile::select_users(query, backend, sort, ascending, compile::Matches::total(0))
                .offset(offset)
                .limit(limit)
                .build(backend);
        std::hint::black_box((count.to_string(), page.to_string()));
    }
}

/// ZITADEL's `ListUsersRequest` as it arrives over gRPC: prost bytes.
pub fn zitadel_query(data: &[u8]) {
    if let Ok(request) = pb::ListUsersRequest::decode(data) {
        list_users(&request);
    }
}

/// The gRPC boundary of ListUsers: the dialect parser, then the SQL compiler.
fn list_users(request: &pb::ListUsersRequest) {
    let limits = PageLimits::default();
    match search::parse_list_users(request, limits, QueryLimits::default()) {
        Ok(search) => {
            assert!(search.limit >= 1 && search.limit <= u64::from(limits.max));
            assert!(search.offset <= i64::MAX as u64);
            compile_search(
                search.query.as_ref(),
                search.sort,
                search.ascending,
                search.offset,
                search.limit,
            );
        }
        Err(Error::InvalidArgument { field, reason }) => {
            assert!(!field.is_empty(), "an error names no field: {reason}");
            assert!(!reason.is_empty(), "an error about {field} gives no reason");
        }
        Err(other) => panic!("ListUsers parsing failed with a non-InvalidArgument error: {other}"),
    }
}

/// ZITADEL's `ListUsersRequest` built from the bytes as a program (see [`Generator`]): deep
/// and wide query trees, boundary lengths and unknown enum numbers, which random prost bytes
/// rarely reach. The request also goes through a prost encode/decode round trip.
pub fn zitadel_query_structured(data: &[u8]) {
    let request = Generator::new(data).list_users_request();
    list_users(&request);
    let decoded = pb::ListUsersRequest::decode(request.encode_to_vec().as_slice());
    // Nesting stays within prost's recursion limit, so what we encode decodes again.
    assert_eq!(decoded.as_ref(), Ok(&request));
}

/// HPE GreenLake's OData `filter` string.
pub fn odata_filter(data: &[u8]) {
    let Ok(filter) = std::str::from_utf8(data) else {
        return;
    };
    match odata::parse(filter, QueryLimits::default()) {
        Ok(query) => compile_search(query.as_ref(), SortField::CreationDate, true, 0, 300),
        Err(error) => {
            let end = filter.chars().count().min(odata::MAX_FILTER_CHARS) + 1;
            assert!(
                (1..=end).contains(&error.position),
                "error position {} outside 1..={end}: {error}",
                error.position
            );
            assert!(!error.message.is_empty());
        }
    }
}

/// Logto's search params: a raw query string, decoded as the REST handler decodes it, then
/// paging and search; a `role` key stands for the `/api/roles/{id}/users` route.
pub fn logto_search(data: &[u8]) {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Some(params) = crate::api::rest::query_pairs(Some(raw)) else {
        return;
    };
    let page = match logto::paging(&params, PageLimits::default().max.into()) {
        Ok(page) => page,
        Err(error) => return assert_eq!(error, logto::Error::Pagination),
    };
    let offset = page.offset();
    assert!(offset <= i64::MAX as u64);
    let query = match logto::search(&params, QueryLimits::default()) {
        Ok(query) => query,
        Err(logto::Error::Input(text)) => return assert!(!text.is_empty()),
        Err(logto::Error::Pagination) => panic!("search failed with a pagination error"),
    };
    let role = params.iter().find(|(k, _)| k == "role").map(|(_, v)| v);
    let query = match (role, query) {
        (Some(role), Some(query)) => Some(Query::And(vec![
            Query::Filter(crate::query::Filter::Role(role.clone())),
            query,
        ])),
        (Some(role), None) => Some(Query::Filter(crate::query::Filter::Role(role.clone()))),
        (None, query) => query,
    };
    compile_search(
        query.as_ref(),
        SortField::CreationDate,
        false,
        offset,
        page.page_size,
    );
}

/// The route table over the real descriptor set, built once.
fn route_table() -> &'static RouteTable {
    static TABLE: OnceLock<RouteTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let pool = DescriptorPool::decode(crate::proto::DESCRIPTOR_SET).expect("descriptor set");
        RouteTable::from_pool(&pool).expect("route table")
    })
}

/// The JSON transcoder: `METHOD URI\nBODY` (a request line without the version, then the raw
/// body). The URI is parsed by `http` as the server's is; its path goes through the route
/// lookup, then path variables, query string and body are bound to the input message. A bound
/// ListUsers request is encoded and sent on through the gRPC boundary's parser, as the server
/// dispatches it.
pub fn transcoder_bind(data: &[u8]) {
    let (line, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Some(space) = line.iter().position(|b| *b == b' ') else {
        return;
    };
    let Ok(method) = Method::from_bytes(&line[..space]) else {
        return;
    };
    let Ok(uri) = Uri::try_from(&line[space + 1..]) else {
        return;
    };
    let (route, path) = match route_table().lookup(&method, uri.path()) {
        Lookup::Found(route, path) => (route, path),
        Lookup::BadPath(why) => return assert!(why.starts_with("path variable ")),
        Lookup::MethodNotAllowed(_) | Lookup::NotFound => return,
    };
    // The server's own bound on values, so the walk's refusals are fuzzed too.
    let max_values = body::max_values(crate::limits::DEFAULT_MAX_MESSAGE_BYTES);
    let body = match body::check(body, max_values) {
        Ok(body) => body,
        Err(body::Refused::TooMany(why) | body::Refused::Duplicate(why)) => {
            return assert!(!why.is_empty());
        }
    };
    if route.is_client_streaming() {
        match bind::bind_stream(route, uri.query(), body) {
            Ok(messages) => {
                for message in messages {
                    let bytes = message.encode_to_vec();
                    if let Err(error) = decode_as_service(route.input().full_name(), &bytes) {
                        panic!(
                            "{} bound a stream message that its service cannot decode: {error}",
                            route.rpc.full_name()
                        );
                    }
                }
            }
            Err(error) => assert!(!error.0.is_empty()),
        }
        return;
    }
    match bind::bind(route, path, uri.query(), body) {
        Ok(message) => {
            // The in-process gRPC call encodes the message and the service decodes it (with
            // prost's recursion limit): what binds must decode, or the client gets a 500 for
            // what is a bad request.
            let bytes = message.encode_to_vec();
            if let Err(error) = decode_as_service(route.input().full_name(), &bytes) {
                panic!(
                    "{} bound a request that its service cannot decode: {error}",
                    route.rpc.full_name()
                );
            }
            if route.rpc.full_name() == "userdir.user.v1.UserService.ListUsers" {
                let request = pb::ListUsersRequest::decode(bytes.as_slice())
                    .expect("a bound ListUsersRequest decodes");
                list_users(&request);
            }
        }
        Err(error) => assert!(!error.0.is_empty()),
    }
}

/// Decodes a request as its service does: with the generated prost type (and so prost's
/// recursion limit) for the requests that hold free-form `Struct`s or recursive queries, as a
/// `DynamicMessage` otherwise.
fn decode_as_service(input: &str, bytes: &[u8]) -> Result<(), prost::DecodeError> {
    fn generated<M: Message + Default>(bytes: &[u8]) -> Result<(), prost::DecodeError> {
        M::decode(bytes).map(drop)
    }
    match input.strip_prefix("userdir.user.v1.") {
        Some("ListUsersRequest") => generated::<pb::ListUsersRequest>(bytes),
        Some("CreateUserRequest") => generated::<pb::CreateUserRequest>(bytes),
        Some("PatchUserRequest") => generated::<pb::PatchUserRequest>(bytes),
        Some("ImportUserRecord") => generated::<pb::ImportUserRecord>(bytes),
        Some("VerifyWebAuthNRegistrationRequest") => {
            generated::<pb::VerifyWebAuthNRegistrationRequest>(bytes)
        }
        Some("CreateUserSchemaRequest") => generated::<pb::CreateUserSchemaRequest>(bytes),
        Some("UpdateUserSchemaRequest") => generated::<pb::UpdateUserSchemaRequest>(bytes),
        _ => {
            let pool = route_table().routes()[0].input().parent_pool().clone();
            let descriptor = pool.get_message_by_name(input).expect("an input type");
            DynamicMessage::decode(descriptor, bytes).map(drop)
        }
    }
}

/// A `google.api.http` path template and a request path: `TEMPLATE\nPATH`. Templates come
/// from our own protos, but the parser must still refuse a bad one cleanly rather than panic
/// at startup, and matching and the OpenAPI rendering must hold for any template it accepts.
pub fn path_template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template, path) = text.split_once('\n').unwrap_or((text, "/"));
    let Ok(template) = PathTemplate::parse(template) else {
        return;
    };
    std::hint::black_box(template.openapi_path());
    for variable in &template.variables {
        std::hint::black_box(template.variable_pattern(variable));
    }
    if let Some(Ok(bound)) = template.matches(path) {
        assert_eq!(bound.len(), template.variables.len());
    }
}

/// A regular expression as Logto's `posix` mode takes it (validated as is, and case-folded
/// for a case-insensitive search) and as a `similar_to` pattern.
pub fn regex_subset(data: &[u8]) {
    let Ok(pattern) = std::str::from_utf8(data) else {
        return;
    };
    for result in [
        regex::validate(pattern),
        regex::validate(&fold_case(pattern)),
        regex::similar_to(pattern),
    ] {
        match result {
            // Stored with the dot-matches-newline flag; `validate` has compiled it already.
            Ok(stored) => assert!(stored.starts_with("(?s)")),
            Err(reason) => assert!(!reason.is_empty()),
        }
    }
}

/// Builds a `ListUsersRequest` from bytes: each decision takes the next byte (zero once the
/// bytes run out), so the fuzzer steers the shape of the tree directly.
struct Generator<'a> {
    data: &'a [u8],
    /// Query nodes still allowed, so that wide lists cannot nest into an explosion.
    nodes: usize,
}

/// Text values the parsers treat specially: empty, wildcards, escapes, NUL, case folding that
/// changes the length, quotes.
const WORDS: &[&str] = &[
    "",
    "a",
    "Gigi",
    "gigi@example.com",
    "+41 79 123 45 67",
    "%",
    "_",
    "\\",
    "%_\\",
    "\0",
    "ÉMILE",
    "İ",
    "ß",
    "'",
    "\"",
    "'; --",
    " ",
    "\u{FFFF}",
    "\u{10FFFF}",
];

/// Enum numbers: every defined value and some that are not.
const NUMBERS: &[i32] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, i32::MIN, i32::MAX];

impl<'a> Generator<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, nodes: 400 }
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((first, rest)) => {
                self.data = rest;
                *first
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn number(&mut self) -> i32 {
        NUMBERS[self.below(NUMBERS.len())]
    }

    fn u64(&mut self) -> u64 {
        match self.below(4) {
            0 => 0,
            1 => u64::from(self.byte()),
            2 => [i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX][self.below(3)],
            _ => u64::from_le_bytes(std::array::from_fn(|_| self.byte())),
        }
    }

    fn text(&mut self) -> String {
        match self.below(4) {
            0 => WORDS[self.below(WORDS.len())].to_owned(),
            // Around the length limits (20 and 200 characters), in one- and two-byte chars.
            1 => {
                let length = [19, 20, 21, 199, 200, 201][self.below(6)];
                let c = ['x', 'é', 'Σ'][self.below(3)];
                c.to_string().repeat(length)
            }
            _ => {
                let length = self.below(24);
                let bytes: Vec<u8> = (0..length).map(|_| self.byte()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        }
    }

    fn list_users_request(&mut self) -> pb::ListUsersRequest {
        let query = self.bool().then(|| pb::ListQuery {
            offset: self.u64(),
            limit: match self.below(4) {
                0 => 0,
                1 => 1000,
                2 => 1001,
                _ => u32::from_le_bytes(std::array::from_fn(|_| self.byte())),
            },
            asc: self.bool(),
            page_token: String::new(),
        });
        let sorting_column = self.number();
        let count = self.below(4);
        let queries = (0..count).map(|_| self.search_query(1)).collect();
        pb::ListUsersRequest {
            query,
            sorting_column,
            queries,
        }
    }

    /// One query at `depth` (1 = top level); combinators go a few levels past the limit.
    fn search_query(&mut self, depth: usize) -> pb::SearchQuery {
        use pb::search_query::Query as Q;
        self.nodes = self.nodes.saturating_sub(1);
        let nest = depth <= crate::query::MAX_DEPTH + 2 && self.nodes > 0;
        let choice = self.below(12);
        let query = match choice {
            0 => None,
            1..=3 if nest => {
                let count = match self.below(4) {
                    0 => 0,
                    1 => 1,
                    2 => self.below(8),
                    _ => self.below(120),
                };
                let mut queries = Vec::with_capacity(count);
                while queries.len() < count && self.nodes > 0 {
                    queries.push(self.search_query(depth + 1));
                }
                Some(match choice {
                    1 => Q::OrQuery(pb::OrQuery { queries }),
                    2 => Q::AndQuery(pb::AndQuery { queries }),
                    _ => Q::NotQuery(Box::new(pb::NotQuery {
                        query: (!self.bool()).then(|| Box::new(self.search_query(depth + 1))),
                    })),
                })
            }
            1..=4 => Some(Q::UserIdQuery(pb::UserIdQuery {
                id: self.text(),
                method: self.number(),
            })),
            5 => Some(Q::OrganizationIdQuery(pb::OrganizationIdQuery {
                id: self.text(),
                method: self.number(),
            })),
            6 => Some(Q::UsernameQuery(pb::UsernameQuery {
                username: self.text(),
                method: self.number(),
                is_organization_specific: match self.below(3) {
                    0 => None,
                    n => Some(n == 1),
                },
            })),
            7 => Some(Q::EmailQuery(pb::EmailQuery {
                address: self.text(),
                method: self.number(),
            })),
            8 => Some(Q::PhoneQuery(pb::PhoneQuery {
                number: self.text(),
                method: self.number(),
            })),
            9 => Some(Q::StateQuery(pb::StateQuery {
                state: self.number(),
            })),
            10 => Some(Q::SchemaIdQuery(pb::SchemaIdQuery { id: self.text() })),
            _ => Some(Q::SchemaTypeQuery(pb::SchemaTypeQuery {
                r#type: self.text(),
                method: self.number(),
            })),
        };
        pb::SearchQuery { query }
    }
}

/// A `query.pageToken` as a client may send it: the input opened as a token (anything this
/// directory did not sign is refused naming the field), and the input as the sort key of a
/// token that is issued, opened, resumed (the same position comes back) and compiled into the
/// seek of every sort, for both backends.
pub fn page_token(data: &[u8]) {
    let key = PageTokenKey::new([7; 32]);
    let text = String::from_utf8_lossy(data);
    match key.open(&text) {
        Err(Error::InvalidArgument { field, reason }) => {
            assert_eq!(field, token::FIELD);
            assert!(!reason.is_empty());
        }
        Err(other) => panic!("a token refused as {other:?}"),
        // Only a signed token opens; the fuzzer cannot forge the MAC.
        Ok(opened) => panic!("an unsigned input opened as {opened:?}"),
    }
    let middle = (0..=text.len() / 2)
        .rev()
        .find(|at| text.is_char_boundary(*at))
        .unwrap_or_default();
    let (id, value) = text.split_at(middle);
    let number = data
        .iter()
        .fold(0i64, |n, b| n.rotate_left(8) ^ i64::from(*b));
    for sort in SORTS {
        let value = match sort {
            SortField::Id => SortValue::None,
            SortField::CreationDate | SortField::ChangeDate | SortField::State => {
                SortValue::Int(number)
            }
            SortField::Email | SortField::Phone if data.first() == Some(&0) => SortValue::Null,
            _ => SortValue::Text(value.to_owned()),
        };
        let cursor = Cursor {
            value,
            id: id.to_owned(),
        };
        for ascending in [false, true] {
            let search = UserSearch {
                query: None,
                sort,
                ascending,
                offset: 0,
                limit: 10,
                after: None,
            };
            let issued = key.issue(&search, Some(id), &cursor);
            let resumed = key
                .open(&issued)
                .and_then(|opened| opened.resume(&search, Some(id)))
                .expect("a token this directory issued resumes its own search");
            assert_eq!(resumed, cursor);
            assert!(key.open(&issued).unwrap().resume(&search, None).is_err());
            for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
                for select in compile::select_users_after(
                    None,
                    backend,
                    compile::Matches::total(0),
                    sort,
                    ascending,
                    &cursor,
                ) {
                    std::hint::black_box(select.limit(10).build(backend).to_string());
                }
            }
        }
    }
}

const SORTS: [SortField; 8] = [
    SortField::CreationDate,
    SortField::Id,
    SortField::ChangeDate,
    SortField::Email,
    SortField::Phone,
    SortField::State,
    SortField::SchemaId,
    SortField::SchemaType,
];
