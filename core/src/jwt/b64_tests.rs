//! The decoder against the `base64` crate's strict URL-safe, unpadded engine.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::prelude::*;

use super::*;

fn agree(text: &[u8]) {
    let theirs = URL_SAFE_NO_PAD.decode(text).ok();
    assert_eq!(decode(text), theirs, "{:?}", String::from_utf8_lossy(text));
    let mut buf = [0u8; 64];
    let ours = decode_to(text, &mut buf).map(|n| buf[..n].to_vec());
    match &theirs {
        Some(bytes) if bytes.len() <= buf.len() => assert_eq!(ours.as_ref(), Some(bytes)),
        _ => assert_eq!(ours, None),
    }
}

#[test]
fn agrees_on_edges() {
    let cases: &[&[u8]] = &[
        b"",
        b"A",
        b"AA",
        b"AB",
        b"AAA",
        b"AAB",
        b"AAE",
        b"AAAA",
        b"____",
        b"-_-_",
        b"QQ",
        b"QR",
        b"QUI",
        b"QUJ",
        b"QQ==",
        b"QQ=",
        b"Q Q",
        b"QQ\n",
        b"+/+/",
        b"AAAAA",
        b"\xff\xff",
        b"eyJhbGciOiJIUzI1NiJ9",
        b"c2ln",
        b"c2lnbmF0dXJl",
        b"AAAA====",
    ];
    for text in cases {
        agree(text);
    }
    for c in 0..=255u8 {
        for at in 0..4 {
            let mut text = *b"QUJDRA";
            text[at] = c;
            agree(&text);
        }
    }
}

#[test]
fn a_short_buffer_is_refused() {
    let mut buf = [0u8; 2];
    assert_eq!(decode_to(b"QUJD", &mut buf), None);
    assert_eq!(decode_to(b"QUI", &mut buf), Some(2));
    assert_eq!(&buf, b"AB");
}

proptest! {
    #[test]
    fn agrees_on_encodings(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let text = URL_SAFE_NO_PAD.encode(&bytes);
        prop_assert_eq!(decode(text.as_bytes()), Some(bytes));
        agree(text.as_bytes());
    }

    #[test]
    fn agrees_on_any_text(text in proptest::collection::vec(
        prop_oneof![
            Just(b'A'), Just(b'Q'), Just(b'z'), Just(b'0'), Just(b'-'), Just(b'_'),
            Just(b'='), Just(b'+'), Just(b'/'), Just(b'.'), any::<u8>(),
        ],
        0..40,
    )) {
        agree(&text);
    }
}
