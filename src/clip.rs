//! Caller-chosen text shown back (messages, traces, logs, incidents, error answers) is
//! clipped: a 1 MiB object name must not become a 1 MiB denial message, log line and incident
//! title, nor a 1 MiB map key a 1 MiB error answer. The one helper for all of them.

use std::borrow::Cow;

/// Longest name, namespace, kind, user or Application shown, in bytes (Kubernetes names are
/// at most 253 characters).
pub const SHOWN_MAX: usize = 256;

/// `text` cut at `max` bytes on a character boundary, with `…` when cut.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

/// Longest error message, in bytes: parser errors quote the offending value and name the path
/// of caller-chosen keys, both unbounded.
pub const MESSAGE_MAX: usize = 1024;

/// [`clip`] at [`SHOWN_MAX`].
pub fn shown(text: &str) -> Cow<'_, str> {
    clip(text, SHOWN_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("ééé", 3), "é…");
        assert_eq!(shown(&"k".repeat(1000)).len(), SHOWN_MAX + '…'.len_utf8());
    }
}
