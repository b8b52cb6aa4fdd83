//! Lua code every state runs before a user module: the container helpers
//! written in Lua, the log helpers and the call dispatcher.

/// Helpers built on the Rust-side modules. Run once per state.
pub(crate) const SYSTEM: &str = r#"
List = getmetatable(list())
Map = getmetatable(map())
Bytes = getmetatable(bytes())

function math.sum(a, b) return a + b end
function math.product(a, b) return a * b end

-- Copies stop at the first NIL element, as the iterator does.
function list.clone(l)
  local out = list()
  for v in list.iterator(l) do list.append(out, v) end
  return out
end

function list.merge(l1, l2)
  local out = list()
  for v in list.iterator(l1) do list.append(out, v) end
  for v in list.iterator(l2) do list.append(out, v) end
  return out
end

function map.clone(m)
  local out = map()
  for k, v in map.pairs(m) do out[k] = v end
  return out
end

-- m2 overlays m1; a function combines the values of keys found in both.
function map.merge(m1, m2, f)
  local out = map()
  for k, v in map.pairs(m1) do out[k] = v end
  for k, v in map.pairs(m2) do
    local old = m1[k]
    if type(f) == "function" and old ~= nil then
      out[k] = f(old, v)
    else
      out[k] = v
    end
  end
  return out
end

-- Keys present (truthy) in exactly one of the two maps.
function map.diff(m1, m2)
  local out = map()
  for k, v in map.pairs(m1) do
    if not m2[k] then out[k] = v end
  end
  for k, v in map.pairs(m2) do
    if not m1[k] then out[k] = v end
  end
  return out
end
"#;

/// Chunk name of the log helpers: error positions read
/// `[string "aerospike.lua"]:<line>:`.
pub(crate) const LOG_HELPERS_NAME: &str = "aerospike.lua";

/// The log helpers; each one's `string.format` sits on its own line
/// (trace 2, debug 5, info 8, warn 11), which error positions show.
pub(crate) const LOG_HELPERS: &str = "function trace(fmt, ...)
  aerospike:log(4, string.format(fmt, ...))
end
function debug(fmt, ...)
  aerospike:log(3, string.format(fmt, ...))
end
function info(fmt, ...)
  aerospike:log(2, string.format(fmt, ...))
end
function warn(fmt, ...)
  aerospike:log(1, string.format(fmt, ...))
end
";

/// Calls a UDF in protected mode and returns (ok, first result or error).
/// `success` and `result` are globals on purpose: UDFs can see the previous
/// call's values, as on a real server.
pub(crate) const DISPATCH: &str = "local pcall = pcall
return function(f, ...)
  success, result = pcall(f, ...)
  return success, result
end
";
