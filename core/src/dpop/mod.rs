//! DPoP (RFC 9449): the `auth_jwt_dpop` policy and directive value, the `cnf.jkt` binding,
//! and every check of a proof (section 4.3); the replay table is in `replay`.
#![forbid(unsafe_code)]

use core::fmt;
use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

use crate::directive::{parse_algorithms, parse_duration, ConfError};
use crate::jwt::alg::{Alg, AlgSet};
use crate::jwt::json::{self, Limits};
use crate::jwt::scan::{self, Kind, Span};
use crate::jwt::verify::sha256;

pub mod jwk;
pub mod replay;
pub mod share;

/// Longest proof read; a longer one is refused before any parsing.
pub const MAX_PROOF: usize = 8 * 1024;
const PROOF_LIMITS: Limits = Limits {
    max_depth: 8,
    max_members: 64,
};
/// Default `window=`: how far `iat` may be from now, either way.
pub const DEFAULT_WINDOW: i64 = 60;

/// `auth_jwt_dpop`: which tokens must come with a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpopPolicy {
    /// No check: `cnf.jkt` is ignored and the `DPoP` scheme is not accepted.
    Off,
    /// A token bound with `cnf.jkt` needs its proof; unbound tokens pass as `Bearer`.
    #[default]
    Optional,
    /// Only DPoP-bound tokens, with their proof, pass.
    Required,
}

/// `auth_jwt_dpop` as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopRules {
    pub policy: DpopPolicy,
    /// Seconds `iat` may be from now (either way); also how long a `jti` is remembered.
    pub window: i64,
    /// Algorithms a proof may use: asymmetric ones only.
    pub algorithms: AlgSet,
    /// `origin=`: scheme and authority of `htu` as clients see them (behind a terminator).
    pub origin: Option<String>,
    /// `nonce=on`: the secret server nonces are made from (set at configuration load).
    pub nonce_secret: Option<[u8; 32]>,
}

impl Default for DpopRules {
    fn default() -> Self {
        Self {
            policy: DpopPolicy::Optional,
            window: DEFAULT_WINDOW,
            algorithms: asymmetric(),
            origin: None,
            nonce_secret: None,
        }
    }
}

fn asymmetric() -> AlgSet {
    AlgSet::all()
        .iter()
        .filter(|a| !matches!(a, Alg::HS256 | Alg::HS384 | Alg::HS512))
        .collect()
}

/// Parses `auth_jwt_dpop required | optional | off [window=<time>]
/// [algorithms=<alg>,...] [origin=<scheme://host[:port]>]`.
pub fn parse_dpop(args: &[&str]) -> Result<DpopRules, ConfError> {
    let (first, rest) = args
        .split_first()
        .ok_or_else(|| ConfError::Other("invalid number of arguments".into()))?;
    let mut rules = DpopRules {
        policy: match *first {
            "required" => DpopPolicy::Required,
            "optional" => DpopPolicy::Optional,
            "off" => DpopPolicy::Off,
            other => return Err(ConfError::InvalidValue(other.into())),
        },
        ..DpopRules::default()
    };
    for param in rest {
        let (name, value) = param
            .split_once('=')
            .ok_or_else(|| ConfError::InvalidValue((*param).into()))?;
        match name {
            "window" => {
                let secs = parse_duration(value)?.as_secs();
                rules.window = i64::try_from(secs)
                    .ok()
                    .filter(|s| (1..=3600).contains(s))
                    .ok_or_else(|| {
                        ConfError::Other(format!("window \"{value}\" must be 1s to 1h"))
                    })?;
            }
            "algorithms" => {
                let names: Vec<&str> = value.split(',').collect();
                let set = parse_algorithms(&names)?;
                if set.iter().any(|a| !asymmetric().contains(a)) {
                    return Err(ConfError::Other(format!(
                        "algorithms \"{value}\": a proof must use an asymmetric algorithm"
                    )));
                }
                rules.algorithms = set;
            }
            "nonce" => {
                rules.nonce_secret = match value {
                    // The secret itself is drawn by the caller (configuration load).
                    "on" => Some([0; 32]),
                    "off" => None,
                    _ => return Err(ConfError::InvalidValue((*param).into())),
                };
            }
            "origin" => {
                let ok = (value.starts_with("https://") || value.starts_with("http://"))
                    && !value.ends_with('/')
                    && !value
                        .bytes()
                        .any(|b| b <= b' ' || b == b'?' || b == b'#' || b == 0x7f)
                    && value.matches('/').count() == 2;
                if !ok {
                    return Err(ConfError::Other(format!(
                        "origin \"{value}\" must be scheme://host[:port] with no path"
                    )));
                }
                rules.origin = Some(value.to_ascii_lowercase());
            }
            _ => return Err(ConfError::InvalidValue((*param).into())),
        }
    }
    Ok(rules)
}

/// Why a DPoP request was refused. `Display` is the challenge's `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopError {
    /// A DPoP-bound token sent with the `Bearer` scheme.
    Bearer,
    /// `required` (or the `DPoP` scheme) and the token has no `cnf.jkt`.
    Unbound,
    /// `cnf.jkt` is not a string.
    BadBinding,
    /// The proof failed a check; the text says which.
    Proof(&'static str),
    /// The proof's `jti` was seen within the window.
    Replay,
    /// `nonce=on` and the proof lacks the current server nonce (`use_dpop_nonce`).
    UseNonce,
}

impl DpopError {
    /// RFC 9449 section 7.1: proof problems are `invalid_dpop_proof`, token problems
    /// `invalid_token`.
    pub fn is_proof_error(self) -> bool {
        matches!(self, Self::Proof(_) | Self::Replay | Self::UseNonce)
    }

    /// The `result` label of `nginx_auth_jwt_sender_constrained_total{method="dpop"}`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::Unbound => "unbound",
            Self::BadBinding => "bad_binding",
            Self::Proof(_) => "invalid_proof",
            Self::Replay => "replay",
            Self::UseNonce => "use_nonce",
        }
    }
}

impl fmt::Display for DpopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer => f.write_str("DPoP-bound token sent as a bearer token"),
            Self::Unbound => f.write_str("token not bound to a DPoP key"),
            Self::BadBinding => f.write_str("malformed cnf.jkt claim"),
            Self::Proof(why) => write!(f, "DPoP proof {why}"),
            Self::Replay => f.write_str("DPoP proof replayed"),
            Self::UseNonce => f.write_str("DPoP proof lacks the server's current nonce"),
        }
    }
}

impl std::error::Error for DpopError {}

/// The token's `cnf.jkt`, when it has one.
pub fn binding(claims: &Map<String, Value>) -> Result<Option<&str>, DpopError> {
    let Some(cnf) = claims.get("cnf") else {
        return Ok(None);
    };
    let cnf = cnf.as_object().ok_or(DpopError::BadBinding)?;
    match cnf.get("jkt") {
        None => Ok(None),
        Some(Value::String(jkt)) => Ok(Some(jkt)),
        Some(_) => Err(DpopError::BadBinding),
    }
}

/// The request a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct ProofTarget<'a> {
    /// The request method (`htm`).
    pub method: &'a [u8],
    /// `scheme://authority/path` of the request, without query (`htu`).
    pub htu: &'a str,
    /// SHA-256 of the access token as sent (`ath`): [`token_digest`], or
    /// [`Verified::token_digest`](crate::authn::Verified::token_digest), which keeps it with a
    /// cached token.
    pub token_sha256: [u8; 32],
    pub now: i64,
}

/// SHA-256 of an access token, which a proof's `ath` carries (RFC 9449 section 4.2).
pub fn token_digest(token: &[u8]) -> [u8; 32] {
    sha256(token)
}

/// A proof that passed every check but the replay check.
#[derive(Debug, PartialEq, Eq)]
pub struct Proof {
    /// SHA-256 of `jti`, for the replay table.
    pub jti_digest: [u8; 32],
    /// When its `jti` may be forgotten: `iat` plus the window.
    pub expires: i64,
}

/// RFC 9449 section 4.3, steps 2 to 12 (the replay check is the caller's, with
/// [`replay::record`]): one proof, for `target`, signed by the key `jkt` names.
pub fn check_proof(
    proof: &[u8],
    target: &ProofTarget<'_>,
    jkt: &str,
    rules: &DpopRules,
) -> Result<Proof, DpopError> {
    check_proof_cached(proof, target, jkt, rules, &mut jwk::KeyCache::default())
}

/// [`check_proof`] with a worker's cache of the keys of earlier proofs.
pub fn check_proof_cached(
    proof: &[u8],
    target: &ProofTarget<'_>,
    jkt: &str,
    rules: &DpopRules,
    cache: &mut jwk::KeyCache,
) -> Result<Proof, DpopError> {
    let bad = DpopError::Proof;
    if proof.len() > MAX_PROOF {
        return Err(bad("too large"));
    }
    let mut parts = proof.split(|&b| b == b'.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("is not a compact JWS"));
    };
    let decode = crate::jwt::b64::decode;
    let allowed = |alg: Option<Alg>| {
        alg.filter(|a| rules.algorithms.contains(*a))
            .ok_or(bad("alg is not allowed"))
    };
    // The same checks in the same order either way; a known header skips what its text
    // alone decides (base64url, JSON, typ, crit, jwk, the thumbprint's hash).
    let (alg, keys, new_header) = match cache.known_header(header) {
        Some(known) => (allowed(Some(known.alg))?, known.keys_for(jkt)?, false),
        None => {
            let text = decode(header).ok_or(bad("header is not base64url"))?;
            let fields =
                json::parse_object(&text, PROOF_LIMITS).map_err(|_| bad("header is not JSON"))?;
            if fields.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
                return Err(bad("typ is not dpop+jwt"));
            }
            let alg = allowed(
                fields
                    .get("alg")
                    .and_then(Value::as_str)
                    .and_then(Alg::from_name),
            )?;
            if fields.contains_key("crit") {
                return Err(bad("has crit"));
            }
            let jwk = fields.get("jwk").ok_or(bad("has no jwk"))?;
            // The key must be the one the token names before it is made or used.
            (alg, cache.key_for(jwk, jkt)?, true)
        }
    };
    let signature = decode(signature).ok_or(bad("signature is not base64url"))?;
    let input = &proof[..proof.len() - signature_len(proof)];
    keys.verify_signature(alg, input, &signature, rules.algorithms)
        .map_err(|_| bad("signature invalid"))?;
    let payload = decode(payload).ok_or(bad("payload is not base64url"))?;
    let claims = ProofClaims::scan(&payload).ok_or(bad("payload is not JSON"))?;
    let text = |name| claims.text(name);
    if text("htm").as_deref().map(str::as_bytes) != Some(target.method) {
        return Err(bad("htm does not match the request method"));
    }
    if !same_htu(&text("htu").unwrap_or_default(), target.htu) {
        return Err(bad("htu does not match the request URI"));
    }
    let iat = claims.integer("iat").ok_or(bad("iat missing"))?;
    if (target.now - iat).abs() > rules.window {
        return Err(bad("iat outside the acceptance window"));
    }
    if let Some(secret) = &rules.nonce_secret {
        let sent = text("nonce").unwrap_or_default();
        let fresh = [0, 1].iter().any(|back| {
            let nonce = server_nonce(secret, target.now, rules.window, *back);
            sent.len() == nonce.len() && openssl::memcmp::eq(sent.as_bytes(), nonce.as_bytes())
        });
        if sent.len() != 22 || !fresh {
            return Err(DpopError::UseNonce);
        }
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty())
        .ok_or(bad("jti missing"))?;
    let ath = URL_SAFE_NO_PAD.encode(target.token_sha256);
    let sent = text("ath").unwrap_or_default();
    if sent.len() != ath.len() || !openssl::memcmp::eq(sent.as_bytes(), ath.as_bytes()) {
        return Err(bad("ath does not match the access token"));
    }
    if new_header {
        cache.remember_header(header, alg, jkt, &keys);
    }
    Ok(Proof {
        jti_digest: sha256(jti.as_bytes()),
        expires: iat + rules.window + 1,
    })
}

/// The members of a proof's claims that the checks read.
const CLAIMS: [&str; 6] = ["htm", "htu", "iat", "nonce", "jti", "ath"];

/// Where the [`CLAIMS`] are in a proof's claims, located by the strict scanner (`jwt::scan`:
/// what `json::parse_object` accepts, without building a tree).
struct ProofClaims<'a> {
    doc: &'a str,
    spans: [Option<Span>; CLAIMS.len()],
}

impl<'a> ProofClaims<'a> {
    fn scan(payload: &'a [u8]) -> Option<Self> {
        let mut spans = [None; CLAIMS.len()];
        scan::scan_object(payload, PROOF_LIMITS, |name, value| {
            if let Some(i) = CLAIMS.iter().position(|c| c.as_bytes() == name) {
                spans[i] = Some(value);
            }
        })
        .ok()?;
        // Text outside strings is ASCII, and the scan checked every string.
        let doc = std::str::from_utf8(payload).ok()?;
        Some(Self { doc, spans })
    }

    fn span(&self, name: &str) -> Option<Span> {
        let i = CLAIMS.iter().position(|c| *c == name)?;
        self.spans[i]
    }

    /// A string member, unescaped; `None` if absent or of another type.
    fn text(&self, name: &str) -> Option<Cow<'a, str>> {
        self.span(name)?.string(self.doc)
    }

    /// An integer member (`serde_json`'s `as_i64`: no fraction, no exponent, within i64).
    fn integer(&self, name: &str) -> Option<i64> {
        let span = self.span(name).filter(|s| s.kind == Kind::Number)?;
        span.text(self.doc).parse().ok()
    }
}

/// The server nonce of the window `back` windows before the one `now` falls in: 22
/// base64url characters of HMAC-SHA256(secret, window number). A proof may carry the
/// current nonce or the previous one, so a nonce lives one to two windows.
pub fn server_nonce(secret: &[u8; 32], now: i64, window: i64, back: i64) -> String {
    let bucket = now.div_euclid(window.max(1)) - back;
    let mac = openssl::pkey::PKey::hmac(secret)
        .and_then(|key| {
            let mut signer =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key)?;
            signer.update(&bucket.to_be_bytes())?;
            signer.sign_to_vec()
        })
        .unwrap_or_default();
    let mut text = URL_SAFE_NO_PAD.encode(mac);
    text.truncate(22);
    text
}

/// Length of `.signature` at the end of `proof` (the dot included).
fn signature_len(proof: &[u8]) -> usize {
    proof
        .iter()
        .rposition(|&b| b == b'.')
        .map_or(0, |dot| proof.len() - dot)
}

/// `htu` against the request's URI: query and fragment ignored (RFC 9449 section 4.3
/// step 9), scheme and host compared without letter case, the path exactly.
fn same_htu(sent: &str, ours: &str) -> bool {
    let sent = sent.split(['?', '#']).next().unwrap_or_default();
    let split = |u: &str| -> Option<(String, String)> {
        let rest = u.split_once("://")?.1;
        let cut = u.len() - rest.len() + rest.find('/').unwrap_or(rest.len());
        Some((u[..cut].to_ascii_lowercase(), u[cut..].to_owned()))
    };
    let norm = |(origin, path): (String, String)| {
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path
        };
        let origin = origin
            .strip_suffix(":443")
            .filter(|_| origin.starts_with("https://"))
            .or_else(|| {
                origin
                    .strip_suffix(":80")
                    .filter(|_| origin.starts_with("http://"))
            })
            .map_or(origin.clone(), str::to_owned);
        (origin, path)
    };
    match (split(sent), split(ours)) {
        (Some(a), Some(b)) => norm(a) == norm(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
