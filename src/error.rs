//! The one error type at the NGINX boundary: what a directive, a merge or a request-time
//! write into NGINX's memory can fail with, and how each failure reaches NGINX.

use core::fmt;

use auth_jwt_core::directive::ConfError;

/// Why a call into the module failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A pool, a list or the shared zone had no room left: NGINX's `NGX_ERROR`.
    NoMemory,
    /// A directive given twice where it may appear once: NGINX's own `is duplicate`.
    Duplicate,
    /// A directive's value or a merge is refused; worded as NGINX words its reasons.
    Refused(String),
    /// NGINX has already logged why (one of its slot setters did).
    Logged,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMemory => f.write_str("out of memory"),
            Self::Duplicate => f.write_str("is duplicate"),
            Self::Refused(reason) => f.write_str(reason),
            Self::Logged => f.write_str("see the previous line"),
        }
    }
}

impl From<ConfError> for Error {
    fn from(e: ConfError) -> Self {
        Self::Refused(e.to_string())
    }
}

impl From<String> for Error {
    fn from(reason: String) -> Self {
        Self::Refused(reason)
    }
}

impl From<&str> for Error {
    fn from(reason: &str) -> Self {
        Self::Refused(reason.to_owned())
    }
}

/// `Option` results of NGINX's allocators, as the one error.
pub trait OrNoMemory<T> {
    fn or_no_memory(self) -> Result<T, Error>;
}

impl<T> OrNoMemory<T> for Option<T> {
    fn or_no_memory(self) -> Result<T, Error> {
        self.ok_or(Error::NoMemory)
    }
}
