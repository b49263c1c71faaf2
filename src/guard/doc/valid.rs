//! The webhook's own JSON reader (issue 18): a review body read in one pass into a [`Doc`],
//! without serde's visitor calls, at under half their cost.
//!
//! It is strict where serde_json is strict (the grammar, control characters and escapes in
//! strings, the nesting limit of 128; the body is already known to be UTF-8) and builds the
//! `Doc` that `serde_json::from_str::<Doc>` builds: the same borrowed and copied strings, the
//! same numbers (the few it does not read in place, serde_json reads), the same members.
//! Anything it does not expect (bad JSON, a lone surrogate, a duplicate key) makes it give up
//! with `None`, and the caller reads the body with serde_json instead; so a gap here costs
//! time, never a different answer or error. A test compares the two readers.

use super::{Doc, Members, Scratch};
use serde_json::Number;
use std::borrow::Cow;

/// The deepest nesting serde_json reads (its limit of 128 counts the value that exceeds it).
const MAX_DEPTH: usize = 127;

/// The document in `text`, or `None` (see the module's comment).
pub fn read_strict(text: &str) -> Option<Doc<'_>> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
        depth: 0,
        scratch: Scratch::default(),
    };
    let doc = reader.value()?;
    reader.skip_space();
    (reader.at == reader.bytes.len()).then_some(doc)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    depth: usize,
    scratch: Scratch<'a>,
}

impl<'a> Reader<'a> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after white space, consumed.
    fn next(&mut self) -> Option<u8> {
        self.skip_space();
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn value(&mut self) -> Option<Doc<'a>> {
        match self.next()? {
            b'{' => self.nested(Self::object),
            b'[' => self.nested(Self::array),
            b'"' => self.string().map(Doc::String),
            b't' => self.literal(b"rue", Doc::Bool(true)),
            b'f' => self.literal(b"alse", Doc::Bool(false)),
            b'n' => self.literal(b"ull", Doc::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn nested(&mut self, read: fn(&mut Self) -> Option<Doc<'a>>) -> Option<Doc<'a>> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let doc = read(self);
        self.depth -= 1;
        doc
    }

    fn literal(&mut self, rest: &[u8], doc: Doc<'a>) -> Option<Doc<'a>> {
        let end = self.at + rest.len();
        (self.bytes.get(self.at..end)? == rest).then(|| {
            self.at = end;
            doc
        })
    }

    /// After `{`. Members gather on the scratch stack, as in `DocSeed::visit_map`.
    fn object(&mut self) -> Option<Doc<'a>> {
        let start = self.scratch.members.len();
        let mut next = self.next()?;
        if next != b'}' {
            loop {
                if next != b'"' {
                    return None;
                }
                let key = self.string()?;
                if self.next()? != b':' {
                    return None;
                }
                let value = self.value()?;
                self.scratch.members.push((key, value));
                match self.next()? {
                    b',' => next = self.next()?,
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        let count = self.scratch.members.len() - start;
        let members = Members::new(self.scratch.members.drain(start..).collect());
        // A duplicate key: serde refuses it in the review's own fields, so serde decides.
        (members.len() == count).then_some(Doc::Object(members))
    }

    /// After `[`.
    fn array(&mut self) -> Option<Doc<'a>> {
        let start = self.scratch.items.len();
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
        } else {
            loop {
                let item = self.value()?;
                self.scratch.items.push(item);
                match self.next()? {
                    b',' => {}
                    b']' => break,
                    _ => return None,
                }
            }
        }
        Some(Doc::Array(self.scratch.items.drain(start..).collect()))
    }

    /// After the opening quote: borrowed when it holds no escape, as serde_json gives it.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at;
        let end = start + special_byte(&self.bytes[start..])?;
        match self.bytes[end] {
            b'"' => {
                self.at = end + 1;
                Some(Cow::Borrowed(self.text.get(start..end)?))
            }
            b'\\' => {
                self.at = end;
                self.escaped_string(start)
            }
            // Control characters must be escaped (serde_json refuses them too).
            _ => None,
        }
    }

    /// A string with escapes, decoded into a copy; `at` is on its first backslash.
    fn escaped_string(&mut self, start: usize) -> Option<Cow<'a, str>> {
        let mut out = String::from(self.text.get(start..self.at)?);
        loop {
            match *self.bytes.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    self.at += 1;
                    let escape = *self.bytes.get(self.at)?;
                    self.at += 1;
                    out.push(match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    });
                }
                0..=0x1f => return None,
                _ => {
                    // Up to the next quote, backslash or control character, as text.
                    let run = special_byte(&self.bytes[self.at..])?;
                    out.push_str(self.text.get(self.at..self.at + run)?);
                    self.at += run;
                }
            }
        }
    }

    /// After `\u`: one character, from a surrogate pair when it takes two escapes. A lone
    /// surrogate is left to serde_json (`None`).
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if (0xDC00..0xE000).contains(&first) {
            return None;
        }
        if !(0xD800..0xDC00).contains(&first) {
            return char::from_u32(first);
        }
        if self.bytes.get(self.at..self.at + 2)? != b"\\u" {
            return None;
        }
        self.at += 2;
        let second = self.hex4()?;
        if !(0xDC00..0xE000).contains(&second) {
            return None;
        }
        char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        self.at += 4;
        digits.iter().try_fold(0, |code, &digit| {
            Some(code * 16 + char::from(digit).to_digit(16)?)
        })
    }

    /// After the first byte of a number. An integer of up to 18 digits without a leading
    /// zero is read here; anything else (fractions, exponents, long integers, `-0`, bad
    /// numbers) is read by serde_json on its own, as it reads it inside a document.
    fn number(&mut self) -> Option<Doc<'a>> {
        let start = self.at - 1;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
        }
        let token = self.text.get(start..self.at)?;
        let (negative, digits) = match token.strip_prefix('-') {
            Some(digits) => (true, digits),
            None => (false, token),
        };
        let plain = (1..=18).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (!digits.starts_with('0') || (digits == "0" && !negative));
        if plain {
            let value = digits.parse::<u64>().ok()?;
            return Some(Doc::Number(if negative {
                Number::from(-i64::try_from(value).ok()?)
            } else {
                Number::from(value)
            }));
        }
        match serde_json::from_str::<Doc>(token).ok()? {
            Doc::Number(number) => Some(Doc::Number(number)),
            _ => None,
        }
    }
}

/// Where the first quote, backslash or control character of `bytes` is: eight bytes at a
/// time (the bit tricks of "Bit Twiddling Hacks", exact for the first match), as most strings
/// of a Kubernetes object are longer than eight bytes and hold none until their end.
pub fn special_byte(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_in = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        // Always eight bytes: `chunks_exact`.
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_le_bytes(chunk);
        let found = zero_in(word ^ (ONES * u64::from(b'"')))
            | zero_in(word ^ (ONES * u64::from(b'\\')))
            // Bytes under 0x20: (byte - 0x20) borrows into its high bit.
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGHS);
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let rest = chunks.remainder();
    rest.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|at| offset + at)
}

#[cfg(test)]
mod tests;
