//! The standard library selene checks against: Lua 5.4 as a UDF sees it
//! (udf-runtime §1.2, §1.3). One library for every mode: what a mode takes
//! away is reported by our own `unavailable_library` rule, with an error
//! that names the mode, rather than as an undefined variable.

use selene_lib::standard_library::{Field, FieldKind, StandardLibrary};

/// Lua 5.1 names gone from 5.4 (nil at run time), and the debug library
/// whose global name the log helper `debug` takes over.
fn gone(name: &str) -> bool {
    const GONE: &[&str] = &[
        "unpack",
        "loadstring",
        "module",
        "setfenv",
        "getfenv",
        "newproxy",
        "table.foreach",
        "table.foreachi",
        "table.getn",
        "table.maxn",
        "package.loaders",
        "package.seeall",
    ];
    GONE.contains(&name) || name.starts_with("bit32.") || name.starts_with("debug.")
}

/// Globals the UDF runtime defines, and Lua 5.4 names the 5.3 library lacks.
const UDF_GLOBALS: &[&str] = &[
    "aerospike",
    "record",
    "list",
    "map",
    "bytes",
    "geojson",
    "iterator",
    "stream",
    "Aerospike",
    "Iterator",
    "List",
    "Map",
    "Bytes",
    "trace",
    "debug",
    "info",
    "warn",
    "apply_record",
    "apply_stream",
    "filter",
    "transform",
    "reduce",
    "aggregate",
    "stream_iterator",
    "StreamOps",
    "StreamOps_mt",
    "StreamOps_create",
    "StreamOps_apply",
    "StreamOps_select",
    "math.sum",
    "math.product",
    "math.type",
    "math.ult",
    "math.maxinteger",
    "math.mininteger",
    "utf8.offset",
    "coroutine.close",
    "coroutine.isyieldable",
    "package.searchpath",
    "package.searchers",
    // Every chunk's environment (Lua 5.2 on); selene's library lacks it.
    "_ENV",
];

/// The global names a UDF can read without defining them (`string` for
/// `string.format`, `aerospike`, …).
pub fn global_roots() -> &'static std::collections::HashSet<String> {
    static ROOTS: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        udf_standard_library()
            .globals
            .keys()
            .map(|k| k.split('.').next().unwrap_or(k).to_string())
            .collect()
    })
}

/// Lua 5.4 with the UDF globals.
pub fn udf_standard_library() -> StandardLibrary {
    let mut std = StandardLibrary::from_name("lua53").expect("selene ships lua53");
    std.globals.retain(|name, _| !gone(name));
    for name in UDF_GLOBALS {
        std.globals
            .insert(name.to_string(), Field::from_field_kind(FieldKind::Any));
    }
    // The version type is not exported: set it the way a std file would.
    let lua54: StandardLibrary =
        toml::from_str("lua_versions = [\"lua54\"]").expect("a valid std fragment");
    std.extend(lua54);
    std
}
