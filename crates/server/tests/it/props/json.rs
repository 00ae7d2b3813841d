//! JSON bodies of every endpoint that reads one, random or mutated from a
//! valid body: fields dropped, retyped, added, numbers at and past their
//! edges, text cut anywhere.

use proptest::prelude::*;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Harness, Req, garbage_segment};
use crate::common;

/// Numbers no `serde_json::Value` holds, written into the text in place of
/// a marker string.
const RAW_NUMBERS: [&str; 6] = [
    "18446744073709551616",
    "-0",
    "1e400",
    "-9223372036854775809",
    "4194304.0",
    "1E3",
];

fn marker(i: usize) -> String {
    format!("\u{1}raw{i}")
}

/// Values of every JSON type, with the edges of the fields' types.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![
            0u64,
            1,
            100,
            4_194_304,
            8_388_608,
            1 << 30,
            (1 << 30) + 4_194_304,
            super::MAX_FILE,
            super::MAX_FILE + 1,
            u32::MAX as u64,
            u64::MAX,
        ])
        .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        (0..RAW_NUMBERS.len()).prop_map(|i| Value::String(marker(i))),
        any::<String>().prop_map(Value::String),
        garbage_segment().prop_map(Value::String),
        "(sha256-4m:)?[0-9a-f]{0,66}".prop_map(Value::String),
        prop::sample::select(vec!["", ".", "..", "/", "a/../b", "text/plain", "x/"])
            .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{0,10}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Values at the edges of what each field takes, of the field's own type.
fn edges(key: &str) -> Vec<Value> {
    let raw = |i: usize| Value::String(marker(i));
    match key {
        "name" => vec![
            json!(""),
            json!(".."),
            json!("/"),
            json!("a/../b"),
            json!("\u{0}\u{7}"),
            json!("ok.txt"),
            json!("x".repeat(1024)),
            json!("x".repeat(1025)),
        ],
        "size" => vec![
            json!(0),
            json!(1),
            json!(super::MAX_FILE),
            json!(super::MAX_FILE + 1),
            json!(u64::MAX),
            json!(-1),
            raw(0),
        ],
        "chunk_size" => vec![
            json!(0),
            json!(1),
            json!(4_194_304),
            json!(5 << 20),
            json!(1u64 << 30),
            json!((1u64 << 30) + 4_194_304),
            json!(u64::MAX),
            raw(4),
        ],
        "hash" => vec![
            json!("sha256-4m:"),
            json!(format!("sha256-4m:{}", "A".repeat(64))),
            json!(format!("sha256-4m:{}", "0".repeat(63))),
            json!(format!("sha256:{}", "0".repeat(64))),
            json!(format!("sha256-4m:{}", "g".repeat(64))),
        ],
        "md5" | "sha256" => vec![
            json!(""),
            json!("0".repeat(31)),
            json!("0".repeat(32)),
            json!("F".repeat(64)),
            json!("0".repeat(65)),
            json!("zz".repeat(16)),
        ],
        "mime" => vec![
            json!(""),
            json!(" "),
            json!("text/plain"),
            json!("x/"),
            json!("not a type"),
            json!("text/plain; charset=utf-8"),
            json!("a/b/c"),
        ],
        "digests" => vec![
            json!([]),
            json!(["0".repeat(64)]),
            json!(["0".repeat(64), "0".repeat(64)]),
            json!(["0".repeat(63)]),
            json!(["G".repeat(64)]),
            json!([1]),
        ],
        "public" => vec![json!(false), json!("true"), json!(1)],
        "expires_in" => vec![
            json!(0),
            json!(1),
            json!(2_592_000),
            json!(2_592_001),
            json!(u64::MAX),
            json!(-1),
            raw(0),
        ],
        _ => vec![Value::Null],
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Remove(prop::sample::Index),
    /// A field gets a value of another kind.
    Set(prop::sample::Index, Value),
    /// A field gets a value at the edge of what it takes.
    Edge(prop::sample::Index, prop::sample::Index),
    Add(String, Value),
}

/// `template` with a few fields dropped, set to other values or added.
fn mutated(template: Value) -> impl Strategy<Value = Value> {
    let mutation = prop_oneof![
        1 => any::<prop::sample::Index>().prop_map(Mutation::Remove),
        1 => (any::<prop::sample::Index>(), value()).prop_map(|(i, v)| Mutation::Set(i, v)),
        4 => (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(i, v)| Mutation::Edge(i, v)),
        1 => ("[a-z_]{1,10}", value()).prop_map(|(k, v)| Mutation::Add(k, v)),
    ];
    prop::collection::vec(mutation, 0..3).prop_map(move |mutations| {
        let mut v = template.clone();
        let object = v.as_object_mut().expect("an object");
        for m in mutations {
            let keys: Vec<String> = object.keys().cloned().collect();
            match m {
                Mutation::Remove(i) if !keys.is_empty() => {
                    object.remove(&keys[i.index(keys.len())]);
                }
                Mutation::Set(i, value) if !keys.is_empty() => {
                    object.insert(keys[i.index(keys.len())].clone(), value);
                }
                Mutation::Edge(i, v) if !keys.is_empty() => {
                    let key = &keys[i.index(keys.len())];
                    let values = edges(key);
                    object.insert(key.clone(), values[v.index(values.len())].clone());
                }
                Mutation::Add(k, value) => {
                    object.insert(k, value);
                }
                _ => {}
            }
        }
        v
    })
}

/// The body's text: marked numbers written out, then maybe cut short or
/// with a byte changed.
fn text(body: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    (
        body,
        prop::option::weighted(
            0.2,
            (any::<prop::sample::Index>(), any::<u8>(), any::<bool>()),
        ),
    )
        .prop_map(|(v, damage)| {
            let mut text = v.to_string();
            for (i, raw) in RAW_NUMBERS.iter().enumerate() {
                text = text.replace(&Value::String(marker(i)).to_string(), raw);
            }
            let mut bytes = text.into_bytes();
            if let Some((at, byte, cut)) = damage {
                let at = at.index(bytes.len() + 1);
                if cut {
                    bytes.truncate(at);
                } else {
                    bytes.insert(at, byte);
                }
            }
            bytes
        })
}

#[test]
fn json_bodies_of_every_endpoint() {
    let h = Harness::new();
    let f = &h.fixtures;
    let data = common::random_bytes(300);
    let create = json!({
        "name": "new.bin",
        "size": data.len(),
        "hash": common::hash(&data),
        "md5": "00112233445566778899aabbccddeeff",
        "sha256": "0".repeat(64),
        "mime": "application/octet-stream",
        "chunk_size": 4_194_304,
    });
    // Two digests where the challenge asks for one: refused at once. A
    // proof of the right shape that fails takes a fixed time (so that its
    // timing tells nothing), which few cases pay.
    let proof = json!({ "digests": ["0".repeat(64), "1".repeat(64)] });
    let endpoints = vec![
        (Method::POST, "/api/v1/uploads".to_owned(), create),
        (
            Method::POST,
            format!("/api/v1/uploads/{}/proof", f.upload),
            proof,
        ),
        (
            Method::PATCH,
            format!("/api/v1/files/{}", f.file),
            json!({ "public": true }),
        ),
        (
            Method::POST,
            format!("/api/v1/files/{}/link", f.file),
            json!({ "expires_in": 3600 }),
        ),
    ];
    let strategy = prop::sample::select(endpoints).prop_flat_map(|(method, path, template)| {
        let body = prop_oneof![3 => mutated(template), 1 => value()];
        (Just(method), Just(path), text(body))
    });
    h.run(400, strategy, |(method, path, body)| {
        let req = Req::new(method, path)
            .header("content-type", "application/json")
            .body(body);
        h.probe(&req).map(|_| ())
    });
}
