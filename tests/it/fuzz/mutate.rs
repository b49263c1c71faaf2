//! A small seeded mutator: real payloads (the samples) bent into hostile ones.
//!
//! Deterministic: the same seed gives the same inputs on every machine, so a failure names
//! the seed and iteration that reproduce it. Structural mutations (on the JSON tree) reach
//! deep into the typed parsers; byte mutations (on the serialized text) exercise the JSON
//! reader itself.

use super::values::{WORDS, nasty, nasty_time};
use serde_json::{Value, json};

/// splitmix64: tiny and good enough to choose mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Object(map) => map.values().map(count_nodes).sum(),
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        _ => 0,
    }
}

/// The node at position `index` in preorder (0 is the root); `index` counts down.
fn nth_node<'a>(value: &'a mut Value, index: &mut usize) -> Option<&'a mut Value> {
    if *index == 0 {
        return Some(value);
    }
    *index -= 1;
    let children: Vec<&'a mut Value> = match value {
        Value::Object(map) => map.values_mut().collect(),
        Value::Array(items) => items.iter_mut().collect(),
        _ => return None,
    };
    for child in children {
        let size = count_nodes(child);
        if *index < size {
            return nth_node(child, index);
        }
        *index -= size;
    }
    None
}

/// A node chosen uniformly: mostly leaves, so most mutations keep the document's shape and
/// test how one value is read.
fn random_node<'a>(root: &'a mut Value, rng: &mut Rng) -> &'a mut Value {
    let mut index = rng.below(count_nodes(root));
    nth_node(root, &mut index).expect("every index below the count names a node")
}

fn looks_like_a_time(text: &str) -> bool {
    text.len() >= 20 && text.as_bytes()[4] == b'-' && text.contains('T') && text.contains(':')
}

fn time_leaves<'a>(value: &'a mut Value, out: &mut Vec<&'a mut String>) {
    match value {
        Value::String(s) if looks_like_a_time(s) => out.push(s),
        Value::Object(map) => map.values_mut().for_each(|v| time_leaves(v, out)),
        Value::Array(items) => items.iter_mut().for_each(|v| time_leaves(v, out)),
        _ => {}
    }
}

/// Every time in `doc` (or one of them) becomes the same hostile time: a batch of events
/// whose rule compares their times then meets it on every path.
pub fn retime(doc: &mut Value, rng: &mut Rng) {
    let time = nasty_time(rng);
    let mut leaves = Vec::new();
    time_leaves(doc, &mut leaves);
    if leaves.is_empty() {
        return;
    }
    if rng.one_in(2) {
        leaves.into_iter().for_each(|leaf| *leaf = time.to_string());
    } else {
        let i = rng.below(leaves.len());
        *leaves.swap_remove(i) = time.to_string();
    }
}

/// One structural change somewhere in `doc`.
pub fn mutate(doc: &mut Value, rng: &mut Rng, vocabulary: &[String]) {
    let choice = rng.below(10);
    let replacement = nasty(rng, vocabulary);
    let node = random_node(doc, rng);
    match (choice, node) {
        // A time stays a time, but a hostile one: the parsers' arithmetic is under test.
        (0..=3, Value::String(s)) if looks_like_a_time(s) => *s = nasty_time(rng).to_string(),
        (0..=3, node) => *node = replacement,
        (4 | 5, Value::Object(map)) => {
            let key = if rng.one_in(3) {
                rng.pick(WORDS).to_string()
            } else {
                rng.pick(vocabulary).clone()
            };
            map.insert(key, replacement);
        }
        (6, Value::Object(map)) if !map.is_empty() => {
            let key = map.keys().nth(rng.below(map.len())).cloned();
            key.map(|k| map.remove(&k));
        }
        (6 | 7, Value::Array(items)) if !items.is_empty() => {
            let i = rng.below(items.len());
            if rng.one_in(2) {
                items.remove(i);
            } else {
                let copy = items[i].clone();
                let copies = *rng.pick(&[1, 10, 200]);
                items.extend(std::iter::repeat_n(copy, copies));
            }
        }
        (8, Value::String(s)) => match rng.below(4) {
            0 => s.insert(0, *rng.pick(&['+', '-', ' ', '0'])),
            1 => s.truncate(
                s.char_indices()
                    .map(|(i, _)| i)
                    .nth(s.len() / 2)
                    .unwrap_or(0),
            ),
            2 => s.push_str(rng.pick::<&str>(WORDS)),
            _ => *s = s.to_uppercase(),
        },
        (_, node) => {
            let inner = std::mem::take(node);
            *node = if rng.one_in(2) {
                json!([inner])
            } else {
                json!({ "x": inner })
            };
        }
    }
}

/// One change to the serialized bytes: broken JSON, invalid UTF-8, deep nesting, huge
/// numbers.
pub fn mutate_bytes(bytes: &mut Vec<u8>, rng: &mut Rng) {
    let at = rng.below(bytes.len() + 1);
    match rng.below(7) {
        0 => bytes.truncate(at),
        1 => {
            if at < bytes.len() {
                bytes[at] = rng.next() as u8;
            }
        }
        2 => {
            let insert: &[u8] = rng.pick::<&[u8]>(&[
                b"\"".as_slice(),
                b"\\",
                b"{",
                b"]",
                b",",
                b"\\u0000",
                b"\\ud800",
                b"\xff\xfe",
                b"1e999999",
                b"-0",
            ]);
            bytes.splice(at..at, insert.iter().copied());
        }
        3 => {
            let end = (at + rng.below(64)).min(bytes.len());
            let slice = bytes[at..end].to_vec();
            bytes.splice(at..at, slice);
        }
        4 => {
            // Nesting past serde_json's recursion limit (128) and far past it.
            let depth = *rng.pick(&[127, 129, 5_000]);
            let mut nested = vec![b'['; depth];
            nested.extend(std::iter::repeat_n(b']', depth));
            bytes.splice(at..at, nested);
        }
        5 => bytes.clear(),
        _ => {
            // A duplicate of the whole document after it (trailing data).
            let copy = bytes.clone();
            bytes.extend(copy);
        }
    }
}

/// A hostile request body from one of the seeds, at most `max_len` bytes (bodies over a
/// route's limit are another test's subject: here every input must reach its parser).
pub fn body(seeds: &[Value], vocabulary: &[String], rng: &mut Rng, max_len: usize) -> Vec<u8> {
    loop {
        let mut doc = rng.pick(seeds).clone();
        let changes = if rng.one_in(4) {
            retime(&mut doc, rng);
            *rng.pick(&[0, 0, 1])
        } else {
            // Mostly one change, so that most inputs get past the first check they meet.
            *rng.pick(&[1, 1, 1, 2, 3])
        };
        for _ in 0..changes {
            mutate(&mut doc, rng, vocabulary);
        }
        let mut bytes = serde_json::to_vec(&doc).expect("a Value serializes");
        if rng.one_in(5) {
            mutate_bytes(&mut bytes, rng);
        }
        if bytes.len() <= max_len {
            return bytes;
        }
    }
}
