//! One token in, one verdict out: size, parse, signature, then claims, in that order.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::cache::TokenCache;
use crate::directive::TokenType;
use crate::dpop;
use crate::jwe::{self, DecryptKeys, Decrypted, JweError};

use crate::jwt::alg::{Alg, AlgSet};
use crate::jwt::claims::{self, ClaimRules, Registered, Spans, Text};
use crate::jwt::error::VerifyError;
use crate::jwt::json::LazyJson;
use crate::jwt::token::{self, HEADER_LIMITS};
use crate::jwt::verify::KeySet;
use crate::revocation::{self, Clean, Facts, Probe, Revoked, Table};

/// What a location demands of a token, besides a valid signature.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// `auth_jwt_max_size`: longer tokens are refused before any parsing.
    pub max_size: usize,
    /// `auth_jwt_algorithms`.
    pub algorithms: AlgSet,
    /// `exp`/`nbf`/`iss`/`aud` rules.
    pub claims: ClaimRules<'a>,
    /// `auth_jwt_type`, with the decryption keys of `encrypted` and `nested`.
    pub expect: Expect<'a>,
}

/// The kind of token a location takes (`auth_jwt_type`).
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    Signed,
    /// A JWE whose plaintext is the claims: no signature (the key is the authentication).
    Encrypted(&'a Arc<DecryptKeys>),
    /// A JWE whose plaintext is a JWS, verified with the location's key sources.
    Nested(&'a Arc<DecryptKeys>),
}

impl Expect<'_> {
    pub fn kind(&self) -> TokenType {
        match self {
            Expect::Signed => TokenType::Signed,
            Expect::Encrypted(_) => TokenType::Encrypted,
            Expect::Nested(_) => TokenType::Nested,
        }
    }

    fn decryption_keys(&self) -> Option<&Arc<DecryptKeys>> {
        match self {
            Expect::Signed => None,
            Expect::Encrypted(keys) | Expect::Nested(keys) => Some(keys),
        }
    }
}

/// A token whose signature and claims passed: what variables and identity headers read.
#[derive(Debug)]
pub struct Verified {
    /// The JWS algorithm (of the inner token, when nested); none for an encrypted token.
    pub alg: Option<Alg>,
    pub kid: Option<Rc<str>>,
    /// The header's members (a map, built on first use), shared with the thread's other
    /// tokens of the same header ([`crate::jwt::header`]).
    pub header: Rc<LazyJson>,
    /// The payload's members (a map, built on first use: variables, identity headers).
    pub claims: LazyJson,
    /// `exp` and `nbf` of `claims`, read once.
    pub times: claims::Times,
    /// A nested token's inner JWS, which is `$jwt_payload` there (as in NGINX Plus).
    pub nested_jws: Option<String>,
    /// Where `iss` and `aud` are in `payload`, for the checks of later cache hits.
    spans: Spans,
    /// The revocation table's keys for this token, hashed on first use and kept with it.
    probe: OnceCell<Probe>,
    /// The last revocation check that found nothing, and when (see [`Clean`]).
    clean: Clean,
    /// The access token's length and SHA-256 (a DPoP proof's `ath`), on first use.
    digest: OnceCell<(usize, [u8; 32])>,
}

impl Verified {
    fn new(
        alg: Option<Alg>,
        kid: Option<Rc<str>>,
        header: Rc<LazyJson>,
        times: claims::Times,
        payload: token::Payload,
    ) -> Self {
        let token::Payload { claims, spans } = payload;
        Self {
            alg,
            kid,
            header,
            times,
            nested_jws: None,
            claims,
            spans,
            probe: OnceCell::new(),
            clean: Clean::default(),
            digest: OnceCell::new(),
        }
    }

    /// The decoded payload (the claims' JSON text), kept once, by the claims.
    pub fn payload(&self) -> &str {
        self.claims.text()
    }

    /// Whether the token has a `cnf` claim: only such a token can be bound to a certificate
    /// or a DPoP key. Read from the scan, so a token without costs its checks no claims tree.
    pub fn has_cnf(&self) -> bool {
        self.spans.has_cnf()
    }

    /// A top-level claim as [`identity::render`](crate::identity::render) renders it, for
    /// `$jwt_claim_<name>` and for a rate limit keyed by that claim: a `sub`, `iss` or `jti`
    /// string from the scan's spans (no claims tree, no map search), anything else from the tree.
    pub fn claim_text(&self, name: &str) -> Option<Cow<'_, str>> {
        match self.spans.of(self.claims.text()).string(name) {
            Some(text) => Some(text),
            None => Some(crate::identity::render(self.claims.get(name)?)),
        }
    }

    /// SHA-256 of `token`, the access token this was verified from (the cache hands a
    /// `Verified` only to the bytes it was stored under): hashed on first use and kept, so a
    /// cached token's later DPoP requests skip it. A token of another length is hashed afresh.
    pub fn token_digest(&self, token: &[u8]) -> [u8; 32] {
        match self
            .digest
            .get_or_init(|| (token.len(), dpop::token_digest(token)))
        {
            &(len, digest) if len == token.len() => digest,
            _ => dpop::token_digest(token),
        }
    }

    /// Whether `table` revokes this token at `now`: its [`probe`](Self::revocation_probe)
    /// looked up, unless the table has not changed since a check found nothing.
    pub fn revoked(&self, table: &Table<'_>, now: i64) -> Option<Revoked> {
        revocation::check_remembered(table, self.revocation_probe(), &self.clean, now)
    }

    /// What the revocation check looks up: `kid`, `jti`, `sub` (under `iss`) and `iat`, read
    /// from the payload's text (no `serde_json` tree) and hashed once; a cached token's later
    /// requests reuse it.
    pub fn revocation_probe(&self) -> &Probe {
        self.probe.get_or_init(|| {
            let raw = self.spans.of(self.claims.text());
            let (jti, sub, iss) = (raw.string("jti"), raw.string("sub"), raw.string("iss"));
            Probe::of(&Facts {
                jti: jti.as_deref(),
                sub: sub.as_deref(),
                iss: iss.as_deref(),
                iat: raw.iat(),
                kid: self.kid.as_deref(),
            })
        })
    }
}

/// A refused token, with what the log line may say about it.
#[derive(Debug)]
pub struct Denial {
    pub error: VerifyError,
    /// The header's `kid` and `alg` when the header parsed: attacker-chosen, log-escaped later.
    pub kid: Option<Rc<str>>,
    pub alg: Option<Alg>,
}

impl From<VerifyError> for Denial {
    fn from(error: VerifyError) -> Self {
        Self {
            error,
            kid: None,
            alg: None,
        }
    }
}

/// One set of keys a location trusts, with the issuer its keys are bound to (keys from an
/// OpenID Provider's discovery verify only that provider's tokens).
#[derive(Debug, Clone)]
pub struct KeySource {
    pub keys: Arc<KeySet>,
    pub issuer: Option<Arc<str>>,
}

/// Verifies `token` against `sources` under `policy` at time `now` (seconds since the
/// epoch); returns what it verified and the key set that verified the signature (none for
/// an encrypted token). The size is checked before anything is decoded or decrypted.
pub fn authenticate(
    token: &[u8],
    sources: &[KeySource],
    policy: &Policy<'_>,
    now: i64,
) -> Result<(Verified, Option<Arc<KeySet>>), Denial> {
    if token.len() > policy.max_size {
        return Err(VerifyError::TooLarge.into());
    }
    match policy.expect {
        Expect::Signed => authenticate_jws(token, sources, policy, now).map(|(v, k)| (v, Some(k))),
        Expect::Encrypted(keys) => {
            let Decrypted {
                kid,
                header,
                plaintext,
                ..
            } = open(token, keys)?;
            let kid: Option<Rc<str>> = kid.as_deref().map(Rc::from);
            let denial = |error| Denial {
                error,
                kid: kid.clone(),
                alg: None,
            };
            let payload = token::Payload::from_bytes(plaintext).map_err(denial)?;
            let times =
                claims::check_times(&payload.registered(), &policy.claims, now).map_err(denial)?;
            let header = Rc::new(LazyJson::new(header, HEADER_LIMITS));
            Ok((Verified::new(None, kid, header, times, payload), None))
        }
        Expect::Nested(keys) => {
            let outer = open(token, keys)?;
            if !outer.is_nested() {
                return Err(Denial {
                    error: VerifyError::Jwe("encrypted token is not nested (cty is not JWT)"),
                    kid: outer.kid.as_deref().map(Rc::from),
                    alg: None,
                });
            }
            let (mut verified, keys) = authenticate_jws(&outer.plaintext, sources, policy, now)?;
            verified.nested_jws = String::from_utf8(outer.plaintext).ok();
            Ok((verified, Some(keys)))
        }
    }
}

/// Decrypts a JWE; a signed token where an encrypted one is expected says so.
fn open(token: &[u8], keys: &DecryptKeys) -> Result<Decrypted, Denial> {
    jwe::decrypt(token, keys).map_err(|e| {
        let dots = token.iter().filter(|&&b| b == b'.').count();
        let error = match e {
            JweError::Malformed(_) if dots == 2 => "token is signed, not encrypted",
            e => e.as_str(),
        };
        Denial {
            error: VerifyError::Jwe(error),
            kid: jwe::peek_kid(token).as_deref().map(Rc::from),
            alg: None,
        }
    })
}

/// A compact JWS: parse, signature, then claims.
fn authenticate_jws(
    token: &[u8],
    sources: &[KeySource],
    policy: &Policy<'_>,
    now: i64,
) -> Result<(Verified, Arc<KeySet>), Denial> {
    let parsed = token::parse(token)?;
    let denial = |error| Denial {
        error,
        kid: parsed.kid.clone(),
        alg: Some(parsed.alg),
    };
    // The payload waits for the signature, unless a source is bound to an issuer (OIDC
    // discovery): then `iss` must be read first to pick the sources that may verify.
    let bound = sources.iter().any(|s| s.issuer.is_some());
    let early = if bound {
        Some(parsed.payload().map_err(denial)?)
    } else {
        None
    };
    let iss = early.as_ref().map(token::Payload::registered);
    let iss = match iss.as_ref().map(Registered::iss) {
        Some(Text::Is(iss)) => Some(iss),
        _ => None,
    };
    let keys = verify_any(&parsed, iss.as_deref(), sources, policy.algorithms).map_err(denial)?;
    parsed.remember_header();
    drop(iss);
    let payload = match early {
        Some(payload) => payload,
        None => parsed.payload().map_err(denial)?,
    };
    let times = claims::check_times(&payload.registered(), &policy.claims, now).map_err(denial)?;
    let verified = Verified::new(Some(parsed.alg), parsed.kid, parsed.header, times, payload);
    Ok((verified, keys))
}

/// Tries each source in turn. A source that does not know the token's `kid` (or has no key
/// for its algorithm) passes the token on to the next; any other refusal is final, so a
/// `kid` still selects exactly the keys that carry it.
/// `iss` is the token's, read only when a source is bound to an issuer.
fn verify_any(
    token: &token::Token<'_>,
    iss: Option<&str>,
    sources: &[KeySource],
    allowed: AlgSet,
) -> Result<Arc<KeySet>, VerifyError> {
    let mut refusal = None;
    for source in sources {
        if source.issuer.is_some() && source.issuer.as_deref() != iss {
            refusal.get_or_insert(VerifyError::IssuerMismatch);
            continue;
        }
        match source.keys.verify(token, allowed) {
            Ok(_) => return Ok(Arc::clone(&source.keys)),
            Err(e @ (VerifyError::UnknownKid | VerifyError::NoFittingKey)) => refusal = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(refusal.unwrap_or(VerifyError::NoFittingKey))
}

/// Tokens longer than this are verified every time, never cached: it bounds the cache's
/// memory at `entries * MAX_CACHED_TOKEN` plus the claims.
pub const MAX_CACHED_TOKEN: usize = 8 * 1024;

/// What the verified-token cache keeps: the outcome of parsing and the signature check, and
/// the key set that checked it. Claims are checked again on every hit (`exp` moves on).
#[derive(Debug)]
pub struct Cached {
    kind: TokenType,
    /// The key set that verified the signature (none for an encrypted token).
    keys: Option<Arc<KeySet>>,
    /// The decryption keys that opened it (encrypted and nested tokens).
    decrypt: Option<Arc<DecryptKeys>>,
    verified: Rc<Verified>,
}

/// A per-worker verified-token cache.
pub type Cache = TokenCache<Cached>;

/// Whether [`authenticate_cached`] found the token in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Miss,
}

/// [`authenticate`] through `cache`: a token verified before by a key set this location
/// still trusts skips parsing and the signature check; its algorithm and claims are checked
/// again under this location's policy at `now`. Keys that rotate away take their entries'
/// validity with them.
pub fn authenticate_cached(
    token: &[u8],
    sources: &[KeySource],
    policy: &Policy<'_>,
    now: i64,
    cache: &mut Cache,
) -> (Result<Rc<Verified>, Denial>, Lookup) {
    if token.len() > policy.max_size {
        return (Err(VerifyError::TooLarge.into()), Lookup::Miss);
    }
    // A hit counts only where the same kind of token is taken, with the same decryption
    // keys and a key source that verified it.
    let kind = policy.expect.kind();
    let decrypt = policy.expect.decryption_keys();
    let trusted = |c: &&Cached| {
        let opened = match (&c.decrypt, decrypt) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        let signed = match &c.keys {
            None => kind == TokenType::Encrypted,
            Some(k) => sources.iter().any(|s| Arc::ptr_eq(k, &s.keys)),
        };
        c.kind == kind && opened && signed
    };
    if let Some(hit) = cache.get(token).filter(trusted) {
        let verified = Rc::clone(&hit.verified);
        let checked = recheck(&verified, policy, now).map(|()| verified);
        return (checked, Lookup::Hit);
    }
    let result = authenticate(token, sources, policy, now);
    let result = result.map(|(verified, keys)| {
        let verified = Rc::new(verified);
        if token.len() <= MAX_CACHED_TOKEN {
            let entry = Cached {
                kind,
                keys,
                decrypt: decrypt.cloned(),
                verified: Rc::clone(&verified),
            };
            cache.insert(token, entry);
        }
        verified
    });
    (result, Lookup::Miss)
}

/// What may differ between two requests with the same token: the location's policy and time.
fn recheck(verified: &Verified, policy: &Policy<'_>, now: i64) -> Result<(), Denial> {
    let denial = |error| Denial {
        error,
        kid: verified.kid.clone(),
        alg: verified.alg,
    };
    if let Some(alg) = verified.alg.filter(|&a| !policy.algorithms.contains(a)) {
        return Err(denial(VerifyError::AlgNotAllowed(alg)));
    }
    let registered = verified.spans.of(verified.payload());
    claims::check_with(&registered, verified.times, &policy.claims, now).map_err(denial)
}

/// Makes attacker-chosen text (a `kid`) safe for one log line: printable ASCII only, quotes
/// and backslashes escaped, at most 64 characters.
pub fn log_safe(text: &str) -> String {
    const MAX: usize = 64;
    let mut out = String::with_capacity(text.len().min(MAX + 3));
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push_str("...");
            break;
        }
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
#[path = "authn_tests.rs"]
mod tests;
