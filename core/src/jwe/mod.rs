//! JSON Web Encryption (RFC 7516 compact serialisation) with NGINX Plus's algorithms: the
//! algorithm names, the one refusal type, and what a decrypted token yields.
#![forbid(unsafe_code)]

use std::fmt;

mod compact;
mod crypto;
pub mod keys;

pub use self::compact::{decrypt, peek_kid};
pub use self::keys::{DecryptKey, DecryptKeys};

/// Key management algorithms (RFC 7518 §4): how the content key reaches the recipient.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum KeyAlg {
    Dir,
    A128Kw,
    A192Kw,
    A256Kw,
    A128GcmKw,
    A192GcmKw,
    A256GcmKw,
    RsaOaep,
    RsaOaep256,
    RsaOaep384,
    RsaOaep512,
}

impl KeyAlg {
    pub const ALL: [KeyAlg; 11] = [
        KeyAlg::Dir,
        KeyAlg::A128Kw,
        KeyAlg::A192Kw,
        KeyAlg::A256Kw,
        KeyAlg::A128GcmKw,
        KeyAlg::A192GcmKw,
        KeyAlg::A256GcmKw,
        KeyAlg::RsaOaep,
        KeyAlg::RsaOaep256,
        KeyAlg::RsaOaep384,
        KeyAlg::RsaOaep512,
    ];

    pub fn from_name(name: &str) -> Option<KeyAlg> {
        KeyAlg::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::Dir => "dir",
            KeyAlg::A128Kw => "A128KW",
            KeyAlg::A192Kw => "A192KW",
            KeyAlg::A256Kw => "A256KW",
            KeyAlg::A128GcmKw => "A128GCMKW",
            KeyAlg::A192GcmKw => "A192GCMKW",
            KeyAlg::A256GcmKw => "A256GCMKW",
            KeyAlg::RsaOaep => "RSA-OAEP",
            KeyAlg::RsaOaep256 => "RSA-OAEP-256",
            KeyAlg::RsaOaep384 => "RSA-OAEP-384",
            KeyAlg::RsaOaep512 => "RSA-OAEP-512",
        }
    }

    /// The length of the symmetric key-encryption key, for the AES wrapping algorithms.
    pub fn kek_len(self) -> Option<usize> {
        match self {
            KeyAlg::A128Kw | KeyAlg::A128GcmKw => Some(16),
            KeyAlg::A192Kw | KeyAlg::A192GcmKw => Some(24),
            KeyAlg::A256Kw | KeyAlg::A256GcmKw => Some(32),
            _ => None,
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            KeyAlg::RsaOaep | KeyAlg::RsaOaep256 | KeyAlg::RsaOaep384 | KeyAlg::RsaOaep512
        )
    }
}

/// Content encryption algorithms (RFC 7518 §5).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Enc {
    A128CbcHs256,
    A192CbcHs384,
    A256CbcHs512,
    A128Gcm,
    A192Gcm,
    A256Gcm,
}

impl Enc {
    pub const ALL: [Enc; 6] = [
        Enc::A128CbcHs256,
        Enc::A192CbcHs384,
        Enc::A256CbcHs512,
        Enc::A128Gcm,
        Enc::A192Gcm,
        Enc::A256Gcm,
    ];

    pub fn from_name(name: &str) -> Option<Enc> {
        Enc::ALL.into_iter().find(|e| e.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Enc::A128CbcHs256 => "A128CBC-HS256",
            Enc::A192CbcHs384 => "A192CBC-HS384",
            Enc::A256CbcHs512 => "A256CBC-HS512",
            Enc::A128Gcm => "A128GCM",
            Enc::A192Gcm => "A192GCM",
            Enc::A256Gcm => "A256GCM",
        }
    }

    /// Length of the content encryption key: for CBC-HS, the MAC key and the AES key.
    pub fn cek_len(self) -> usize {
        match self {
            Enc::A128CbcHs256 => 32,
            Enc::A192CbcHs384 => 48,
            Enc::A256CbcHs512 => 64,
            Enc::A128Gcm => 16,
            Enc::A192Gcm => 24,
            Enc::A256Gcm => 32,
        }
    }

    pub fn iv_len(self) -> usize {
        match self {
            Enc::A128CbcHs256 | Enc::A192CbcHs384 | Enc::A256CbcHs512 => 16,
            _ => 12,
        }
    }

    /// Length of the authentication tag: half the HMAC output for CBC-HS, 128 bits for GCM.
    pub fn tag_len(self) -> usize {
        match self {
            Enc::A128CbcHs256 => 16,
            Enc::A192CbcHs384 => 24,
            Enc::A256CbcHs512 => 32,
            _ => 16,
        }
    }
}

/// Why an encrypted token was refused. Every failure to decrypt — a wrong key, a tampered
/// ciphertext, IV, tag or header, a bad padding, an unwrapped key of the wrong size — is the
/// one [`JweError::DecryptFailed`]: nothing tells an attacker which step failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum JweError {
    /// Not five strict base64url segments with a JSON object header; the text says which.
    Malformed(&'static str),
    /// `alg` is `RSA1_5`, `PBES2-*`, `ECDH-ES*` or anything else not listed.
    UnsupportedAlg,
    UnsupportedEnc,
    /// `zip`: compressed plaintext is never inflated (no decompression bombs).
    Zip,
    /// `crit`: no extension is supported.
    Crit,
    /// `jku`, `x5u`, `jwk`: keys never come from the token.
    KeyReference,
    /// `kid` names no decryption key.
    UnknownKid,
    /// No decryption key fits `alg` and `enc` (type and size).
    NoFittingKey,
    DecryptFailed,
}

impl JweError {
    pub fn as_str(self) -> &'static str {
        match self {
            JweError::Malformed(what) => what,
            JweError::UnsupportedAlg => "unsupported jwe key management algorithm",
            JweError::UnsupportedEnc => "unsupported jwe content encryption algorithm",
            JweError::Zip => "compressed jwe (zip) is not accepted",
            JweError::Crit => "unsupported critical header",
            JweError::KeyReference => "jwe key reference headers are not accepted",
            JweError::UnknownKid => "no decryption key matches kid",
            JweError::NoFittingKey => "no decryption key fits alg and enc",
            JweError::DecryptFailed => "jwe decryption failed",
        }
    }
}

impl fmt::Display for JweError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for JweError {}

/// A decrypted token: its protected header and its plaintext (authenticated).
pub struct Decrypted {
    pub alg: KeyAlg,
    pub enc: Enc,
    pub kid: Option<String>,
    /// `cty`, as sent.
    pub cty: Option<String>,
    /// The protected header's JSON text.
    pub header: String,
    pub plaintext: Vec<u8>,
}

impl Decrypted {
    /// Whether `cty` says the plaintext is a JWT (RFC 7519 §5.2: a nested token).
    pub fn is_nested(&self) -> bool {
        self.cty
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("JWT"))
    }
}

impl fmt::Debug for Decrypted {
    /// Leaves out the plaintext: a token's content never reaches logs through `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypted")
            .field("alg", &self.alg)
            .field("enc", &self.enc)
            .field("len", &self.plaintext.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
