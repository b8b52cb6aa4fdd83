//! The four panes: each holds its state and draws itself.

pub mod apply;
pub mod editor;
pub mod indexes;
pub mod jobs;
pub mod modules;
pub mod results;
pub mod runs;
pub mod samples;

/// Cuts `text` to `width` characters, marking the cut with `…`.
pub fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cut_marks_the_cut() {
        assert_eq!(super::cut("abcdef", 4), "abc…");
        assert_eq!(super::cut("abc", 4), "abc");
    }
}
