//! JWS signature algorithms (RFC 7518, RFC 8037) and a compact set of them.
#![forbid(unsafe_code)]

use std::fmt;

/// A JWS `alg` this module can verify. `none` is deliberately not representable.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Alg {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    EdDSA,
}

impl Alg {
    /// Every supported algorithm, in a stable order (also the order of [`AlgSet::iter`]).
    pub const ALL: [Alg; 13] = [
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::ES512,
        Alg::EdDSA,
    ];

    /// Looks up a JOSE algorithm name; exact and case-sensitive, as RFC 7515 requires.
    pub fn from_name(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The JOSE name, e.g. `"RS256"`.
    pub fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::EdDSA => "EdDSA",
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of algorithms, e.g. the configured allow-list or what a key can verify.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AlgSet(u16);

impl AlgSet {
    pub const fn all() -> Self {
        AlgSet((1 << Alg::ALL.len()) - 1)
    }

    pub const fn empty() -> Self {
        AlgSet(0)
    }

    pub fn insert(&mut self, a: Alg) {
        self.0 |= a.bit();
    }

    pub fn contains(self, a: Alg) -> bool {
        self.0 & a.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members in [`Alg::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Alg> {
        Alg::ALL.into_iter().filter(move |&a| self.contains(a))
    }
}

impl Default for AlgSet {
    fn default() -> Self {
        AlgSet::all()
    }
}

impl FromIterator<Alg> for AlgSet {
    fn from_iter<I: IntoIterator<Item = Alg>>(iter: I) -> Self {
        let mut set = AlgSet::empty();
        for a in iter {
            set.insert(a);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Alg::ALL {
            assert_eq!(Alg::from_name(a.name()), Some(a));
            assert_eq!(a.to_string(), a.name());
        }
    }

    #[test]
    fn from_name_is_exact() {
        for s in [
            "", "none", "None", "NONE", "hs256", "Hs256", "HS256 ", " HS256", "EDDSA", "eddsa",
            "ES256K", "Ed25519", "RSA-OAEP", "HS256\0", "dir",
        ] {
            assert_eq!(Alg::from_name(s), None, "{s:?}");
        }
    }

    #[test]
    fn set_operations() {
        let mut set = AlgSet::empty();
        assert!(set.is_empty());
        set.insert(Alg::RS256);
        set.insert(Alg::EdDSA);
        set.insert(Alg::RS256);
        assert!(set.contains(Alg::RS256) && set.contains(Alg::EdDSA));
        assert!(!set.contains(Alg::HS256));
        assert_eq!(set.iter().collect::<Vec<_>>(), [Alg::RS256, Alg::EdDSA]);
        assert_eq!(AlgSet::all().iter().count(), Alg::ALL.len());
        assert_eq!(AlgSet::default(), AlgSet::all());
        assert_eq!(
            [Alg::EdDSA, Alg::RS256].into_iter().collect::<AlgSet>(),
            set
        );
    }
}
