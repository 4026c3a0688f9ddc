//! Strict JSON for untrusted input: duplicate keys, deep nesting and size refused in one pass.
#![forbid(unsafe_code)]

use std::fmt;

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
    /// Not JSON (RFC 8259), including numbers out of `f64` range and trailing bytes.
    Syntax,
    /// Valid JSON whose top level is not an object.
    NotObject,
    /// An object names the same member twice (after unescaping), at any depth.
    DuplicateKey,
    TooDeep,
    TooManyMembers,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonError::Syntax => "invalid json",
            JsonError::NotObject => "not a json object",
            JsonError::DuplicateKey => "duplicate member name",
            JsonError::TooDeep => "nested too deeply",
            JsonError::TooManyMembers => "too many members",
        })
    }
}

impl std::error::Error for JsonError {}

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
        let depth = self.budget.enter(self.depth)?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            self.budget.count()?;
            if map.contains_key(&key) {
                return Err(self.budget.fail(JsonError::DuplicateKey));
            }
            let value = access.next_value_seed(ValueSeed {
                budget: &mut *self.budget,
                depth,
            })?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
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
            (b"{\"a\":1e400}", JsonError::Syntax),
            (b"{\"a\":-1e400}", JsonError::Syntax),
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
    fn keeps_values() {
        let map = parse(br#"{"s":"a\"b","n":[1,{"x":false}]}"#).unwrap();
        assert_eq!(map["s"], "a\"b");
        assert_eq!(map["n"][1]["x"], false);
    }
}
