//! A JSON document that borrows its strings from the bytes it was parsed from: what the
//! webhook reads an AdmissionReview's `object` and `oldObject` into (issue 18).
//!
//! `serde_json::Value` allocates every key and every string and builds a `BTreeMap` node per
//! object; for a review that is read once and dropped, that was the largest cost of our own
//! (~25 % of the engine's CPU per denial, with the allocator). `Doc` allocates one `Vec` per
//! object and array; strings without escapes point into the request body.
//!
//! It reads the same as `Value` where the guard looks: an object's members are sorted by key
//! (the order a `BTreeMap` iterates in, so a diff lists paths in the same order) and the last of
//! duplicate keys wins (as in `serde_json::Map`); numbers are `serde_json::Number`, compared as
//! `Value` compares them.

mod valid;
pub use valid::{read_strict, special_byte};

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

#[derive(Debug, Clone, PartialEq)]
pub enum Doc<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Doc<'a>>),
    Object(Members<'a>),
}

/// The order of keys (`str`'s own), decided by the first byte when it can be: most keys of
/// one object differ there, and this spares the `memcmp` call that sorting and looking up
/// keys otherwise make for every comparison (issue 18).
pub fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    match a.as_bytes().first().cmp(&b.as_bytes().first()) {
        std::cmp::Ordering::Equal => a.cmp(b),
        order => order,
    }
}

/// An object's members, sorted by key, each key once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Members<'a>(Vec<(Cow<'a, str>, Doc<'a>)>);

impl<'a> Members<'a> {
    /// Sorts the members by key; of duplicate keys the last one stays.
    pub fn new(mut members: Vec<(Cow<'a, str>, Doc<'a>)>) -> Self {
        // Stable: duplicates keep their order, so the last of a run is the one written last.
        members.sort_by(|a, b| key_order(&a.0, &b.0));
        if members.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            let mut unique: Vec<(Cow<'a, str>, Doc<'a>)> = Vec::with_capacity(members.len());
            for (key, value) in members {
                match unique.last_mut() {
                    Some((last, slot)) if *last == key => *slot = value,
                    _ => unique.push((key, value)),
                }
            }
            members = unique;
        }
        Members(members)
    }

    pub fn get(&self, key: &str) -> Option<&Doc<'a>> {
        self.0
            .binary_search_by(|(k, _)| key_order(k, key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The members in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Doc<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The members in key order, moved out.
    pub fn into_members(self) -> impl Iterator<Item = (Cow<'a, str>, Doc<'a>)> {
        self.0.into_iter()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> Doc<'a> {
    /// A view of a `serde_json::Value`, borrowing its strings (the explain API's objects, the
    /// metadata cache's parents).
    pub fn from_value(value: &'a Value) -> Doc<'a> {
        match value {
            Value::Null => Doc::Null,
            Value::Bool(b) => Doc::Bool(*b),
            Value::Number(n) => Doc::Number(n.clone()),
            Value::String(s) => Doc::String(Cow::Borrowed(s)),
            Value::Array(items) => Doc::Array(items.iter().map(Doc::from_value).collect()),
            // A `Map` is already sorted and unique.
            Value::Object(map) => Doc::Object(Members(
                map.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Doc::from_value(v)))
                    .collect(),
            )),
        }
    }

    /// The member `key` of an object; `None` for anything else (as `Value::get`).
    pub fn get(&self, key: &str) -> Option<&Doc<'a>> {
        match self {
            Doc::Object(members) => members.get(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Doc::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Doc::Object(_))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Doc::Null)
    }

    /// The value at a JSON pointer (RFC 6901), as `Value::pointer` finds it.
    pub fn pointer(&self, pointer: &str) -> Option<&Doc<'a>> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/').try_fold(self, |node, token| {
            let token = token.replace("~1", "/").replace("~0", "~");
            match node {
                Doc::Object(members) => members.get(&token),
                Doc::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            }
        })
    }
}

/// Read access to a JSON object's fields: what ownership detection needs, for both the
/// webhook's borrowed `Doc` and the `Value`s of watch caches, triggers and audit events.
pub trait JsonFields {
    fn field(&self, key: &str) -> Option<&Self>;
    fn text(&self) -> Option<&str>;
}

impl JsonFields for Value {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
    fn text(&self) -> Option<&str> {
        self.as_str()
    }
}

impl JsonFields for Doc<'_> {
    fn field(&self, key: &str) -> Option<&Self> {
        self.get(key)
    }
    fn text(&self) -> Option<&str> {
        self.as_str()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Doc<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DocSeed(&mut Scratch::default()).deserialize(deserializer)
    }
}

/// Where one parse gathers the members of its objects and the items of its arrays before
/// moving them into a `Vec` of exactly their number: no `Vec` grows (JSON gives no length up
/// front), none holds spare capacity, and an empty one allocates nothing. Nested values push
/// after their parent's pending ones and take theirs off the end, like a stack.
#[derive(Default)]
struct Scratch<'a> {
    members: Vec<(Cow<'a, str>, Doc<'a>)>,
    items: Vec<Doc<'a>>,
}

struct DocSeed<'s, 'a>(&'s mut Scratch<'a>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for DocSeed<'_, 'a> {
    type Value = Doc<'a>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Doc<'a>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for DocSeed<'_, 'a> {
    type Value = Doc<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Doc<'a>, E> {
        Ok(Doc::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Doc<'a>, E> {
        Ok(Doc::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Doc<'a>, E> {
        Ok(Doc::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Doc<'a>, E> {
        Ok(Number::from_f64(v).map_or(Doc::Null, Doc::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Doc<'a>, E> {
        Ok(Doc::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Doc<'a>, E> {
        Ok(Doc::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Doc<'a>, E> {
        Ok(Doc::String(Cow::Owned(v)))
    }

    fn visit_none<E>(self) -> Result<Doc<'a>, E> {
        Ok(Doc::Null)
    }

    fn visit_unit<E>(self) -> Result<Doc<'a>, E> {
        Ok(Doc::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Doc<'a>, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc<'a>, A::Error> {
        let scratch = self.0;
        let start = scratch.items.len();
        while let Some(item) = seq.next_element_seed(DocSeed(&mut *scratch))? {
            scratch.items.push(item);
        }
        Ok(Doc::Array(scratch.items.drain(start..).collect()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc<'a>, A::Error> {
        let scratch = self.0;
        let start = scratch.members.len();
        while let Some(Key(key)) = map.next_key()? {
            let value = map.next_value_seed(DocSeed(&mut *scratch))?;
            scratch.members.push((key, value));
        }
        Ok(Doc::Object(Members::new(
            scratch.members.drain(start..).collect(),
        )))
    }
}

/// An object key, borrowed when it has no escapes (serde's own `Cow<str>` always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests;
