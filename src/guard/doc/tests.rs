use super::*;
use serde_json::json;

/// Every way the guard reads a document gives what it gives on the same `Value`.
#[test]
fn a_doc_reads_like_the_value_it_was_parsed_from() {
    let text = r#"{"b":1,"a":{"x~y/z":"w","k":[1,2.5,null,true,"s\"q"]},"b":2,"c":-3,
                  "d":{"escaped\u0041":"v\u00e9"},"e":1e400}"#;
    // 1e400 does not fit an f64: both refuse it the same way.
    assert!(serde_json::from_str::<Doc>(text).is_err());
    assert!(serde_json::from_str::<Value>(text).is_err());
    let text = text.replace("1e400", "1.5e3");
    let doc: Doc = serde_json::from_str(&text).expect("doc");
    let value: Value = serde_json::from_str(&text).expect("value");
    assert_eq!(doc, Doc::from_value(&value));
    assert_eq!(
        doc.get("b"),
        Some(&Doc::Number(2.into())),
        "last duplicate wins"
    );
    let Doc::Object(members) = &doc else {
        panic!("object")
    };
    assert_eq!(
        members.keys().collect::<Vec<_>>(),
        value
            .as_object()
            .expect("object")
            .keys()
            .collect::<Vec<_>>()
    );
    for pointer in [
        "",
        "/a/x~0y~1z",
        "/a/k/4",
        "/a/k/9",
        "/d/escapedA",
        "/e",
        "/zz",
        "a",
    ] {
        assert_eq!(
            doc.pointer(pointer),
            value.pointer(pointer).map(Doc::from_value).as_ref(),
            "{pointer}"
        );
    }
    assert_eq!(doc.pointer("/d/escapedA").and_then(Doc::as_str), Some("vé"));
}

/// Containers nested in every position (each takes its part of the scratch stack) read
/// back as the `Value` does.
#[test]
fn nested_containers_in_every_position_parse_as_values_do() {
    let text = r#"[[1,[2,{"k":[3,{}]}]],[[],{}],{"a":[[4],{"b":{"c":[5,6]}}],"z":[]},7]"#;
    let doc: Doc = serde_json::from_str(text).expect("doc");
    let value: Value = serde_json::from_str(text).expect("value");
    assert_eq!(doc, Doc::from_value(&value));
}

#[test]
fn strings_without_escapes_are_borrowed_from_the_input() {
    let text = r#"{"plain":"text","escaped\n":"a\tb"}"#;
    let doc: Doc = serde_json::from_str(text).expect("doc");
    let Doc::Object(members) = &doc else {
        panic!("object")
    };
    let kinds: Vec<(bool, bool)> = members
        .0
        .iter()
        .map(|(k, v)| {
            let Doc::String(s) = v else { panic!("string") };
            (matches!(k, Cow::Borrowed(_)), matches!(s, Cow::Borrowed(_)))
        })
        .collect();
    // Sorted: "escaped\n" < "plain".
    assert_eq!(kinds, vec![(false, false), (true, true)]);
    assert_eq!(
        doc,
        Doc::from_value(&json!({"plain":"text","escaped\n":"a\tb"}))
    );
}

#[test]
fn numbers_compare_as_values_compare_them() {
    for (a, b) in [
        ("1", "1"),
        ("1", "1.0"),
        ("1.0", "1.00"),
        ("-0", "0"),
        ("1e2", "100"),
    ] {
        let (da, db): (Doc, Doc) = (
            serde_json::from_str(a).expect("a"),
            serde_json::from_str(b).expect("b"),
        );
        let (va, vb): (Value, Value) = (
            serde_json::from_str(a).expect("a"),
            serde_json::from_str(b).expect("b"),
        );
        assert_eq!(da == db, va == vb, "{a} vs {b}");
    }
}
