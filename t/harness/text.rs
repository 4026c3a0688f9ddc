//! Text helpers for failure messages and log scans: numbered lines, patterns, bad markers.

/// Log markers that fail a test unless allowed.
pub const BAD_LOG: &[&str] = &["[alert]", "[crit]", "[emerg]", "panicked"];

/// The text with 1-based line numbers, for failure messages.
pub fn numbered(text: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| format!("{:4} {l}\n", i + 1))
        .collect()
}

/// Does `line` match `pattern`? `*` in a pattern matches any run of characters; without `*`
/// it is a plain substring test. The pattern may match anywhere in the line.
pub fn matches(line: &str, pattern: &str) -> bool {
    let mut rest = line;
    for piece in pattern.split('*') {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    true
}
