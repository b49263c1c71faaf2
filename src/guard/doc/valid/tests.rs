//! The strict reader against serde_json: whatever it reads, serde_json reads the same way;
//! whatever serde_json refuses, it refuses (and leaves to serde_json).

use super::read_strict;
use crate::guard::doc::Doc;

/// The invariant: `read_strict` gives up, or gives exactly serde_json's document.
fn agrees(text: &str) -> Option<Doc<'_>> {
    let ours = read_strict(text);
    let serde = serde_json::from_str::<Doc>(text);
    if let Some(doc) = &ours {
        match &serde {
            Ok(theirs) => assert_eq!(doc, theirs, "{text:?}"),
            Err(error) => panic!("read {text:?}, which serde_json refuses: {error}"),
        }
    }
    ours
}

#[test]
fn valid_documents_read_as_serde_json_reads_them() {
    for text in [
        r#"{"b":1,"a":{"x~y/z":"w","k":[1,2.5,null,true,false,"s\"q"]},"c":-3}"#,
        " { \"a\" :\t[ ] ,\n\"b\"\r: { } } ",
        r#"{"e":"\u00e9\u4e2d\ud83d\ude00 \\ \/ \b\f\n\r\t","plain":"caf\u00e9 ünïcödé 中文 😀"}"#,
        r#"[0, 7, -7, 123456789012345678, -123456789012345678, 1234567890123456789,
            18446744073709551615, 18446744073709551616, -9223372036854775808, 1.5, -0.25,
            1e3, 1E-3, 2.5e+10, -0, 0.0, 10]"#,
        r#"{"":"","long string with no escapes at all, well past eight bytes":"x"}"#,
        "\"a string of exactly 16\"",
        "true",
        "null",
        "-12",
    ] {
        assert!(agrees(text).is_some(), "gave up on {text:?}");
    }
}

#[test]
fn strings_without_escapes_are_borrowed_and_with_escapes_copied() {
    let doc = read_strict(r#"{"plain":"abc","esc":"a\nb"}"#).expect("doc");
    assert!(matches!(
        doc.get("plain"),
        Some(Doc::String(std::borrow::Cow::Borrowed("abc")))
    ));
    assert!(matches!(doc.get("esc"), Some(Doc::String(std::borrow::Cow::Owned(s))) if s == "a\nb"));
}

#[test]
fn what_serde_json_refuses_is_refused() {
    for text in [
        "",
        " ",
        "{",
        "}",
        "[",
        "[1,]",
        "[,1]",
        "{,}",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        "[1 2]",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "+1",
        "--1",
        "0x10",
        "1e400",
        "tru",
        "nul",
        "fals",
        "truex",
        "[true false]",
        "\"unterminated",
        "\"bad \\x escape\"",
        "\"\\u12G4\"",
        "\"\\u+123\"",
        "\"\\u12\"",
        "\"tab\tinside\"",
        "\"nl\ninside\"",
        "\"\\ud800\"",
        "\"\\ud800\\u0041\"",
        "\"\\udc00\"",
        "[1]x",
        "{} {}",
        "\u{b}1",
        "[\u{c}]",
        "NaN",
        "Infinity",
        "'single'",
    ] {
        assert!(agrees(text).is_none(), "read {text:?}");
    }
}

#[test]
fn duplicate_keys_are_left_to_serde() {
    // serde_json keeps the last of a duplicate key in a document, but refuses a duplicate
    // field of the review itself: the strict reader leaves both to serde.
    assert!(agrees(r#"{"a":1,"a":2}"#).is_none());
    assert!(agrees(r#"{"o":{"k":[{"x":1,"x":1}]}}"#).is_none());
}

#[test]
fn nesting_stops_where_serde_json_stops() {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(agrees(&nested(127)).is_some());
    assert!(agrees(&nested(128)).is_none());
    assert!(serde_json::from_str::<Doc>(&nested(128)).is_err());
    let objects = |depth: usize| format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    assert!(agrees(&objects(127)).is_some());
    assert!(agrees(&objects(128)).is_none());
    assert!(serde_json::from_str::<Doc>(&objects(128)).is_err());
}

/// Every single-byte change of a review (deleted, doubled or replaced by a byte that matters
/// to JSON) keeps the invariant.
#[test]
fn mutated_reviews_keep_the_invariant() {
    let text = include_str!("../../../../tests/fixtures/admission/mutation-seed.json");
    let specials = b"{}[],:\"\\ -+.e0u1\x01\t";
    let mut read = 0;
    for at in 0..text.len() {
        for mutation in 0..specials.len() + 2 {
            let mut bytes = text.as_bytes().to_vec();
            match mutation {
                0 => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, bytes[at]),
                n => bytes[at] = specials[n - 2],
            }
            if let Ok(mutated) = std::str::from_utf8(&bytes) {
                read += usize::from(agrees(mutated).is_some());
            }
        }
    }
    assert!(
        read > text.len(),
        "too few mutations were valid JSON to mean anything: {read}"
    );
}
