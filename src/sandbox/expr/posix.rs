//! POSIX regular expressions as the server runs them: the C library's own
//! `regcomp`, given the expression's flags unchanged, and `regexec` for a
//! yes/no match. Every corner of the syntax (basic vs extended, glibc's
//! extensions and limits, back-references) is then what the server does.
//! Like the server, the process sets no locale: the C locale matches byte
//! by byte.

use std::ffi::{CString, c_int};
use std::sync::Arc;

/// A compiled pattern; clones share it.
#[derive(Clone)]
pub struct Regex(Arc<Compiled>);

struct Compiled {
    pattern: String,
    /// Boxed: `regcomp` keeps pointers into what it was given to fill.
    re: Box<libc::regex_t>,
}

// SAFETY: a compiled pattern is only read after `regcomp`, and glibc's
// `regexec` takes the pattern's own lock around its shared state.
unsafe impl Send for Compiled {}
unsafe impl Sync for Compiled {}

impl std::fmt::Debug for Regex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Regex({:?})", self.0.pattern)
    }
}

impl Regex {
    /// `regcomp(pattern, flags)`; `Err` is the C library's reason for a
    /// pattern it refuses (the server answers 4).
    pub fn new(pattern: &str, flags: i64) -> Result<Regex, String> {
        let c_pattern = c_string(pattern.as_bytes());
        // SAFETY: an all-zero regex_t is a valid argument to fill.
        let mut re: Box<libc::regex_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `re` is writable and `c_pattern` NUL-terminated.
        let rc = unsafe { libc::regcomp(&mut *re, c_pattern.as_ptr(), flags as c_int) };
        if rc != 0 {
            return Err(format!("regex does not compile: {}", error_text(rc, &re)));
        }
        Ok(Regex(Arc::new(Compiled {
            pattern: pattern.to_string(),
            re,
        })))
    }

    pub fn is_match(&self, text: &[u8]) -> bool {
        let text = c_string(text);
        // SAFETY: the pattern was compiled; no match positions are asked for.
        unsafe { libc::regexec(&*self.0.re, text.as_ptr(), 0, std::ptr::null_mut(), 0) == 0 }
    }
}

impl Drop for Compiled {
    fn drop(&mut self) {
        // SAFETY: compiled by `regcomp` (a refused pattern is never kept).
        unsafe { libc::regfree(&mut *self.re) }
    }
}

/// The bytes as C sees them: up to their first NUL.
fn c_string(text: &[u8]) -> CString {
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    CString::new(&text[..end]).expect("no NUL before the end")
}

fn error_text(rc: c_int, re: &libc::regex_t) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its length; regerror NUL-terminates.
    unsafe { libc::regerror(rc, re, buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    // glibc's regcomp flags, as the expression carries them.
    const EXTENDED: i64 = 1;
    const ICASE: i64 = 2;
    const NEWLINE: i64 = 4;

    fn matches(pattern: &str, flags: i64, text: &str) -> bool {
        Regex::new(pattern, flags)
            .unwrap()
            .is_match(text.as_bytes())
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
        assert!(matches(r"\(a\)\1", 0, "aa"));
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

    /// What glibc's `regcomp` refuses and accepts, where other regex
    /// dialects differ.
    #[test]
    fn the_c_library_decides_what_compiles() {
        for refused in [
            "a(b",
            "[ab",
            "a\\",
            "(?i)ABC",
            "(?:a)bc",
            "[[:foo:]]",
            "b{99999}",
        ] {
            assert!(Regex::new(refused, EXTENDED).is_err(), "{refused}");
        }
        assert!(Regex::new("a\\(b", 0).is_err());
        assert!(matches("a(b", 0, "a(b"));
        assert!(matches("^ab{,2}c$", EXTENDED, "abbc"));
        assert!(matches("abc)", EXTENDED, "abc)"));
        // Bytes, not characters, in the C locale.
        assert!(!matches("^.{5}$", EXTENDED, "héllo"));
        assert!(matches("^.{6}$", EXTENDED, "héllo"));
    }
}
