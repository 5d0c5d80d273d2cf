//! `userdir-bench`: latency and throughput of every read shape of the performance issue
//! (GetUser, ListUsers filters and pages, role users, a Logto name search) against a running
//! server.
//!
//! It first picks its values from the server itself (a user, the largest and smallest
//! organization, an email prefix, infix and suffix and a name infix that each match fewer
//! than 1,000 users, ...), so it runs against any seeded directory without hard-coded emails.
//! Then it sends a bounded number of requests per shape, only to a loopback address, and
//! prints one line per shape; `--json` prints the picked values and the results as one JSON
//! document instead (what `scripts/bench_floor.py` reads, so that the Python client and the
//! raw-SQL floor measure the very same requests).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use userdir::domain::fold_case;
use userdir::proto::user::v1::organization_service_client::OrganizationServiceClient;
use userdir::proto::user::v1::role_service_client::RoleServiceClient;
use userdir::proto::user::v1::user_service_client::UserServiceClient;
use userdir::proto::user::v1::{
    self as pb, FieldName, TextQueryMethod as M, search_query::Query as Q,
};

#[derive(Parser)]
#[command(about = "Measure every read shape against a running userdir on loopback")]
struct Args {
    /// Server address; must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// Measured requests per shape.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Unmeasured requests per shape before the measured ones.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Print the picked values and the results as one JSON document.
    #[arg(long)]
    json: bool,
    /// A bearer token with `user.read`, `org.read` and `role.read` (serve the benchmark with
    /// rate limits off or raised).
    #[arg(long, env = "USERDIR_TOKEN", hide_env_values = true)]
    token: String,
}

/// Searches picked from the data should match fewer users than this (the "selective").
const SELECTIVE: u64 = 1_000;
/// The deepest offset measured (the issue's), lowered to a tenth of a smaller directory.
const DEEPEST_OFFSET: u64 = 100_000;

type Intercepted = InterceptedService<Channel, Authorize>;

/// Adds the bearer token to every gRPC request.
#[derive(Clone)]
struct Authorize(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Authorize {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// The server's clients: gRPC for everything but the name search, which only the REST
/// dialects offer (Logto's `search.name`).
#[derive(Clone)]
struct Clients {
    users: UserServiceClient<Intercepted>,
    organizations: OrganizationServiceClient<Intercepted>,
    roles: RoleServiceClient<Intercepted>,
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A search value and how many users it matches.
#[derive(Clone, Debug, Serialize)]
struct Counted {
    value: String,
    matches: u64,
}

/// Everything the shapes need, read from the server before measuring.
#[derive(Debug, Serialize)]
struct Picked {
    users: u64,
    user_id: String,
    organization_large: Counted,
    organization_small: Counted,
    /// An email as stored, and case-folded (what `email_lower` holds).
    email: String,
    email_folded: String,
    /// One of the same user's usernames, and case-folded.
    username: String,
    username_folded: String,
    /// Case-folded search values matching fewer than `SELECTIVE` users (as many as possible).
    email_prefix: Counted,
    email_infix: Counted,
    email_suffix: Counted,
    name_infix: Option<Counted>,
    /// The first characters of a phone number, for the NOT branch of the nested query.
    phone_prefix: String,
    offset: u64,
    role: Option<Counted>,
}

fn query(query: Q) -> pb::SearchQuery {
    pb::SearchQuery { query: Some(query) }
}

fn email(value: &str, method: M) -> pb::SearchQuery {
    query(Q::EmailQuery(pb::EmailQuery {
        address: value.into(),
        method: method.into(),
    }))
}

fn list(offset: u64, limit: u32, queries: Vec<pb::SearchQuery>) -> pb::ListUsersRequest {
    pb::ListUsersRequest {
        query: Some(pb::ListQuery {
            offset,
            limit,
            asc: false,
            ..Default::default()
        }),
        sorting_column: FieldName::Unspecified.into(),
        queries,
    }
}

/// A Logto name search: the value found anywhere in the name, ignoring case (Logto's default).
fn logto_name_path(value: &str, page_size: u32) -> String {
    let mut pattern = String::from("%");
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    let encoded =
        percent_encoding::utf8_percent_encode(&pattern, percent_encoding::NON_ALPHANUMERIC);
    format!("/api/users?page_size={page_size}&search.name={encoded}")
}

/// One request of a shape.
#[derive(Clone)]
enum Call {
    List(pb::ListUsersRequest),
    Get(pb::GetUserRequest),
    RoleUsers(pb::ListRoleUsersRequest),
    /// A Logto REST path (and query), answered with a JSON array.
    Logto(String),
}

impl Clients {
    async fn call(&mut self, call: &Call) -> anyhow::Result<()> {
        match call {
            Call::List(request) => drop(self.users.list_users(request.clone()).await?),
            Call::Get(request) => drop(self.users.get_user(request.clone()).await?),
            Call::RoleUsers(request) => drop(self.roles.list_role_users(request.clone()).await?),
            Call::Logto(path) => {
                self.logto(path).await?;
            }
        }
        Ok(())
    }

    /// The matches of a ListUsers search (one user fetched, the total read).
    async fn total(&mut self, queries: Vec<pb::SearchQuery>) -> anyhow::Result<u64> {
        let response = self
            .users
            .list_users(list(0, 1, queries))
            .await?
            .into_inner();
        Ok(response.details.map_or(0, |d| d.total_result))
    }

    /// A Logto GET: its JSON body and its `Total-Number` header.
    async fn logto(&self, path: &str) -> anyhow::Result<(serde_json::Value, u64)> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?;
        let total = response
            .headers()
            .get("total-number")
            .and_then(|value| value.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        Ok((response.json().await?, total))
    }
}

/// The longest-matching (first) candidate that matches fewer than `SELECTIVE` users, by
/// bisection: candidates go from broad to narrow, each one's matches a subset of the one
/// before, so the counts only fall.
async fn first_selective<F, Fut>(
    candidates: &[String],
    mut count: F,
) -> anyhow::Result<Option<Counted>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let Some(last) = candidates.last() else {
        return Ok(None);
    };
    let narrowest = count(last.clone()).await?;
    if narrowest >= SELECTIVE {
        return Ok(None);
    }
    let (mut low, mut high) = (0, candidates.len() - 1);
    let mut best = Counted {
        value: last.clone(),
        matches: narrowest,
    };
    while low < high {
        let middle = (low + high) / 2;
        let matches = count(candidates[middle].clone()).await?;
        if matches < SELECTIVE {
            best = Counted {
                value: candidates[middle].clone(),
                matches,
            };
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    Ok(Some(best))
}

/// Samples tried per search value at most, and the matches that end the search early ("a few
/// hundred"): every try counts, and an unindexed count scans the whole directory.
const SAMPLES: usize = 20;
const ENOUGH: u64 = 100;

/// Tries `first_selective` on the candidates of each sample in turn and keeps the one that
/// matches most users, stopping at the first with at least `ENOUGH`.
async fn most_selective<F, Fut>(
    samples: impl IntoIterator<Item = Vec<String>>,
    mut count: F,
) -> anyhow::Result<Option<Counted>>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let mut best: Option<Counted> = None;
    for candidates in samples.into_iter().take(SAMPLES) {
        if let Some(found) = first_selective(&candidates, &mut count).await?
            && best
                .as_ref()
                .is_none_or(|best| found.matches > best.matches)
        {
            best = Some(found);
        }
        if best.as_ref().is_some_and(|best| best.matches >= ENOUGH) {
            break;
        }
    }
    Ok(best)
}

fn prefixes(text: &str, shortest: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    (shortest.min(chars.len())..=chars.len())
        .filter(|&n| n > 0)
        .map(|n| chars[..n].iter().collect())
        .collect()
}

/// Suffixes of an email, growing leftwards from the `@`.
fn suffixes(email: &str) -> Vec<String> {
    let chars: Vec<char> = email.chars().collect();
    let at = chars.iter().position(|&c| c == '@').unwrap_or(0);
    (0..=at)
        .rev()
        .map(|i| chars[i..].iter().collect())
        .collect()
}

async fn pick(clients: &mut Clients) -> anyhow::Result<Picked> {
    let sample = clients
        .users
        .list_users(list(0, 200, vec![]))
        .await?
        .into_inner();
    let users = sample.details.map_or(0, |d| d.total_result);
    anyhow::ensure!(
        !sample.result.is_empty(),
        "the directory has no users: seed it first"
    );
    let middle = &sample.result[sample.result.len() / 2];
    let emails: Vec<String> = sample
        .result
        .iter()
        .filter_map(|user| user.contact.as_ref()?.email.as_ref())
        .map(|email| email.address.clone())
        .filter(|email| email.is_ascii() && email.contains('@'))
        .collect();
    anyhow::ensure!(!emails.is_empty(), "no user of the first page has an email");
    let (email_user, username) = sample
        .result
        .iter()
        .find_map(|user| {
            let email = user.contact.as_ref()?.email.as_ref()?.address.clone();
            let username = user.authenticators.as_ref()?.usernames.first()?;
            // ASCII, so that the upper-cased value folds back to the stored one.
            (email.is_ascii() && username.username.is_ascii())
                .then(|| (email, username.username.clone()))
        })
        .ok_or_else(|| anyhow::anyhow!("no user of the first page has an email and a username"))?;
    let phone_prefix = sample
        .result
        .iter()
        .find_map(|user| user.contact.as_ref()?.phone.as_ref())
        .map(|phone| phone.number.chars().take(4).collect())
        .unwrap_or_else(|| "+41".into());

    let mut organizations = Vec::new();
    let listed = clients
        .organizations
        .list_organizations(pb::ListOrganizationsRequest {
            query: Some(pb::ListQuery {
                offset: 0,
                limit: 1000,
                asc: false,
                ..Default::default()
            }),
            name_query: None,
        })
        .await?
        .into_inner();
    for organization in listed.result {
        let matches = clients
            .total(vec![query(Q::OrganizationIdQuery(
                pb::OrganizationIdQuery {
                    id: organization.organization_id.clone(),
                    method: M::Equals.into(),
                },
            ))])
            .await?;
        if matches > 0 {
            organizations.push(Counted {
                value: organization.organization_id,
                matches,
            });
        }
    }
    organizations.sort_by_key(|organization| organization.matches);
    let organization_small = organizations
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no organization has users"))?;
    let organization_large = organizations.last().cloned().expect("not empty");

    let folded: Vec<String> = emails.iter().map(|email| fold_case(email)).collect();
    let counter = |method: M| {
        let clients = clients.clone();
        move |value: String| {
            let mut clients = clients.clone();
            async move { clients.total(vec![email(&value, method)]).await }
        }
    };
    let email_prefix = most_selective(
        folded.iter().map(|email| prefixes(email, 1)),
        counter(M::StartsWithIgnoreCase),
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("no email prefix matches fewer than {SELECTIVE} users"))?;
    // Infixes start after the first dot of the local part (the family name in the seeded
    // population) and grow to the end of the address.
    let email_infix = most_selective(
        folded.iter().map(|email| {
            let tail = email
                .split_once('.')
                .map_or(email.as_str(), |(_, tail)| tail);
            prefixes(tail, 2)
        }),
        counter(M::ContainsIgnoreCase),
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("no email infix matches fewer than {SELECTIVE} users"))?;
    let email_suffix = most_selective(
        folded.iter().map(|email| suffixes(email)),
        counter(M::EndsWithIgnoreCase),
    )
    .await?
    .ok_or_else(|| anyhow::anyhow!("no email suffix matches fewer than {SELECTIVE} users"))?;

    let (page, _) = clients.logto("/api/users?page_size=100").await?;
    let names: Vec<Vec<String>> = page
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|user| user.get("name")?.as_str())
        .map(|name| prefixes(&fold_case(name), 2))
        .collect();
    let name_infix = {
        let clients = clients.clone();
        most_selective(names, move |value: String| {
            let clients = clients.clone();
            async move { Ok(clients.logto(&logto_name_path(&value, 1)).await?.1) }
        })
        .await?
    };

    let mut role: Option<Counted> = None;
    let roles = clients
        .roles
        .list_roles(pb::ListRolesRequest {
            query: Some(pb::ListQuery {
                offset: 0,
                limit: 1000,
                asc: false,
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    for listed in roles.result {
        let matches = clients
            .roles
            .list_role_users(role_users(&listed.role_id, 1))
            .await?
            .into_inner()
            .details
            .map_or(0, |d| d.total_result);
        if matches > 0 && role.as_ref().is_none_or(|role| matches > role.matches) {
            role = Some(Counted {
                value: listed.role_id,
                matches,
            });
        }
    }

    Ok(Picked {
        users,
        user_id: middle.user_id.clone(),
        organization_large,
        organization_small,
        email_folded: fold_case(&email_user),
        email: email_user,
        username_folded: fold_case(&username),
        username,
        email_prefix,
        email_infix,
        email_suffix,
        name_infix,
        phone_prefix,
        offset: (users / 10).min(DEEPEST_OFFSET),
        role,
    })
}

fn role_users(role_id: &str, limit: u32) -> pb::ListRoleUsersRequest {
    pb::ListRoleUsersRequest {
        role_id: role_id.into(),
        query: Some(pb::ListQuery {
            offset: 0,
            limit,
            asc: false,
            ..Default::default()
        }),
        sorting_column: FieldName::Unspecified.into(),
        queries: vec![],
    }
}

/// A shape of the table: a stable key (shared with `scripts/bench_floor.py`), what it
/// is, and its request.
struct Shape {
    key: &'static str,
    title: String,
    call: Call,
}

fn shapes(p: &Picked) -> Vec<Shape> {
    let shape = |key, title: String, call| Shape { key, title, call };
    let first = |queries| Call::List(list(0, 100, queries));
    let organization = |id: &str| {
        vec![query(Q::OrganizationIdQuery(pb::OrganizationIdQuery {
            id: id.into(),
            method: M::Equals.into(),
        }))]
    };
    let locked = || {
        query(Q::StateQuery(pb::StateQuery {
            state: pb::State::UserStateLocked.into(),
        }))
    };
    let share = |matches: u64| 100.0 * matches as f64 / p.users.max(1) as f64;
    let nested = vec![query(Q::OrQuery(pb::OrQuery {
        queries: vec![
            locked(),
            query(Q::AndQuery(pb::AndQuery {
                queries: vec![
                    email(&p.email_prefix.value, M::StartsWithIgnoreCase),
                    query(Q::NotQuery(Box::new(pb::NotQuery {
                        query: Some(Box::new(query(Q::PhoneQuery(pb::PhoneQuery {
                            number: p.phone_prefix.clone(),
                            method: M::StartsWith.into(),
                        })))),
                    }))),
                ],
            })),
        ],
    }))];
    let mut shapes = vec![
        shape(
            "get_user",
            "GetUser".into(),
            Call::Get(pb::GetUserRequest {
                user_id: p.user_id.clone(),
            }),
        ),
        shape(
            "first_page",
            "unfiltered first page + total".into(),
            first(vec![]),
        ),
        shape(
            "org_large",
            format!(
                "organization ({:.0} %), first page",
                share(p.organization_large.matches)
            ),
            first(organization(&p.organization_large.value)),
        ),
        shape(
            "org_small",
            format!(
                "organization ({:.0} %), first page",
                share(p.organization_small.matches)
            ),
            first(organization(&p.organization_small.value)),
        ),
        shape("state_locked", "state locked".into(), first(vec![locked()])),
        shape(
            "email_eq",
            "email equals".into(),
            first(vec![email(&p.email, M::Equals)]),
        ),
        shape(
            "email_eq_ic",
            "email equals, ignore case".into(),
            first(vec![email(&p.email.to_uppercase(), M::EqualsIgnoreCase)]),
        ),
        shape(
            "email_starts_ic",
            format!("email starts with, ic ({})", p.email_prefix.matches),
            first(vec![email(&p.email_prefix.value, M::StartsWithIgnoreCase)]),
        ),
        shape(
            "email_contains_ic",
            format!("email contains, ic ({})", p.email_infix.matches),
            first(vec![email(&p.email_infix.value, M::ContainsIgnoreCase)]),
        ),
        shape(
            "email_ends_ic",
            format!("email ends with, ic ({})", p.email_suffix.matches),
            first(vec![email(&p.email_suffix.value, M::EndsWithIgnoreCase)]),
        ),
        shape(
            "username_eq_ic",
            "username equals, ignore case".into(),
            first(vec![query(Q::UsernameQuery(pb::UsernameQuery {
                username: p.username.to_uppercase(),
                method: M::EqualsIgnoreCase.into(),
                is_organization_specific: None,
            }))]),
        ),
    ];
    if let Some(name) = &p.name_infix {
        shapes.push(shape(
            "name_contains_ic",
            format!("name contains, ic, Logto ({})", name.matches),
            Call::Logto(logto_name_path(&name.value, 100)),
        ));
    }
    shapes.extend([
        shape(
            "offset_deep",
            format!("offset {}", p.offset),
            Call::List(list(p.offset, 100, vec![])),
        ),
        shape(
            "sort_email",
            "sort by email, first page".into(),
            Call::List(pb::ListUsersRequest {
                query: Some(pb::ListQuery {
                    offset: 0,
                    limit: 100,
                    asc: true,
                    ..Default::default()
                }),
                sorting_column: FieldName::Email.into(),
                queries: vec![],
            }),
        ),
        shape("nested", "nested or/and/not".into(), first(nested)),
        shape(
            "limit_1000",
            "first page, limit 1000".into(),
            Call::List(list(0, 1000, vec![])),
        ),
    ]);
    if let Some(role) = &p.role {
        shapes.push(shape(
            "role_users",
            format!("role users ({})", role.matches),
            Call::RoleUsers(role_users(&role.value, 100)),
        ));
    }
    shapes
}

/// The latencies of one shape.
#[derive(Serialize)]
struct Measured {
    key: &'static str,
    title: String,
    requests: usize,
    errors: usize,
    per_second: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

async fn measure(clients: &Clients, args: &Args, shape: Shape) -> anyhow::Result<Measured> {
    let mut warm = clients.clone();
    for _ in 0..args.warmup {
        warm.call(&shape.call).await?;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    let concurrency = args.concurrency.max(1);
    for worker in 0..concurrency {
        let mut clients = clients.clone();
        let call = shape.call.clone();
        let count = args.requests / concurrency + usize::from(worker < args.requests % concurrency);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            let mut errors = 0usize;
            for _ in 0..count {
                let sent = Instant::now();
                if clients.call(&call).await.is_err() {
                    errors += 1;
                }
                latencies.push(sent.elapsed());
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut l, e) = task.await?;
        latencies.append(&mut l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| ms(*d))
    };
    Ok(Measured {
        key: shape.key,
        title: shape.title,
        requests: latencies.len(),
        errors,
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: at(0.50),
        p95_ms: at(0.95),
        p99_ms: at(0.99),
        max_ms: latencies.last().map_or(0.0, |d| ms(*d)),
    })
}

async fn connect(args: &Args) -> anyhow::Result<Clients> {
    let channel = Channel::from_shared(format!("http://{}", args.target))?
        .connect()
        .await?;
    let authorization = Authorize(
        format!("Bearer {}", args.token)
            .parse()
            .map_err(|_| anyhow::anyhow!("--token is not a valid header value"))?,
    );
    Ok(Clients {
        users: UserServiceClient::with_interceptor(channel.clone(), authorization.clone()),
        organizations: OrganizationServiceClient::with_interceptor(
            channel.clone(),
            authorization.clone(),
        ),
        roles: RoleServiceClient::with_interceptor(channel, authorization),
        // Only ever loopback: no proxy from the environment.
        http: reqwest::Client::builder().no_proxy().build()?,
        base: format!("http://{}", args.target),
        token: args.token.clone(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.target.ip().is_loopback(),
        "--target must be a loopback address"
    );
    let mut clients = connect(&args).await?;
    let picked = pick(&mut clients).await?;
    if !args.json {
        println!("picked from the server: {picked:?}");
        println!(
            "{:<40} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "shape", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
    }
    let mut results = Vec::new();
    for shape in shapes(&picked) {
        let m = measure(&clients, &args, shape).await?;
        if !args.json {
            println!(
                "{:<40} {:>8} {:>6} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                m.title, m.requests, m.errors, m.per_second, m.p50_ms, m.p95_ms, m.p99_ms, m.max_ms,
            );
        }
        results.push(m);
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "picked": picked, "results": results })
        );
    }
    Ok(())
}
