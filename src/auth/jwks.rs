//! The OIDC issuer's public keys (its JWKS): parsing, loading from a URL or a file, and a cache
//! that refreshes them without letting bad tokens hammer the issuer.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// Where the issuer's public keys come from.
#[derive(Clone, Debug)]
pub enum JwksSource {
    /// The issuer's `jwks_uri`, fetched over HTTP(S).
    Url(String),
    /// A JWKS document on disk, for air-gapped setups and tests; re-read like a URL is refetched.
    File(PathBuf),
}

impl fmt::Display for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksSource::Url(url) => f.write_str(url),
            JwksSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How long a JWKS fetch may take in all; the verifier waits on it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS is a few kilobytes; anything much larger is a misconfiguration or an attack.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// The floor between fetches that a token can cause (unknown `kid`) and between retries after a
/// failure, so that a stream of bad tokens or an issuer outage can't make us hammer the issuer.
pub(crate) const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Base64url as JWKs use it: unpadded in the spec, but some issuers pad anyway.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The signature algorithms we accept. Only asymmetric ones: with HS* the "secret" would be
/// whatever the token names, which is how the public key gets used as an HMAC key; `none` is no
/// signature at all.
pub(crate) fn allowed_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The kind of public key, precise enough to tell which algorithms it can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyKind {
    /// Whether a signature made with `alg` can come from a key of this kind.
    pub(crate) fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::P256 => alg == ES256,
            KeyKind::P384 => alg == ES384,
            KeyKind::Ed25519 => alg == EdDSA,
        }
    }
}

/// One usable verification key from the JWKS.
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    /// The JWK's own `alg`, when it pins one.
    pub(crate) alg: Option<Algorithm>,
    pub(crate) kind: KeyKind,
    pub(crate) decoding: DecodingKey,
}

impl Key {
    /// A key that names its algorithm verifies only that one; otherwise its type decides.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        match self.alg {
            Some(pinned) => pinned == alg,
            None => self.kind.fits(alg),
        }
    }
}

/// The outcome of looking a token's key up.
pub(crate) enum Lookup {
    Found(Arc<Key>),
    /// No key has that `kid` (or, without a `kid`, none fits): the issuer may have rotated.
    Unknown,
    /// The key exists but is of another type or pinned to another algorithm.
    Mismatch,
    /// No `kid` and several keys fit: guessing would be trying keys until one works.
    Ambiguous,
}

#[derive(Default)]
pub(crate) struct KeySet {
    keys: Vec<Arc<Key>>,
}

impl KeySet {
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn find(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        match kid {
            Some(kid) => self.find_by_kid(kid, alg),
            None => self.find_without_kid(alg),
        }
    }

    fn find_by_kid(&self, kid: &str, alg: Algorithm) -> Lookup {
        let mut named = self
            .keys
            .iter()
            .filter(|key| key.kid.as_deref() == Some(kid));
        let Some(first) = named.next() else {
            return Lookup::Unknown;
        };
        // A kid shared by keys of different types (seen during migrations): take the one that fits.
        std::iter::once(first)
            .chain(named)
            .find(|key| key.fits(alg))
            .map_or(Lookup::Mismatch, |key| Lookup::Found(key.clone()))
    }

    fn find_without_kid(&self, alg: Algorithm) -> Lookup {
        let mut fitting = self.keys.iter().filter(|key| key.fits(alg));
        match (fitting.next(), fitting.next()) {
            (Some(key), None) => Lookup::Found(key.clone()),
            (Some(_), Some(_)) => Lookup::Ambiguous,
            // The only key there is, of the wrong type: say so rather than "unknown".
            (None, _) if self.keys.len() == 1 => Lookup::Mismatch,
            (None, _) => Lookup::Unknown,
        }
    }

    /// Parses a JWKS document, keeping the keys we can verify with and skipping the rest
    /// (encryption keys, other curves, symmetric keys), so one odd key doesn't lose us all.
    pub(crate) fn parse(document: &[u8]) -> anyhow::Result<KeySet> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document =
            serde_json::from_slice(document).context("not a JWKS document (no `keys` array)")?;
        let keys = document
            .keys
            .iter()
            .filter_map(|value| match parse_key(value) {
                Ok(key) => Some(Arc::new(key)),
                Err(reason) => {
                    tracing::debug!(kid = ?value.get("kid"), %reason, "skipping JWKS key");
                    None
                }
            })
            .collect();
        Ok(KeySet { keys })
    }
}

/// The JWK members we read; the rest (x5c, key_ops details, ...) don't change the verification.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(rename = "use")]
    usage: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    kid: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn parse_key(value: &serde_json::Value) -> anyhow::Result<Key> {
    let raw = RawJwk::deserialize(value).context("malformed JWK")?;
    if raw.usage.as_deref().is_some_and(|usage| usage != "sig") {
        bail!("not a signature key");
    }
    if raw
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        bail!("key_ops excludes verify");
    }
    let (kind, decoding) = decoding_key(&raw)?;
    let alg = match raw.alg.as_deref() {
        None => None,
        Some(name) => {
            let alg = allowed_algorithm(name).ok_or_else(|| anyhow!("algorithm not accepted"))?;
            // An RSA key pinned to ES256 is broken; it could never verify anything honestly.
            if !kind.fits(alg) {
                bail!("alg does not fit the key type");
            }
            Some(alg)
        }
    };
    Ok(Key {
        kid: raw.kid,
        alg,
        kind,
        decoding,
    })
}

/// Builds the key from its components, checking sizes here because the crypto backend may
/// assume them (a short Ed25519 key would make it slice out of bounds).
fn decoding_key(raw: &RawJwk) -> anyhow::Result<(KeyKind, DecodingKey)> {
    match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => rsa_key(raw),
        ("EC", Some("P-256")) => ec_key(raw, KeyKind::P256, 32),
        ("EC", Some("P-384")) => ec_key(raw, KeyKind::P384, 48),
        ("OKP", Some("Ed25519")) => ed25519_key(raw),
        _ => bail!("unsupported key type or curve"),
    }
}

fn component(value: Option<&String>, name: &str) -> anyhow::Result<Vec<u8>> {
    let value = value.ok_or_else(|| anyhow!("missing `{name}`"))?;
    B64URL
        .decode(value)
        .map_err(|_| anyhow!("`{name}` is not base64url"))
}

fn rsa_key(raw: &RawJwk) -> anyhow::Result<(KeyKind, DecodingKey)> {
    let n = component(raw.n.as_ref(), "n")?;
    let e = component(raw.e.as_ref(), "e")?;
    let significant = |bytes: &[u8]| bytes.iter().skip_while(|b| **b == 0).count();
    // 2048 bits is the floor anyone still issues; the backend caps at 4096.
    if !(256..=512).contains(&significant(&n)) {
        bail!("RSA modulus is not 2048 to 4096 bits");
    }
    if !(1..=5).contains(&significant(&e)) {
        bail!("RSA exponent out of range");
    }
    Ok((KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e)))
}

fn ec_key(raw: &RawJwk, kind: KeyKind, size: usize) -> anyhow::Result<(KeyKind, DecodingKey)> {
    let x = component(raw.x.as_ref(), "x")?;
    let y = component(raw.y.as_ref(), "y")?;
    if x.len() != size || y.len() != size {
        bail!("EC coordinates of the wrong size");
    }
    // The backend reads an uncompressed SEC1 point; it rejects points not on the curve.
    let point = [&[0x04][..], &x, &y].concat();
    Ok((kind, DecodingKey::from_ec_der(&point)))
}

fn ed25519_key(raw: &RawJwk) -> anyhow::Result<(KeyKind, DecodingKey)> {
    let x = component(raw.x.as_ref(), "x")?;
    let bytes: [u8; 32] = x
        .as_slice()
        .try_into()
        .map_err(|_| anyhow!("Ed25519 key is not 32 bytes"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| anyhow!("not an Ed25519 point"))?;
    Ok((KeyKind::Ed25519, DecodingKey::from_ed_der(&bytes)))
}

/// What made us want fresh keys; each has its own throttle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// The keys are older than the refresh interval (or were never loaded).
    Stale,
    /// A token names a `kid` we don't have.
    UnknownKid,
}

struct State {
    keys: Arc<KeySet>,
    /// Last successful load.
    loaded_at: Option<Instant>,
    /// Last failed attempt, so that an outage is retried at most every MIN_REFETCH_INTERVAL.
    failed_at: Option<Instant>,
    /// Last fetch caused by an unknown kid.
    kid_fetch_at: Option<Instant>,
}

fn older_than(at: Option<Instant>, age: Duration) -> bool {
    at.is_none_or(|at| at.elapsed() >= age)
}

impl State {
    fn due(&self, trigger: Trigger, refresh_interval: Duration) -> bool {
        let retry_allowed = older_than(self.failed_at, MIN_REFETCH_INTERVAL);
        retry_allowed
            && match trigger {
                Trigger::Stale => older_than(self.loaded_at, refresh_interval),
                Trigger::UnknownKid => older_than(self.kid_fetch_at, MIN_REFETCH_INTERVAL),
            }
    }
}

/// The issuer's keys, refreshed on use.
pub(crate) struct JwksCache {
    source: JwksSource,
    refresh_interval: Duration,
    client: Option<reqwest::Client>,
    state: RwLock<State>,
    /// Held for the duration of a fetch: concurrent refreshes wait for one fetch instead of
    /// each asking the issuer.
    in_flight: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub(crate) fn new(source: JwksSource, refresh_interval: Duration) -> anyhow::Result<Self> {
        let client = match &source {
            JwksSource::Url(url) => Some(http_client(url)?),
            JwksSource::File(_) => None,
        };
        Ok(JwksCache {
            source,
            refresh_interval,
            client,
            state: RwLock::new(State {
                keys: Arc::default(),
                loaded_at: None,
                failed_at: None,
                kid_fetch_at: None,
            }),
            in_flight: tokio::sync::Mutex::new(()),
        })
    }

    /// The first load. Its failure is not recorded as one: the first token retries at once.
    pub(crate) async fn load_initial(&self) -> anyhow::Result<()> {
        let keys = self.load().await?;
        self.store(keys);
        Ok(())
    }

    /// The current keys, refreshed first if they are stale.
    pub(crate) async fn keys(&self) -> Arc<KeySet> {
        if self.read().due(Trigger::Stale, self.refresh_interval) {
            self.refresh(Trigger::Stale).await;
        }
        self.read().keys.clone()
    }

    /// The keys after a refetch for an unknown kid, if one is allowed now (else the current).
    pub(crate) async fn keys_after_unknown_kid(&self) -> Arc<KeySet> {
        self.refresh(Trigger::UnknownKid).await;
        self.read().keys.clone()
    }

    /// Single-flight refresh: whoever gets the lock fetches; whoever waited for it finds the
    /// refresh no longer due (the keys are fresh, or the attempt failed moments ago) and uses
    /// that outcome.
    async fn refresh(&self, trigger: Trigger) {
        let _flight = self.in_flight.lock().await;
        if !self.read().due(trigger, self.refresh_interval) {
            return;
        }
        if trigger == Trigger::UnknownKid {
            self.write().kid_fetch_at = Some(Instant::now());
        }
        match self.load().await {
            Ok(keys) => self.store(keys),
            Err(error) => {
                tracing::warn!(
                    source = %self.source,
                    error = format!("{error:#}"),
                    "refreshing the OIDC issuer's keys failed; keeping the previous ones"
                );
                self.write().failed_at = Some(Instant::now());
            }
        }
    }

    fn store(&self, keys: KeySet) {
        let mut state = self.write();
        state.keys = Arc::new(keys);
        state.loaded_at = Some(Instant::now());
        state.failed_at = None;
    }

    /// Reads and parses the JWKS; a set without one usable key counts as a failure, so that an
    /// issuer's glitch doesn't replace good keys with none.
    async fn load(&self) -> anyhow::Result<KeySet> {
        let document = match (&self.source, &self.client) {
            (JwksSource::Url(url), Some(client)) => fetch(client, url).await?,
            (JwksSource::File(path), _) => read_file(path.clone()).await?,
            (JwksSource::Url(_), None) => bail!("no HTTP client"),
        };
        let keys = KeySet::parse(&document)?;
        if keys.is_empty() {
            bail!("the JWKS has no usable signature key");
        }
        Ok(keys)
    }

    // A panic elsewhere while holding the lock leaves consistent data (every write is a plain
    // assignment), so a poisoned lock is still safe to use.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn http_client(url: &str) -> anyhow::Result<reqwest::Client> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("JWKS URL {url:?}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => {
            tracing::warn!(%url, "the JWKS URL is plain http: keys could be forged in transit")
        }
        other => bail!("JWKS URL scheme {other:?} is not http(s)"),
    }
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("userdir/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client for the JWKS")
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// GET with a status check and a size cap read as the body streams in, so a huge or endless
/// answer costs at most MAX_JWKS_BYTES.
async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<Vec<u8>> {
    let mut response = client
        .get(url)
        .header(
            http::header::ACCEPT,
            "application/json, application/jwk-set+json",
        )
        .send()
        .await
        .context("fetching the JWKS")?
        .error_for_status()
        .context("fetching the JWKS")?;
    if response
        .content_length()
        .is_some_and(|length| length > MAX_JWKS_BYTES as u64)
    {
        bail!("the JWKS is larger than {MAX_JWKS_BYTES} bytes");
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.context("reading the JWKS")? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            bail!("the JWKS is larger than {MAX_JWKS_BYTES} bytes");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn read_file(path: PathBuf) -> anyhow::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || read_capped(&path))
        .await
        .context("reading the JWKS file")?
}

fn read_capped(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut body = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .with_context(|| format!("reading {}", path.display()))?;
    if body.len() > MAX_JWKS_BYTES {
        bail!("{} is larger than {MAX_JWKS_BYTES} bytes", path.display());
    }
    Ok(body)
}
