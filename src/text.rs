//! Words of the output shared by the commands, the test runner and the
//! console.

use std::fmt::Display;

/// A count with its noun in the number it takes: `1 step`, `2 steps`.
pub fn plural<N: Display + PartialEq + From<u8>>(n: N, one: &str, many: &str) -> String {
    let noun = if n == N::from(1) { one } else { many };
    format!("{n} {noun}")
}

/// At most `max` characters of `text` from character `start`, `…` marking
/// each side cut.
pub fn window(text: &str, start: usize, max: usize) -> String {
    let mut out = String::from(if start > 0 { "…" } else { "" });
    let mut chars = text.chars().skip(start);
    out.extend(chars.by_ref().take(max));
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_takes_the_singular() {
        assert_eq!(plural(1usize, "step", "steps"), "1 step");
        assert_eq!(plural(0u64, "value", "values"), "0 values");
        assert_eq!(plural(2u32, "entry", "entries"), "2 entries");
    }

    #[test]
    fn a_window_marks_each_side_it_cuts() {
        assert_eq!(window("abcdef", 0, 6), "abcdef");
        assert_eq!(window("abcdef", 0, 4), "abcd…");
        assert_eq!(window("abcdef", 2, 4), "…cdef");
        assert_eq!(window("abcdef", 1, 3), "…bcd…");
        assert_eq!(window("éèêë", 1, 2), "…èê…");
    }
}
