//! Words of the output shared by the commands, the test runner and the
//! console.

use std::fmt::Display;

/// A count with its noun in the number it takes: `1 step`, `2 steps`.
pub fn plural<N: Display + PartialEq + From<u8>>(n: N, one: &str, many: &str) -> String {
    let noun = if n == N::from(1) { one } else { many };
    format!("{n} {noun}")
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
}
