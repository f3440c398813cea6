//! Text normalisation (see the crate docs, "Normalisation").

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Whether `c` is a C0 control character that ingest refuses (everything below U+0020 except tab,
/// line feed and carriage return; carriage returns become line feeds).
#[inline]
pub(crate) fn is_refused_control(c: char) -> bool {
    c < '\u{20}' && c != '\t' && c != '\n' && c != '\r'
}

/// Normalise a text field. Deterministic and idempotent (`normalize(normalize(s)) == normalize(s)`):
///
/// 1. every U+FEFF is removed (a byte-order mark at the start; elsewhere the deprecated
///    zero-width no-break space);
/// 2. CRLF and lone CR become LF;
/// 3. C0 control characters other than tab and LF are removed ([`crate::parse`] refuses them
///    before this point, so this only matters for text that did not come through `parse`);
/// 4. Unicode NFC (canonical composition), so that `é` typed as one code point or as `e` + U+0301
///    gives the same row and the same leaf;
/// 5. trailing whitespace is trimmed on every line (leading whitespace is kept: code and poetry);
/// 6. leading and trailing blank lines are removed and runs of more than 2 blank lines are cut to 2.
pub fn normalize(s: &str) -> String {
    // 1–3: one pass.
    let mut t = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{feff}' => {}
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                t.push('\n');
            }
            c if is_refused_control(c) => {}
            c => t.push(c),
        }
    }
    // 4.
    if is_nfc_quick(t.chars()) != IsNormalized::Yes {
        t = t.nfc().collect();
    }
    // 5–6.
    let mut out = String::with_capacity(t.len());
    let mut blank_run = 0usize;
    for line in t.split('\n') {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            for _ in 0..=blank_run.min(2) {
                out.push('\n');
            }
        }
        blank_run = 0;
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cases() {
        assert_eq!(normalize("\u{feff}Hello\r\nworld\rend"), "Hello\nworld\nend");
        assert_eq!(normalize("a  \t\nb \u{a0}"), "a\nb");
        assert_eq!(normalize("\n\n  \nfirst\n\n\n\n\nsecond\n\n"), "first\n\n\nsecond");
        assert_eq!(normalize("one\n\ntwo"), "one\n\ntwo");
        assert_eq!(normalize("  indented\n\tcode"), "  indented\n\tcode");
        assert_eq!(normalize("nul\0here\x07"), "nulhere");
        // NFC: decomposed é (e + U+0301) is composed.
        assert_eq!(normalize("caf\u{65}\u{301}"), "caf\u{e9}");
        // Compatibility characters are not folded (that would be NFKC).
        assert_eq!(normalize("ﬁ"), "ﬁ");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize(" \n \r\n "), "");
    }

    proptest! {
        #[test]
        fn idempotent(s in "[a-c \\t\\r\\n\\u{0}\\u{7}\\u{feff}\\u{301}\\u{e9}e\\u{a0}]{0,40}") {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once.clone());
            prop_assert!(!once.contains('\r'));
            prop_assert!(!once.starts_with('\n') && !once.ends_with('\n'));
        }
    }
}
