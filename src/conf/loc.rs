//! Configuration structures of the module and how a level inherits from the one above.

use std::sync::Arc;

use nginx_sys::{ngx_flag_t, time_t, NGX_CONF_UNSET};

use super::ext::ComplexValue;
use crate::fetch::http::TrustedCa;
use crate::keys::{RemoteSource, SnapshotCell};
use crate::revocation::RevocationConf;
use crate::variables::PathVar;
use crate::zone::ZoneRef;
use auth_jwt_core::authn::KeySource;
use auth_jwt_core::directive::{FailMode, RequireError, TokenType};
use auth_jwt_core::dpop::DpopRules;
use auth_jwt_core::jwe::DecryptKeys;
use auth_jwt_core::jwt::alg::AlgSet;
use auth_jwt_core::jwt::verify::KeySet;
use auth_jwt_core::metrics::FileReport;
use auth_jwt_core::mtls::MtlsPolicy;

/// Default `auth_jwt_max_size`.
pub(super) const DEFAULT_MAX_SIZE: usize = 16 * 1024;
/// Largest key file read at start-up.
pub(super) const MAX_KEY_FILE: u64 = 1024 * 1024;
pub(crate) const NGX_CONF_UNSET_SIZE: usize = usize::MAX;

/// Default `auth_jwt_cache` size, per worker.
const DEFAULT_CACHE_ENTRIES: usize = 1024;

/// `http`-level configuration.
#[derive(Debug)]
pub struct JwtMainConf {
    /// `auth_jwt_cache`: `None` until set, `Some(0)` for `off`.
    pub cache: Option<usize>,
    /// Every remote key source of the configuration, once each.
    pub sources: Vec<Arc<RemoteSource>>,
    /// `auth_jwt_zone` size (`NGX_CONF_UNSET_SIZE` until set).
    pub zone_size: usize,
    /// Every `auth_jwt_key_file`, for the status page.
    pub files: Vec<FileReport>,
    /// Boxed so that the address handed to NGINX as variable data never moves.
    #[allow(clippy::vec_box)]
    pub vars: Vec<Box<PathVar>>,
    /// This cycle's shared zone, set when NGINX initialises it.
    pub zone: ZoneRef,
    /// `auth_jwt_revocation_*`.
    pub revocation: RevocationConf,
}

impl Default for JwtMainConf {
    fn default() -> Self {
        Self {
            cache: None,
            sources: Vec::new(),
            zone_size: NGX_CONF_UNSET_SIZE,
            files: Vec::new(),
            vars: Vec::new(),
            zone: ZoneRef::default(),
            revocation: RevocationConf::default(),
        }
    }
}

impl JwtMainConf {
    /// Entries of each worker's verified-token cache; 0 when off.
    pub fn cache_entries(&self) -> usize {
        self.cache.unwrap_or(DEFAULT_CACHE_ENTRIES)
    }
}

/// `auth_jwt` state of a location.
#[derive(Debug, Clone)]
pub enum Mode {
    Off,
    On {
        realm: ComplexValue,
        token: Option<ComplexValue>,
        /// `file:line` of the directive, for errors found at merge time.
        declared_at: String,
    },
}

/// One `auth_jwt_require` directive.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub values: Vec<ComplexValue>,
    pub error: RequireError,
}

/// One `auth_jwt_identity_header` directive.
#[derive(Debug, Clone)]
pub struct IdentityHeader {
    pub name: String,
    pub lowcase: String,
    pub claim: Vec<String>,
}

/// `http`/`server`/`location`/`limit_except` configuration. `None` and the NGINX `UNSET`
/// values mean "inherit" until merge.
#[derive(Debug)]
pub struct JwtLocConf {
    pub mode: Option<Mode>,
    pub keys: Option<Arc<KeySet>>,
    /// The verification keys of `keys` that are not also decryption keys: a nested token's
    /// inner signature is checked with these only.
    pub signing_only: Option<Arc<KeySet>>,
    /// Decryption keys of the key files (`auth_jwt_type encrypted` and `nested`).
    pub decrypt: Option<Arc<DecryptKeys>>,
    /// `auth_jwt_type`.
    pub token_type: Option<TokenType>,
    /// `auth_jwt_key_request` URIs (subrequests).
    pub key_requests: Option<Vec<ComplexValue>>,
    /// `auth_jwt_key_cache`, seconds.
    pub key_cache: time_t,
    /// `keys` as the request path takes them, made once at merge.
    pub file_sources: Vec<KeySource>,
    pub leeway: time_t,
    pub require_exp: ngx_flag_t,
    pub max_size: usize,
    pub issuers: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    pub algorithms: Option<AlgSet>,
    pub requires: Option<Vec<Requirement>>,
    pub identity: Option<Vec<IdentityHeader>>,
    /// `auth_jwt_key_uri` and `auth_jwt_discovery` sources.
    pub remote: Option<Vec<Arc<RemoteSource>>>,
    /// This worker's view of `file_sources` and `remote`, for the request path.
    pub snapshot: SnapshotCell,
    /// `auth_jwt_trusted_certificate`, read and parsed when the directive is.
    pub trusted_certificate: Option<Arc<TrustedCa>>,
    pub fail_mode: Option<FailMode>,
    /// `auth_jwt_scope`, for the challenge.
    pub scope: Option<String>,
    /// `auth_jwt_resource_metadata`, for the challenge.
    pub resource_metadata: Option<String>,
    /// `auth_jwt_mtls`.
    pub mtls: Option<MtlsConf>,
    /// `auth_jwt_dpop`.
    pub dpop: Option<DpopRules>,
}

/// `auth_jwt_mtls`: the policy, and where the client certificate comes from.
#[derive(Debug, Clone, Default)]
pub struct MtlsConf {
    pub policy: MtlsPolicy,
    /// `certificate=$var`; `None`: the connection's own client certificate.
    pub certificate: Option<ComplexValue>,
}

impl Default for JwtLocConf {
    fn default() -> Self {
        Self {
            mode: None,
            keys: None,
            signing_only: None,
            decrypt: None,
            token_type: None,
            key_requests: None,
            key_cache: NGX_CONF_UNSET as time_t,
            file_sources: Vec::new(),
            leeway: NGX_CONF_UNSET as time_t,
            require_exp: NGX_CONF_UNSET as ngx_flag_t,
            max_size: NGX_CONF_UNSET_SIZE,
            issuers: None,
            audiences: None,
            algorithms: None,
            requires: None,
            identity: None,
            remote: None,
            snapshot: SnapshotCell::default(),
            trusted_certificate: None,
            fail_mode: None,
            scope: None,
            resource_metadata: None,
            mtls: None,
            dpop: None,
        }
    }
}

impl JwtLocConf {
    /// Fills what this level left unset from the enclosing level and applies defaults.
    pub fn merge(&mut self, prev: &Self) -> Result<(), String> {
        fn inherit<T: Clone>(this: &mut Option<T>, prev: &Option<T>) {
            if this.is_none() {
                this.clone_from(prev);
            }
        }
        inherit(&mut self.mode, &prev.mode);
        inherit(&mut self.keys, &prev.keys);
        inherit(&mut self.signing_only, &prev.signing_only);
        inherit(&mut self.decrypt, &prev.decrypt);
        inherit(&mut self.token_type, &prev.token_type);
        inherit(&mut self.key_requests, &prev.key_requests);
        inherit(&mut self.issuers, &prev.issuers);
        inherit(&mut self.audiences, &prev.audiences);
        inherit(&mut self.algorithms, &prev.algorithms);
        inherit(&mut self.requires, &prev.requires);
        inherit(&mut self.identity, &prev.identity);
        inherit(&mut self.remote, &prev.remote);
        inherit(&mut self.trusted_certificate, &prev.trusted_certificate);
        inherit(&mut self.fail_mode, &prev.fail_mode);
        inherit(&mut self.scope, &prev.scope);
        inherit(&mut self.resource_metadata, &prev.resource_metadata);
        inherit(&mut self.mtls, &prev.mtls);
        inherit(&mut self.dpop, &prev.dpop);
        for source in self.remote.iter().flatten() {
            let ca = source.ca.get_or_init(|| self.trusted_certificate.clone());
            if *ca != self.trusted_certificate {
                return Err(format!(
                    "\"{}\" is used with different \"auth_jwt_trusted_certificate\" values",
                    source.url()
                ));
            }
        }
        let unset = |v: i64| v == NGX_CONF_UNSET as i64;
        if unset(self.key_cache) {
            self.key_cache = if unset(prev.key_cache) {
                0
            } else {
                prev.key_cache
            };
        }
        if unset(self.leeway) {
            self.leeway = if unset(prev.leeway) { 0 } else { prev.leeway };
        }
        if unset(self.require_exp as i64) {
            self.require_exp = if unset(prev.require_exp as i64) {
                1
            } else {
                prev.require_exp
            };
        }
        if self.max_size == NGX_CONF_UNSET_SIZE {
            self.max_size = match prev.max_size {
                NGX_CONF_UNSET_SIZE => DEFAULT_MAX_SIZE,
                size => size,
            };
        }
        let token_type = self.token_type();
        // A nested token's signature is never checked with a key that also decrypts.
        let files = match token_type {
            TokenType::Nested => &self.signing_only,
            _ => &self.keys,
        };
        self.file_sources = files
            .iter()
            .map(|keys| KeySource {
                keys: Arc::clone(keys),
                issuer: None,
            })
            .collect();
        let no_files = files.as_ref().is_none_or(|k| k.is_empty());
        let no_remote = self.remote.as_ref().is_none_or(Vec::is_empty)
            && self.key_requests.as_ref().is_none_or(Vec::is_empty);
        let no_decrypt = self.decrypt.as_ref().is_none_or(|k| k.is_empty());
        let Some(Mode::On { declared_at, .. }) = &self.mode else {
            return Ok(());
        };
        let signing = no_files && no_remote && token_type != TokenType::Encrypted;
        if signing {
            return Err(format!(
                "\"auth_jwt\" in {declared_at} has no keys: add \"auth_jwt_key_file\", \"auth_jwt_key_uri\", \"auth_jwt_key_request\" or \"auth_jwt_discovery\" at its level or above"
            ));
        }
        if no_decrypt && token_type != TokenType::Signed {
            return Err(format!(
                "\"auth_jwt\" in {declared_at} has no decryption keys for \"auth_jwt_type\": add an \"auth_jwt_key_file\" with \"oct\" or private RSA keys (\"use\": \"enc\") at its level or above"
            ));
        }
        Ok(())
    }

    /// `auth_jwt_type`, `signed` by default.
    pub fn token_type(&self) -> TokenType {
        self.token_type.unwrap_or(TokenType::Signed)
    }

    /// The algorithms a token may use here.
    pub fn algorithms(&self) -> AlgSet {
        self.algorithms.unwrap_or_else(AlgSet::all)
    }
}
