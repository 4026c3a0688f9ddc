//! Strict JSON for untrusted input: duplicate keys, deep nesting and size refused in one pass.
#![forbid(unsafe_code)]

use std::cell::OnceCell;
use std::fmt;
use std::ops::Deref;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Bounds on a document. Depth counts containers: `{}` is depth 1, `{"a":[]}` depth 2.
/// Members count object members and array elements at every level, in total.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_members: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum JsonError {
    /// Not JSON (RFC 8259), including trailing bytes. Numbers of any size or precision are
    /// JSON: they keep their text (`1e400`, `18446744073709551616`, `-0`, `1.0`).
    Syntax,
    /// Valid JSON whose top level is not an object.
    NotObject,
    /// An object names the same member twice (after unescaping), at any depth.
    DuplicateKey,
    TooDeep,
    TooManyMembers,
    /// A member named [`NUMBER_TOKEN`]: serde_json's own marker for a number's text.
    ReservedKey,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonError::Syntax => "invalid json",
            JsonError::NotObject => "not a json object",
            JsonError::DuplicateKey => "duplicate member name",
            JsonError::TooDeep => "nested too deeply",
            JsonError::TooManyMembers => "too many members",
            JsonError::ReservedKey => "reserved member name",
        })
    }
}

impl std::error::Error for JsonError {}

/// With serde_json's `arbitrary_precision` feature (Cargo.toml) the deserializer hands a
/// number that fits neither `u64` nor `i64` to `visit_map`, as a one-member map: this key,
/// and the number's text as an owned `String` (serde_json's own `Value` reads it the same
/// way; the test `numbers_keep_their_text` fails should serde_json change it). A JSON object
/// naming this member is refused, so it can never pass for a number.
pub const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Parses `bytes` as one JSON object under `limits`.
pub fn parse_object(bytes: &[u8], limits: Limits) -> Result<Map<String, Value>, JsonError> {
    let mut budget = Budget {
        limits,
        members: 0,
        error: None,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = ValueSeed {
        budget: &mut budget,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    match parsed {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JsonError::NotObject),
        Err(_) => Err(budget.error.unwrap_or(JsonError::Syntax)),
    }
}

/// A JSON object's text that passed [`super::scan::scan_object`] under `limits`, whose
/// `serde_json` tree is built on first use (variables, identity headers) and then kept.
pub struct LazyJson {
    text: String,
    limits: Limits,
    tree: OnceCell<Map<String, Value>>,
}

impl LazyJson {
    /// `text` must have scanned under `limits`: [`parse_object`] then accepts it too (the
    /// fuzz target `json` holds the two to each other; an empty object stands in otherwise).
    pub fn new(text: String, limits: Limits) -> Self {
        Self {
            text,
            limits,
            tree: OnceCell::new(),
        }
    }

    /// The document's JSON text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Deref for LazyJson {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Map<String, Value> {
        self.tree
            .get_or_init(|| parse_object(self.text.as_bytes(), self.limits).unwrap_or_default())
    }
}

impl fmt::Debug for LazyJson {
    /// Leaves out the content: a token's claims never reach logs through `Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyJson")
            .field("len", &self.text.len())
            .field("parsed", &self.tree.get().is_some())
            .finish_non_exhaustive()
    }
}

/// What the document has used so far, and the first limit it broke. serde's error type is
/// opaque, so the precise reason is kept here and the parser is stopped with a custom error.
struct Budget {
    limits: Limits,
    members: usize,
    error: Option<JsonError>,
}

impl Budget {
    fn fail<E: de::Error>(&mut self, error: JsonError) -> E {
        self.error = Some(error);
        E::custom(error)
    }

    fn enter<E: de::Error>(&mut self, depth: usize) -> Result<usize, E> {
        let depth = depth + 1;
        if depth > self.limits.max_depth {
            return Err(self.fail(JsonError::TooDeep));
        }
        Ok(depth)
    }

    fn count<E: de::Error>(&mut self) -> Result<(), E> {
        self.members += 1;
        if self.members > self.limits.max_members {
            return Err(self.fail(JsonError::TooManyMembers));
        }
        Ok(())
    }
}

/// Builds a [`Value`] while enforcing the budget; `depth` is that of the enclosing container.
struct ValueSeed<'b> {
    budget: &'b mut Budget,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.budget.enter(self.depth)?;
        let mut items = Vec::new();
        loop {
            let seed = ValueSeed {
                budget: &mut *self.budget,
                depth,
            };
            let Some(item) = seq.next_element_seed(seed)? else {
                break;
            };
            self.budget.count()?;
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut next = access.next_key::<String>()?;
        if next.as_deref() == Some(NUMBER_TOKEN) {
            // Refused unless the value is serde_json's owned number text (see NUMBER_TOKEN).
            self.budget.error = Some(JsonError::ReservedKey);
            let number = access.next_value_seed(NumberText)?;
            self.budget.error = None;
            return Ok(Value::Number(number));
        }
        let depth = self.budget.enter(self.depth)?;
        let mut map = Map::new();
        while let Some(key) = next {
            self.budget.count()?;
            if key == NUMBER_TOKEN {
                return Err(self.budget.fail(JsonError::ReservedKey));
            }
            if map.contains_key(&key) {
                return Err(self.budget.fail(JsonError::DuplicateKey));
            }
            let value = access.next_value_seed(ValueSeed {
                budget: &mut *self.budget,
                depth,
            })?;
            map.insert(key, value);
            next = access.next_key::<String>()?;
        }
        Ok(Value::Object(map))
    }
}

/// The text of a number, as serde_json passes it: an owned `String` (a JSON string value
/// arrives through `visit_str` or `visit_borrowed_str`, which are refused).
struct NumberText;

impl<'de> DeserializeSeed<'de> for NumberText {
    type Value = Number;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Number, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for NumberText {
    type Value = Number;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the text of a json number")
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Number, E> {
        text.parse().map_err(E::custom)
    }

    /// A JSON string (borrowed or unescaped): a member named the marker, refused.
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Number, E> {
        Err(E::custom("a json string is not a number's text"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_depth: 4,
        max_members: 8,
    };

    fn parse(s: &[u8]) -> Result<Map<String, Value>, JsonError> {
        parse_object(s, LIMITS)
    }

    #[test]
    fn accepts() {
        let cases: &[(&[u8], usize)] = &[
            (b"{}", 0),
            (b" \t\r\n{ } \n", 0),
            (br#"{"a":1,"b":"x","c":null,"d":true,"e":1.5,"f":-0}"#, 6),
            (br#"{"a":{"b":{"c":[]}}}"#, 1),
            (br#"{"a":[1,2,3,4,5,6,7]}"#, 1),
            (br#"{"n":18446744073709551615,"m":-9223372036854775808}"#, 2),
            (br#"{"big":1e308,"tiny":1e-400}"#, 2),
            (br#"{"huge":1e400,"neg":-1e400,"n":1e999999999}"#, 3),
            (br#"{"a":1,"b":{"$serde_json::private::Numbe":"5"}}"#, 2),
            (br#"{"\u00e9":"\u00e9","e":2}"#, 2),
            (br#"{"A":1,"a":2}"#, 2),
        ];
        for &(input, len) in cases {
            let map =
                parse(input).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(input)));
            assert_eq!(map.len(), len, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn rejects() {
        let deep_ok = br#"{"a":{"b":{"c":{}}}}"#;
        assert!(parse(deep_ok).is_ok());
        let many: String = format!(
            "{{{}}}",
            (0..9)
                .map(|i| format!("\"k{i}\":{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let bomb = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let cases: &[(&[u8], JsonError)] = &[
            (b"", JsonError::Syntax),
            (b"   ", JsonError::Syntax),
            (b"{", JsonError::Syntax),
            (b"{}{}", JsonError::Syntax),
            (b"{} x", JsonError::Syntax),
            (b"{\"a\":1,}", JsonError::Syntax),
            (b"{'a':1}", JsonError::Syntax),
            (b"{a:1}", JsonError::Syntax),
            (b"{\"a\":NaN}", JsonError::Syntax),
            (b"{\"a\":Infinity}", JsonError::Syntax),
            (b"{\"a\":1.}", JsonError::Syntax),
            (b"{\"a\":.5}", JsonError::Syntax),
            (b"{\"a\":1e}", JsonError::Syntax),
            (b"{\"a\":+1}", JsonError::Syntax),
            (b"{\"a\":-}", JsonError::Syntax),
            (b"{\"a\":01}", JsonError::Syntax),
            (b"{\"a\":1}/*c*/", JsonError::Syntax),
            (b"\xef\xbb\xbf{}", JsonError::Syntax),
            (b"{\"a\":\"\xff\"}", JsonError::Syntax),
            (b"{\"a\":\"\\ud800\"}", JsonError::Syntax),
            (b"{\"a\":\"x\ny\"}", JsonError::Syntax),
            (b"{\"a\":1}\0", JsonError::Syntax),
            (b"[]", JsonError::NotObject),
            (b"[{}]", JsonError::NotObject),
            (b"\"{}\"", JsonError::NotObject),
            (b"1", JsonError::NotObject),
            (b"null", JsonError::NotObject),
            (b"true", JsonError::NotObject),
            (br#"{"a":1,"a":1}"#, JsonError::DuplicateKey),
            (br#"{"a":1,"\u0061":2}"#, JsonError::DuplicateKey),
            (
                "{\"\\u00e9\":1,\"\u{e9}\":2}".as_bytes(),
                JsonError::DuplicateKey,
            ),
            (br#"{"x":{"b":1,"b":2}}"#, JsonError::DuplicateKey),
            (br#"{"x":[{"c":{"d":1,"d":1}}]}"#, JsonError::DuplicateKey),
            (br#"{"a":{"b":{"c":{"d":{}}}}}"#, JsonError::TooDeep),
            (br#"{"a":[[[[1]]]]}"#, JsonError::TooDeep),
            (many.as_bytes(), JsonError::TooManyMembers),
            (br#"{"a":[1,2,3,4,5,6,7,8]}"#, JsonError::TooManyMembers),
            (bomb.as_bytes(), JsonError::TooDeep),
            // serde_json's number marker, written as a member, never passes for a number.
            (
                br#"{"$serde_json::private::Number":"5"}"#,
                JsonError::ReservedKey,
            ),
            (
                br#"{"a":{"$serde_json::private::Number":"5"}}"#,
                JsonError::ReservedKey,
            ),
            (
                br#"{"a":{"\u0024serde_json::private::Number":"5"}}"#,
                JsonError::ReservedKey,
            ),
            (
                br#"{"a":{"$serde_json::private::Number":5}}"#,
                JsonError::ReservedKey,
            ),
            (
                br#"{"a":{"$serde_json::private::Number":{}}}"#,
                JsonError::ReservedKey,
            ),
            (
                br#"{"a":{"b":1,"$serde_json::private::Number":"5"}}"#,
                JsonError::ReservedKey,
            ),
        ];
        for &(input, expected) in cases {
            assert_eq!(
                parse(input),
                Err(expected),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn numbers_keep_their_text() {
        for text in [
            "0",
            "-0",
            "42",
            "-7",
            "1.0",
            "-0.0",
            "2.50",
            "1e+3",
            "1e-400",
            "1e+400",
            "-1e+400",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "123456789012345678901234567890.5e-7",
        ] {
            let doc = format!(r#"{{"n":{text},"a":[{text}],"o":{{"n":{text}}}}}"#);
            let map = parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
            for v in [&map["n"], &map["a"][0], &map["o"]["n"]] {
                let Value::Number(n) = v else {
                    panic!("{text}: {v:?} is not a number")
                };
                assert_eq!(n.to_string(), text);
            }
            assert_eq!(
                Value::Object(map),
                serde_json::from_str::<Value>(&doc).unwrap()
            );
        }
        // The one rewrite: serde_json spells every exponent `e` and a sign.
        for (text, kept) in [("1e3", "1e+3"), ("1E3", "1e+3"), ("2.5E-7", "2.5e-7")] {
            let map = parse(format!(r#"{{"n":{text}}}"#).as_bytes()).unwrap();
            assert_eq!(map["n"].to_string(), kept);
        }
        // A number is no container: it counts toward neither limit.
        assert!(parse(br#"{"a":{"b":{"c":{"d":1.5}}}}"#).is_ok());
        assert!(parse(br#"{"a":[1.5,2.5,3.5,4.5,5.5,6.5,7.5]}"#).is_ok());
        // Times still read as numbers.
        let map = parse(br#"{"exp":1.7e9,"big":18446744073709551616}"#).unwrap();
        assert_eq!(map["exp"].as_f64(), Some(1.7e9));
        assert_eq!(map["big"].as_f64(), Some(18446744073709551616.0));
        assert_eq!(map["big"].as_u64(), None);
    }

    #[test]
    fn keeps_values() {
        let map = parse(br#"{"s":"a\"b","n":[1,{"x":false}]}"#).unwrap();
        assert_eq!(map["s"], "a\"b");
        assert_eq!(map["n"][1]["x"], false);
    }
}
