//! Lua code every state runs before a user module: the container helpers
//! written in Lua, the log helpers, the record and stream dispatchers
//! (`apply_record`, `apply_stream`) and the stream ops. Written from the
//! fact sheets (`udf-runtime.md`, `query-udfs.md` §4): the names and line
//! numbers that show in error texts are the server's, the code is ours.

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

/// Chunk name of the log helpers and the dispatchers: error positions read
/// `[string "aerospike.lua"]:<line>:`.
pub(crate) const AEROSPIKE_NAME: &str = "aerospike.lua";

/// The log helpers and the two dispatchers the host calls. Line numbers are
/// part of the server's error texts: each log helper's `string.format` sits
/// on its own line (trace 2, debug 5, info 8, warn 11), and a stream function
/// that returns no pipeline fails on line 33 (`result.ops`).
pub(crate) const AEROSPIKE: &str = r#"function trace(fmt, ...)
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

-- Record UDFs: f(rec, ...), first result only. An error is raised again at
-- level 2, which names the caller: from the host that is C code, so the
-- message gets no second position. `success` and `result` are globals on
-- purpose: a UDF sees the previous call's values, as on a server.
function apply_record(f, r, ...)
  success, result = pcall(f, r, ...)
  if success then
    return result
  end
  error(result, 2)
end

-- Stream UDFs: f builds a pipeline on a new StreamOps and returns it; the
-- ops of this side (scope 1 server, 2 client) pull values from istream, and
-- each value out goes to ostream (false: nobody reads any more). The ops
-- stay in StreamOps_running for the host to count, failed or not. A function
-- that returns no pipeline fails on the next line but one, as on a server.
function apply_stream(f, scope, istream, ostream, ...)
  result = f(StreamOps_create(), ...)
  local ops = StreamOps_select(result.ops, scope)
  StreamOps_running = ops
  local nextv = istream
  for i = 1, #ops do
    nextv = StreamOps_apply(ops[i], nextv)
  end
  for v in nextv do
    if not ostream(v) then break end
  end
end
"#;

/// Chunk name of the stream machinery.
pub(crate) const STREAM_OPS_NAME: &str = "stream_ops.lua";

/// The StreamOps builder and the ops themselves (`query-udfs.md` §4,
/// `udf-runtime.md` §9). Every op is an iterator over the one before it;
/// a nil ends the stream, as a generic `for` stops at nil, so a map that
/// returns nil ends its partition's stream. `ins`/`outs` count values.
pub(crate) const STREAM_OPS: &str = r#"
local setmetatable, getmetatable, type, pairs = setmetatable, getmetatable, type, pairs
local list, map, List, Map = list, map, List, Map
local list_clone, map_clone, list_append = list.clone, map.clone, list.append
local list_merge, map_merge = list.merge, map.merge

StreamOps = {}
StreamOps_mt = { __index = StreamOps }

function StreamOps_create()
  return setmetatable({ ops = {} }, StreamOps_mt)
end

local function push(self, op)
  op.ins, op.outs = 0, 0
  local ops = self.ops
  ops[#ops + 1] = op
  return self
end

function StreamOps:filter(f) return push(self, { kind = "filter", fn = f }) end
function StreamOps:map(f) return push(self, { kind = "map", fn = f }) end
function StreamOps:aggregate(init, f)
  return push(self, { kind = "aggregate", fn = f, init = init })
end
function StreamOps:reduce(f) return push(self, { kind = "reduce", fn = f }) end

-- A group-by is an aggregate into a map of key -> list of values, and a
-- reduce that merges those maps, joining the lists.
function StreamOps:groupby(f)
  local function add(m, v)
    local k = f(v)
    local l = m[k] or list()
    list_append(l, v)
    m[k] = l
    return m
  end
  _reduce = function(a, b) return map_merge(a, b, list_merge) end
  push(self, { kind = "aggregate", fn = add, init = map(), user = f, label = "groupby" })
  return push(self, { kind = "reduce", fn = _reduce, label = "reduce(groupby)" })
end

-- Server (1): every op up to and including the first reduce. Client (2):
-- that reduce and every op after it; nothing when there is no reduce.
function StreamOps_select(ops, scope)
  local first
  for i = 1, #ops do
    if ops[i].kind == "reduce" then first = i break end
  end
  local out = {}
  if scope == 1 then
    for i = 1, first or #ops do out[#out + 1] = ops[i] end
  elseif first then
    for i = first, #ops do out[#out + 1] = ops[i] end
  end
  return out
end

-- Each pass of an aggregate starts from a copy of init.
local function clone(v)
  if type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[k] = x end
    return t
  end
  local mt = getmetatable(v)
  if mt == List then return list_clone(v) end
  if mt == Map then return map_clone(v) end
  return v
end

local apply = {}

function apply.filter(op, nextv)
  local f = op.fn
  return function()
    local v = nextv()
    while v ~= nil do
      op.ins = op.ins + 1
      if f(v) then
        op.outs = op.outs + 1
        return v
      end
      v = nextv()
    end
  end
end

function apply.map(op, nextv)
  local f = op.fn
  return function()
    local v = nextv()
    if v == nil then return nil end
    op.ins = op.ins + 1
    v = f(v)
    if v ~= nil then op.outs = op.outs + 1 end
    return v
  end
end

-- An accumulator that is a number of 1000 or more is handed on at once and
-- a new pass starts; the end of the input hands on the last pass's value.
function apply.aggregate(op, nextv)
  local f, done = op.fn, false
  return function()
    if done then return nil end
    local acc = clone(op.init)
    local v = nextv()
    while v ~= nil do
      op.ins = op.ins + 1
      acc = f(acc, v)
      if type(acc) == "number" and acc >= 1000 then
        op.outs = op.outs + 1
        return acc
      end
      v = nextv()
    end
    done = true
    if acc ~= nil then op.outs = op.outs + 1 end
    return acc
  end
end

-- The reduce function only ever sees two values: one value passes as is.
function apply.reduce(op, nextv)
  local f, done = op.fn, false
  return function()
    if done then return nil end
    done = true
    local acc = nextv()
    if acc == nil then return nil end
    op.ins = 1
    local v = nextv()
    while v ~= nil do
      op.ins = op.ins + 1
      acc = f(acc, v)
      v = nextv()
    end
    if acc ~= nil then op.outs = 1 end
    return acc
  end
end

function StreamOps_apply(op, nextv)
  return apply[op.kind](op, nextv)
end
"#;
