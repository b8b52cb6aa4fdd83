//! POSIX regular expressions (`regcomp` flags as the server passes them on
//! glibc) translated to the `regex` crate's syntax. Only a yes/no match is
//! needed, so leftmost-longest vs leftmost-first makes no difference.

use regex::{Regex, RegexBuilder};

pub const EXTENDED: i64 = 1;
pub const ICASE: i64 = 2;
pub const NEWLINE: i64 = 4;

/// Compiles `pattern` as `regcomp(pattern, flags)` would; `Err` is a pattern
/// the server cannot compile (4), `Ok(Err)` one the sandbox cannot translate (16).
pub fn compile(pattern: &str, flags: i64) -> Result<Result<Regex, String>, String> {
    let newline = flags & NEWLINE != 0;
    let body = match translate(pattern, flags & EXTENDED != 0, newline)? {
        Ok(body) => body,
        Err(why) => return Ok(Err(why)),
    };
    // Without REG_NEWLINE a newline is an ordinary character; with it, `^`/`$`
    // also match at line breaks and `.` does not match one.
    let mut builder = RegexBuilder::new(&body);
    builder
        .case_insensitive(flags & ICASE != 0)
        .dot_matches_new_line(!newline)
        .multi_line(newline)
        .size_limit(8 << 20);
    builder
        .build()
        .map(Ok)
        .map_err(|e| format!("regex does not compile: {e}"))
}

/// The pattern in `regex` syntax. Outer `Err`: invalid POSIX; inner `Err`:
/// valid but not translated (back-references, collating elements).
fn translate(
    pattern: &str,
    extended: bool,
    newline: bool,
) -> Result<Result<String, String>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    // Where `*` is literal in a basic regex and `^` an anchor: at the start of
    // the pattern or a group, or after an alternation.
    let mut at_start = true;
    let mut depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        let was_start = at_start;
        at_start = false;
        match c {
            '[' => {
                let (class, next) = match bracket(&chars, i, newline)? {
                    Ok(parsed) => parsed,
                    Err(why) => return Ok(Err(why)),
                };
                out.push_str(&class);
                i = next;
                continue;
            }
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err("trailing backslash".into());
                };
                i += 2;
                match e {
                    '1'..='9' => return Ok(Err("back-references".into())),
                    '(' | ')' | '{' | '}' | '|' | '+' | '?' if !extended => {
                        match e {
                            '(' => {
                                depth += 1;
                                at_start = true;
                            }
                            ')' => {
                                depth = depth.checked_sub(1).ok_or("unmatched \\)")?;
                            }
                            '|' => at_start = true,
                            _ => {}
                        }
                        out.push(e);
                    }
                    'w' | 'W' | 's' | 'S' | 'b' | 'B' => {
                        out.push('\\');
                        out.push(e);
                    }
                    '<' => out.push_str(r"\b{start}"),
                    '>' => out.push_str(r"\b{end}"),
                    '`' => out.push_str(r"\A"),
                    '\'' => out.push_str(r"\z"),
                    other => push_literal(&mut out, other),
                }
                continue;
            }
            '*' if !extended && was_start => push_literal(&mut out, '*'),
            '^' if extended || was_start => {
                out.push('^');
                at_start = !extended;
            }
            '^' => push_literal(&mut out, '^'),
            '$' if extended || i + 1 == chars.len() || ends_group(&chars, i + 1) => out.push('$'),
            '$' => push_literal(&mut out, '$'),
            '(' | ')' | '{' | '}' | '|' | '+' | '?' if !extended => push_literal(&mut out, c),
            '(' if extended => {
                depth += 1;
                out.push('(');
            }
            ')' if extended => {
                depth = depth.checked_sub(1).ok_or("unmatched )")?;
                out.push(')');
            }
            '.' | '*' | '+' | '?' | '{' | '}' | '|' => out.push(c),
            other => push_literal(&mut out, other),
        }
        i += 1;
    }
    if depth != 0 {
        return Err("unmatched (".into());
    }
    Ok(Ok(out))
}

/// In a basic regex, `$` is an anchor before `\)` or `\|`.
fn ends_group(chars: &[char], i: usize) -> bool {
    chars.get(i) == Some(&'\\') && matches!(chars.get(i + 1), Some(')' | '|'))
}

fn push_literal(out: &mut String, c: char) {
    let mut buf = [0u8; 4];
    out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
}

/// A bracket expression starting at `chars[start] == '['`: the class in
/// `regex` syntax and the index after it.
#[allow(clippy::type_complexity)]
fn bracket(
    chars: &[char],
    start: usize,
    newline: bool,
) -> Result<Result<(String, usize), String>, String> {
    let mut i = start + 1;
    let mut out = String::from("[");
    if chars.get(i) == Some(&'^') {
        out.push('^');
        if newline {
            // With REG_NEWLINE a non-matching list does not match a newline.
            out.push_str(r"\n");
        }
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("unmatched [".into());
        };
        if c == ']' && !first {
            out.push(']');
            return Ok(Ok((out, i + 1)));
        }
        first = false;
        if c == '[' && matches!(chars.get(i + 1), Some(':' | '=' | '.')) {
            let kind = chars[i + 1];
            let close = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == kind && chars[j + 1] == ']')
                .ok_or("unterminated [: :]")?;
            let name: String = chars[i + 2..close].iter().collect();
            match kind {
                ':' => out.push_str(&format!("[:{name}:]")),
                _ if name.chars().count() == 1 => {
                    push_class_char(&mut out, name.chars().next().unwrap_or(' '))
                }
                _ => return Ok(Err("collating elements".into())),
            }
            i = close + 2;
            continue;
        }
        // A range `a-z` (a `-` first or last is literal).
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            let end = chars[i + 2];
            if end < c {
                return Err("invalid range end".into());
            }
            push_class_char(&mut out, c);
            out.push('-');
            push_class_char(&mut out, end);
            i += 3;
            continue;
        }
        push_class_char(&mut out, c);
        i += 1;
    }
}

/// One literal character inside a class (a backslash is literal in POSIX).
fn push_class_char(out: &mut String, c: char) {
    if matches!(c, '\\' | '[' | ']' | '&' | '~' | '-' | '^') {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, flags: i64, text: &str) -> bool {
        compile(pattern, flags).unwrap().unwrap().is_match(text)
    }

    #[test]
    fn basic_regex_treats_plus_as_a_character() {
        assert!(!matches("^hel+o", 0, "hello"));
        assert!(matches("^hel+o", 0, "hel+o"));
        assert!(matches("^hel+o", EXTENDED, "hello"));
        assert!(matches("^hel*o", 0, "hello"));
        assert!(matches(r"^hel\+o", 0, "hello"));
        assert!(matches(r"\(ab\)\{2\}", 0, "abab"));
        assert!(matches("(ab){2}", 0, "(ab){2}"));
        assert!(matches("(ab){2}", EXTENDED, "abab"));
        assert!(matches("*a", 0, "*a"));
        assert!(matches("a^b$c", 0, "a^b$c"));
    }

    #[test]
    fn case_newline_and_classes() {
        assert!(!matches("^HELLO", 0, "hello world"));
        assert!(matches("^HELLO", ICASE, "hello world"));
        assert!(matches("wor.d$", 0, "hello world"));
        assert!(matches("a.b", 0, "a\nb"));
        assert!(!matches("a.b", NEWLINE, "a\nb"));
        assert!(matches("^b", NEWLINE, "a\nb"));
        assert!(!matches("^b", 0, "a\nb"));
        assert!(matches("[[:digit:]]x", 0, "7x"));
        assert!(matches("[]a]", 0, "]"));
        assert!(matches(r"[\]", 0, r"\"));
        assert!(matches("[a-c]z", 0, "bz"));
        assert!(!matches("[^a]", NEWLINE, "\n"));
    }

    #[test]
    fn bad_and_untranslated_patterns() {
        assert!(compile("a(b", EXTENDED).is_err());
        assert!(compile("a\\(b", 0).is_err());
        assert!(compile("[ab", 0).is_err());
        assert!(compile("a\\", 0).is_err());
        assert!(compile("a(b", 0).unwrap().is_ok());
        assert!(compile(r"\(a\)\1", 0).unwrap().is_err());
    }
}
