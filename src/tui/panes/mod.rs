//! The four panes: each holds its state and draws itself.

pub mod apply;
pub mod editor;
pub mod indexes;
pub mod jobs;
pub mod modules;
pub mod results;
pub mod runs;
pub mod samples;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Cuts `text` to `width` terminal cells, marking the cut with `…`.
/// Cells, not characters: a CJK character takes two.
pub fn cut(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// [`cut`] to `width` cells, then padded with spaces to fill them, so the
/// columns after it line up whatever the text's characters are.
pub fn pad(text: &str, width: usize) -> String {
    let mut out = cut(text, width);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(out.width())));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cut_marks_the_cut() {
        assert_eq!(super::cut("abcdef", 4), "abc…");
        assert_eq!(super::cut("abc", 4), "abc");
        // Two cells a character: the cut and the pad count cells.
        assert_eq!(super::cut("日本語", 4), "日…");
        assert_eq!(super::pad("日本", 6), "日本  ");
        assert_eq!(super::pad("日本語", 5), "日本…");
    }
}
