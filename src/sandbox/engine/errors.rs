//! Lua errors with the server's exact texts.

use mlua::{Error, Lua, Value as Lv};

/// An error raised from a Rust function, prefixed with the calling Lua
/// line (`<chunk>:<line>: `) as `luaL_error` would.
pub(crate) fn raise(lua: &Lua, message: &str) -> Error {
    let place = lua
        .inspect_stack(1, |debug| {
            let line = debug.current_line()?;
            let source = debug.source();
            let short = source.short_src?;
            Some(format!("{short}:{line}: "))
        })
        .flatten()
        .unwrap_or_default();
    Error::RuntimeError(format!("{place}{message}"))
}

/// `bad argument #n to 'f' (T expected, got U)`, positioned.
pub(crate) fn bad_arg(lua: &Lua, n: usize, fname: &str, expected: &str, got: &Lv) -> Error {
    let got = lua_type_name(got);
    raise(
        lua,
        &format!("bad argument #{n} to '{fname}' ({expected} expected, got {got})"),
    )
}

/// The error for a userdata argument of the wrong kind, as the server's
/// checks word it: `userdata expected, got string` for a value that is no
/// userdata at all, `List expected, got Map` for another userdata.
pub(crate) fn bad_userdata_arg(
    lua: &Lua,
    n: usize,
    fname: &str,
    expected: &str,
    got: &Lv,
) -> Error {
    let expected = if matches!(got, Lv::UserData(_)) {
        expected
    } else {
        "userdata"
    };
    bad_arg(lua, n, fname, expected, got)
}

/// A value's type as Lua's messages name it: a userdata by its metatable's
/// `__name` (`List`, `Map`, `Bytes`, `Record`, ...).
pub(crate) fn lua_type_name(value: &Lv) -> String {
    match value {
        Lv::UserData(ud) => ud
            .metatable()
            .and_then(|mt| mt.get::<String>("__name"))
            .unwrap_or_else(|_| "userdata".to_string()),
        Lv::LightUserData(_) => "light userdata".to_string(),
        Lv::Integer(_) | Lv::Number(_) => "number".to_string(),
        other => other.type_name().to_string(),
    }
}

/// An integer argument as `luaL_checkinteger` reads it.
pub(crate) fn int_arg(lua: &Lua, value: &Lv, n: usize, fname: &str) -> mlua::Result<i64> {
    match value {
        Lv::Integer(i) => Ok(*i),
        Lv::Number(f) => {
            if f.fract() == 0.0 && *f >= -9.223_372_036_854_776e18 && *f < 9.223_372_036_854_776e18
            {
                Ok(*f as i64)
            } else {
                Err(raise(
                    lua,
                    &format!(
                        "bad argument #{n} to '{fname}' (number has no integer representation)"
                    ),
                ))
            }
        }
        Lv::String(s) => {
            let text = s.to_str().map(|s| s.trim().to_string()).unwrap_or_default();
            text.parse::<i64>()
                .map_err(|_| bad_arg(lua, n, fname, "number", value))
        }
        _ => Err(bad_arg(lua, n, fname, "number", value)),
    }
}

/// The text of an error a UDF raised, as the server sends it in `FAILURE`.
///
/// Strings are kept as they are; an error raised from a Rust function
/// gives its message; anything else (a table, a number) is replaced.
pub(crate) fn failure_text(value: &Lv) -> String {
    match value {
        Lv::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        Lv::Error(e) => error_text(e),
        _ => "result value type unexpected".to_string(),
    }
}

/// The innermost message of an mlua error, without traceback.
pub(crate) fn error_text(error: &Error) -> String {
    match error {
        Error::CallbackError { cause, .. } => error_text(cause),
        Error::RuntimeError(text) => text.clone(),
        Error::MemoryError(text) => text.clone(),
        Error::SyntaxError { message, .. } => message.clone(),
        Error::WithContext { cause, .. } => error_text(cause),
        other => other.to_string(),
    }
}
