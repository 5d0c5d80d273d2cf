//! `userdir-bench`: ListUsers/GetUser latency and throughput against a running server.
//!
//! Sends a bounded number of requests per scenario, only to a loopback address, and prints one
//! line per scenario: requests, errors, throughput and latency percentiles.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use tonic::transport::Channel;
use userdir::proto::user::v1::user_service_client::UserServiceClient;
use userdir::proto::user::v1::{
    self as pb, FieldName, TextQueryMethod as M, search_query::Query as Q,
};

#[derive(Parser)]
#[command(about = "Measure ListUsers and GetUser against a running userdir on loopback")]
struct Args {
    /// Server address; must be a loopback address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// Requests per scenario.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// A bearer token with `user.read` (serve the benchmark with rate limits off or raised).
    #[arg(long, env = "USERDIR_TOKEN", hide_env_values = true)]
    token: String,
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

fn scenarios() -> Vec<(&'static str, pb::ListUsersRequest)> {
    let page = |limit, asc, column: FieldName, queries| pb::ListUsersRequest {
        query: Some(pb::ListQuery {
            offset: 0,
            limit,
            asc,
            ..Default::default()
        }),
        sorting_column: column.into(),
        queries,
    };
    let deep_page = pb::ListUsersRequest {
        query: Some(pb::ListQuery {
            offset: 5_000,
            limit: 100,
            asc: false,
            ..Default::default()
        }),
        ..Default::default()
    };
    let nested = vec![query(Q::OrQuery(pb::OrQuery {
        queries: vec![
            query(Q::StateQuery(pb::StateQuery {
                state: pb::State::UserStateLocked.into(),
            })),
            query(Q::AndQuery(pb::AndQuery {
                queries: vec![
                    email("zoe", M::StartsWithIgnoreCase),
                    query(Q::NotQuery(Box::new(pb::NotQuery {
                        query: Some(Box::new(query(Q::PhoneQuery(pb::PhoneQuery {
                            number: "+417".into(),
                            method: M::StartsWith.into(),
                        })))),
                    }))),
                ],
            })),
        ],
    }))];
    vec![
        (
            "first page, default order, limit 100",
            page(100, false, FieldName::Unspecified, vec![]),
        ),
        ("offset 5000, limit 100", deep_page),
        (
            "sort by email asc, limit 100",
            page(100, true, FieldName::Email, vec![]),
        ),
        (
            "email equals (exact)",
            page(
                100,
                false,
                FieldName::Unspecified,
                vec![email("ada.lovelace7@acme.example", M::Equals)],
            ),
        ),
        (
            "email starts with, ignore case",
            page(
                100,
                false,
                FieldName::Unspecified,
                vec![email("ZOE.", M::StartsWithIgnoreCase)],
            ),
        ),
        (
            "email contains, ignore case",
            page(
                100,
                false,
                FieldName::Unspecified,
                vec![email("SMITH", M::ContainsIgnoreCase)],
            ),
        ),
        (
            "username equals, ignore case",
            page(
                100,
                false,
                FieldName::Unspecified,
                vec![query(Q::UsernameQuery(pb::UsernameQuery {
                    username: "ADA.LOVELACE.7".into(),
                    method: M::EqualsIgnoreCase.into(),
                    is_organization_specific: None,
                }))],
            ),
        ),
        (
            "nested or/and/not",
            page(100, false, FieldName::Unspecified, nested),
        ),
        (
            "first page, limit 1000",
            page(1000, false, FieldName::Unspecified, vec![]),
        ),
    ]
}

/// Pages reached by `query.pageToken` after the first `skip` users of a request: what a client
/// walking the list pays per page, to hold beside the first page and the offset page.
fn token_scenarios() -> Vec<(&'static str, pb::ListUsersRequest, u32)> {
    let page = |asc, column: FieldName| pb::ListUsersRequest {
        query: Some(pb::ListQuery {
            limit: 100,
            asc,
            ..Default::default()
        }),
        sorting_column: column.into(),
        queries: vec![],
    };
    vec![
        (
            "token after 5000, default order",
            page(false, FieldName::Unspecified),
            5_000,
        ),
        (
            "token after 5000, sort by email asc",
            page(true, FieldName::Email),
            5_000,
        ),
    ]
}

/// `request` with the token of the page after its first `skip` users (read by offset once,
/// before measuring).
async fn resumed<S>(
    client: &mut UserServiceClient<S>,
    mut request: pb::ListUsersRequest,
    skip: u32,
) -> anyhow::Result<pb::ListUsersRequest>
where
    S: tonic::client::GrpcService<tonic::body::Body> + Clone,
    S::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <S::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    S::Error: Into<tonic::codegen::StdError>,
{
    let mut skipping = request.clone();
    let page = skipping.query.get_or_insert_with(Default::default);
    page.offset = u64::from(skip.saturating_sub(page.limit));
    let answer = client.list_users(skipping).await?.into_inner();
    let token = answer.details.unwrap_or_default().next_page_token;
    anyhow::ensure!(
        !token.is_empty(),
        "the directory has no page after {skip} users; seed more"
    );
    request
        .query
        .get_or_insert_with(Default::default)
        .page_token = token;
    Ok(request)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.target.ip().is_loopback(),
        "--target must be a loopback address"
    );
    let channel = Channel::from_shared(format!("http://{}", args.target))?
        .connect()
        .await?;
    let authorization: tonic::metadata::MetadataValue<_> = format!("Bearer {}", args.token)
        .parse()
        .map_err(|_| anyhow::anyhow!("--token is not a valid header value"))?;
    let client =
        UserServiceClient::with_interceptor(channel, move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
            Ok(request)
        });

    println!(
        "{:<40} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "scenario", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    let mut scenarios = scenarios();
    for (name, request, skip) in token_scenarios() {
        scenarios.push((name, resumed(&mut client.clone(), request, skip).await?));
    }
    for (name, request) in scenarios {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..args.concurrency {
            let mut client = client.clone();
            let request = request.clone();
            let count = args.requests / args.concurrency
                + usize::from(worker < args.requests % args.concurrency);
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(count);
                let mut errors = 0usize;
                for _ in 0..count {
                    let sent = Instant::now();
                    if client.list_users(request.clone()).await.is_err() {
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
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:<40} {:>8} {:>6} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name,
            latencies.len(),
            errors,
            latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(at(0.50)),
            ms(at(0.95)),
            ms(at(0.99)),
            ms(*latencies.last().unwrap_or(&Duration::ZERO)),
        );
    }
    Ok(())
}
