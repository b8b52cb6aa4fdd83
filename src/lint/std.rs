//! The standard library selene checks against: Lua 5.4 as a UDF sees it
//! (udf-runtime §1.2, §1.3). One library for every mode: what a mode takes
//! away is reported by our own `unavailable_library` rule, with an error
//! that names the mode, rather than as an undefined variable.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

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
        // selene's lua53 misspells utf8.offset (added below).
        "utf8.offest",
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

/// Members of the UDF tables (udf-runtime.md §2, §3.2, §4.3–4.5, §9).
/// Left out, so unchecked: `geojson` and `iterator` (the sheet names only
/// their `__call`, not their members) and the class tables (`Aerospike`,
/// `List`, …), which are metatables.
const UDF_MEMBERS: &[(&str, &[&str])] = &[
    (
        "aerospike",
        &[
            "exists",
            "create",
            "update",
            "remove",
            "log",
            "get_current_time",
            "set_context",
            "get_config",
        ],
    ),
    (
        "record",
        &[
            "ttl",
            "set_ttl",
            "gen",
            "last_update_time",
            "key",
            "drop_key",
            "digest",
            "setname",
            "numbins",
            "bin_names",
            "size",
            "memory_size",
            "device_size",
        ],
    ),
    (
        "list",
        &[
            "create", "new", "size", "append", "prepend", "insert", "remove", "trim", "take",
            "drop", "concat", "clone", "merge", "iterator", "nbytes", "tostring",
        ],
    ),
    (
        "map",
        &[
            "create", "new", "size", "remove", "pairs", "iterator", "keys", "values", "merge",
            "diff", "clone", "nbytes", "tostring",
        ],
    ),
    (
        "bytes",
        &[
            "size",
            "set_size",
            "get_type",
            "set_type",
            "get_byte",
            "set_byte",
            "append_byte",
            "get_var_int",
            "set_var_int",
            "append_var_int",
            "get_string",
            "set_string",
            "append_string",
            "get_bytes",
            "set_bytes",
            "append_bytes",
            // The sheet names only the `tostring(b)` metamethod; the
            // sandbox has `bytes.tostring` too: let it pass.
            "tostring",
        ],
    ),
    (
        "stream",
        &["read", "write", "readable", "writable", "tostring"],
    ),
];

/// What a UDF can read without defining it, from one build of the library.
struct Known {
    /// Global names (`string` for `string.format`, `aerospike`, …).
    roots: HashSet<String>,
    /// Members by table, for the tables whose members are checked.
    members: HashMap<String, HashSet<String>>,
}

fn known() -> &'static Known {
    static KNOWN: OnceLock<Known> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut known = Known {
            roots: HashSet::new(),
            members: HashMap::new(),
        };
        for (name, field) in udf_standard_library().globals {
            let (root, member) = name.split_once('.').unwrap_or((&name, ""));
            known.roots.insert(root.into());
            if !member.is_empty() && field.field_kind != FieldKind::Removed {
                let set = known.members.entry(root.into()).or_default();
                set.insert(member.into());
            }
        }
        for (table, names) in UDF_MEMBERS {
            let set = known.members.entry(table.to_string()).or_default();
            set.extend(names.iter().map(|n| n.to_string()));
            if *table == "bytes" {
                // get/set/append_int16/32/64, unsuffixed (big-endian), _be, _le.
                for op in ["get", "set", "append"] {
                    for bits in [16, 32, 64] {
                        for end in ["", "_be", "_le"] {
                            set.insert(format!("{op}_int{bits}{end}"));
                        }
                    }
                }
            }
        }
        known
    })
}

/// The global names a UDF can read without defining them (`string` for
/// `string.format`, `aerospike`, …).
pub fn global_roots() -> &'static HashSet<String> {
    &known().roots
}

/// The members of global table `table` a UDF can read, or None when its
/// members are not checked. The standard tables' come from the library
/// below, so what `gone` removes is not a member.
pub fn members(table: &str) -> Option<&'static HashSet<String>> {
    known().members.get(table)
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
