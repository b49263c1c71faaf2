//! Caller-chosen text shown back (messages, traces, logs, incidents) is clipped: a 1 MiB
//! object name must not become a 1 MiB denial message, log line and incident title.

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
