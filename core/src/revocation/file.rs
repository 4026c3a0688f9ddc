//! `auth_jwt_revocation_file`: a JSON array of revocations with the fields of a stream entry.
//!
//! ```json
//! [
//!   {"jti": "8d5c0c9e", "exp": 1767225600},
//!   {"sub": "alice", "iss": "https://idp.example.com/", "before": 1767139200},
//!   {"kid": "2024-leaked"}
//! ]
//! ```

use serde_json::Value;

use super::{parse_entry, Revocation};

/// Largest revocation file read.
pub const MAX_FILE: u64 = 64 * 1024 * 1024;

/// Parses a revocation file; the error names the first bad entry (by its position from 1).
pub fn parse_file(bytes: &[u8]) -> Result<Vec<Revocation>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Array(items) = doc else {
        return Err("not a JSON array of revocations".into());
    };
    let mut out = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let entry = |reason: String| format!("entry {}: {reason}", n + 1);
        let Value::Object(members) = item else {
            return Err(entry("not an object".into()));
        };
        let mut fields = Vec::with_capacity(members.len());
        for (name, value) in members {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(entry(format!("field \"{name}\" is not a string or number"))),
            };
            fields.push((name.as_str(), text));
        }
        let parsed = parse_entry(fields.iter().map(|(n, v)| (*n, v.as_str())));
        out.push(parsed.map_err(|e| entry(e.to_string()))?);
    }
    Ok(out)
}
