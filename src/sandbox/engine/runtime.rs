//! Lua states: creation (libraries, globals, prelude, the user module),
//! the time limit, pooling per module, and one UDF call.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mlua::{
    AnyUserData, ChunkMode, Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value as Lv,
    Variadic, ffi,
};
use parking_lot::Mutex;

use super::budget::BudgetGuard;
use super::containers::{
    LBytes, LList, LMap, push_elem, register_bytes, register_geojson, register_list, register_map,
};
use super::elem::{Elem, c_bytes, shared};
use super::errors::{error_text, failure_text};
use super::prelude;
use super::record::{LAerospike, LRecord, RecState, push_log, register_record, result_value};
use super::registry::Registry;
use super::stream::{CANCELLED, StageCount, StreamRun, stream_failure_text};
use super::{LogLevel, LogLine, LuaLibs, LuaLogs};
use crate::sandbox::value::Value;

/// VM instructions between two looks at the clock.
const HOOK_PERIOD: i32 = 1000;
/// How much earlier than a request's own time limit a UDF is stopped.
const REQUEST_LIMIT_MARGIN_MS: u64 = 10;
/// The server's `transaction-max-ms`: the limit when a request carries none.
pub(crate) const DEFAULT_LIMIT_MS: u64 = 1000;
/// A module's first calls each get a new state, as the server starts this many.
const POOL_MIN: usize = 10;
/// States kept per module.
const POOL_MAX: usize = 128;

thread_local! {
    /// When the Lua code running on this thread must stop.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Set by whoever reads a stream run's values, to stop it (null: none).
    static CANCEL: Cell<*const AtomicBool> = const { Cell::new(std::ptr::null()) };
}

/// Sets this thread's deadline, cancel flag and container budget for as
/// long as the guard lives (while Lua code of a call or a module's top
/// level runs). The flag outlives the guard.
struct CallGuard<'a> {
    _budget: BudgetGuard,
    _cancel: PhantomData<&'a AtomicBool>,
}

impl<'a> CallGuard<'a> {
    fn new(limit: Duration, budget: usize) -> CallGuard<'static> {
        CallGuard::with(Some(limit), budget, None)
    }

    fn with(limit: Option<Duration>, budget: usize, cancel: Option<&'a AtomicBool>) -> Self {
        DEADLINE.with(|d| d.set(limit.map(|limit| Instant::now() + limit)));
        CANCEL.with(|c| c.set(cancel.map_or(std::ptr::null(), |c| c as *const AtomicBool)));
        CallGuard {
            _budget: BudgetGuard::new(budget),
            _cancel: PhantomData,
        }
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(None));
        CANCEL.with(|c| c.set(std::ptr::null()));
    }
}

/// Gives the Lua code running on this thread `limit` more from now, if it
/// runs under a deadline (a stream's client half, as each value comes).
pub(crate) fn restart_deadline(limit: Duration) {
    DEADLINE.with(|d| {
        if d.get().is_some() {
            d.set(Some(Instant::now() + limit));
        }
    });
}

fn cancelled() -> bool {
    // SAFETY: a non-null pointer was set by a live CallGuard from a
    // reference that outlives it, and is cleared when the guard drops.
    CANCEL.with(|c| {
        let flag = c.get();
        !flag.is_null() && unsafe { &*flag }.load(Ordering::Relaxed)
    })
}

/// Count hook: raises "UDF Execution Timeout" as a plain Lua string error
/// (so a `pcall` in the UDF can catch it, as on the server). A cancelled
/// run is stopped for good: from then on the hook fires at every
/// instruction, so a `pcall` only catches it until the next one.
unsafe extern "C-unwind" fn timeout_hook(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    if cancelled() {
        // SAFETY: as below; resetting the hook of the running thread is allowed in a hook.
        unsafe {
            ffi::lua_sethook(state, Some(timeout_hook), ffi::LUA_MASKCOUNT, 1);
            // The run then reports CANCELLED whatever this text.
            ffi::luaL_error(state, c"query cancelled".as_ptr());
        }
    }
    let expired = DEADLINE.with(|d| d.get().is_some_and(|t| Instant::now() >= t));
    if expired {
        // SAFETY: called by Lua from a hook on a running state; nothing in
        // this frame needs dropping before the error unwinds it.
        unsafe {
            ffi::luaL_error(state, c"UDF Execution Timeout".as_ptr());
        }
    }
}

/// What every state of a sandbox is built from.
#[derive(Clone)]
pub(crate) struct StateConfig {
    pub libs: LuaLibs,
    pub user_path: String,
    pub memory_limit: usize,
    pub max_udf_ms: Option<u64>,
    pub registry: Arc<Registry>,
}

impl StateConfig {
    /// The time limit of a call: the request's, or the server default, capped.
    pub fn limit(&self, request_ms: u32) -> Duration {
        let ms = if request_ms == 0 {
            DEFAULT_LIMIT_MS
        } else {
            // The client's timer for this request started before it reached
            // us and runs out at the same limit: finishing a little early lets
            // the server's timeout answer arrive before the client gives up.
            (request_ms as u64)
                .saturating_sub(REQUEST_LIMIT_MARGIN_MS)
                .max(1)
        };
        Duration::from_millis(self.max_udf_ms.map_or(ms, |cap| ms.min(cap)))
    }
}

/// A Lua state with the runtime loaded.
pub(crate) struct LuaState {
    lua: Lua,
    globals: Table,
    pcall: Function,
    aerospike: AnyUserData,
    /// The `aerospike` object stream functions see (no record hooks).
    stream_aerospike: AnyUserData,
    aerospike_name: mlua::String,
    apply_record_name: mlua::String,
    apply_stream_name: mlua::String,
    /// The global where `apply_stream` keeps the ops it runs.
    running_ops_name: mlua::String,
    /// The record userdata every call on this state gets; its contents are
    /// swapped in for a call and taken out after it (a reference a UDF kept
    /// from an earlier call sees a detached, empty record).
    rec: Arc<Mutex<RecState>>,
    rec_userdata: AnyUserData,
    /// Bytes a call may add to Rust-side containers.
    budget: usize,
    /// Lua strings of the function names called on this state.
    function_names: HashMap<String, mlua::String>,
    /// Names stream stages show for functions, by definition place.
    stage_names: HashMap<(String, usize), String>,
    registry: Arc<Registry>,
    user_path: String,
}

/// Function names remembered per state (a bound on a UDF called with many names).
const FUNCTION_NAMES_KEPT: usize = 64;

fn new_lua(libs: LuaLibs) -> mlua::Result<Lua> {
    let safe_libs = StdLib::COROUTINE
        | StdLib::TABLE
        | StdLib::STRING
        | StdLib::UTF8
        | StdLib::MATH
        | StdLib::PACKAGE;
    let lua = match libs {
        // SAFETY: the `debug` library is what the recorded servers expose;
        // the caller chose this mode.
        LuaLibs::All => unsafe { Lua::unsafe_new_with(StdLib::ALL, LuaOptions::new()) },
        LuaLibs::Default => Lua::new_with(safe_libs | StdLib::OS, LuaOptions::new())?,
        LuaLibs::Hardened => Lua::new_with(safe_libs, LuaOptions::new())?,
    };
    let globals = lua.globals();
    match libs {
        LuaLibs::All => {}
        LuaLibs::Default => {
            // `os` keeps its time functions only.
            let os: Table = globals.get("os")?;
            let limited = lua.create_table()?;
            for name in ["clock", "date", "difftime", "time"] {
                limited.raw_set(name, os.get::<Lv>(name)?)?;
            }
            globals.raw_set("os", limited.clone())?;
            let loaded: Table = globals.get::<Table>("package")?.get("loaded")?;
            loaded.raw_set("os", limited)?;
        }
        LuaLibs::Hardened => {
            for name in [
                "os",
                "io",
                "debug",
                "dofile",
                "loadfile",
                "load",
                "loadstring",
            ] {
                globals.raw_set(name, Lv::Nil)?;
            }
            let package: Table = globals.get("package")?;
            for name in ["searchpath", "loadlib", "cpath"] {
                package.raw_set(name, Lv::Nil)?;
            }
        }
    }
    Ok(lua)
}

impl LuaState {
    /// A state with the runtime but no user module.
    pub fn base(config: &StateConfig) -> mlua::Result<LuaState> {
        let lua = new_lua(config.libs)?;
        let globals = lua.globals();

        let package: Table = globals.get("package")?;
        let path: String = package.get("path")?;
        package.raw_set("path", format!("{path};{}/?.lua", config.user_path))?;
        if config.libs != LuaLibs::Hardened {
            let cpath: String = package.get::<Option<String>>("cpath")?.unwrap_or_default();
            package.raw_set("cpath", format!("{cpath};{}/?.so", config.user_path))?;
        }
        install_searcher(&lua, &package, config)?;

        let aerospike = lua.create_userdata(LAerospike { stream: false })?;
        globals.raw_set("aerospike", aerospike.clone())?;
        globals.raw_set("record", register_record(&lua)?)?;
        globals.raw_set("list", register_list(&lua)?)?;
        globals.raw_set("map", register_map(&lua)?)?;
        globals.raw_set("bytes", register_bytes(&lua)?)?;
        globals.raw_set("geojson", register_geojson(&lua)?)?;
        for name in ["iterator", "stream", "Aerospike", "Iterator"] {
            globals.raw_set(name, lua.create_table()?)?;
        }
        globals.raw_set(
            "print",
            lua.create_function(|lua, args: Variadic<Lv>| {
                let parts: Vec<String> = args
                    .iter()
                    .map(|v| v.to_string().unwrap_or_default())
                    .collect();
                push_log(lua, LogLevel::Print, parts.join("\t"));
                Ok(())
            })?,
        )?;
        lua.set_app_data(LuaLogs::default());

        for sample in [
            lua.create_userdata(LList(shared(Vec::new())))?,
            lua.create_userdata(LMap(shared(Default::default())))?,
            lua.create_userdata(LBytes(shared(Default::default())))?,
        ] {
            expose_metatable(&lua, sample)?;
        }
        lua.load(prelude::SYSTEM).set_name("=as.lua").exec()?;
        lua.load(prelude::AEROSPIKE)
            .set_name(prelude::AEROSPIKE_NAME)
            .exec()?;
        lua.load(prelude::STREAM_OPS)
            .set_name(prelude::STREAM_OPS_NAME)
            .exec()?;
        let pcall: Function = globals.get("pcall")?;

        // SAFETY: sets a count hook on the main thread (coroutines inherit it);
        // the hook only reads a thread-local and may raise a Lua error.
        unsafe {
            lua.exec_raw::<()>((), |state| {
                ffi::lua_sethook(state, Some(timeout_hook), ffi::LUA_MASKCOUNT, HOOK_PERIOD)
            })?;
        }
        let rec = Arc::new(Mutex::new(RecState::detached()));
        let rec_userdata = lua.create_userdata(LRecord(rec.clone()))?;
        let aerospike_name = lua.create_string("aerospike")?;
        let stream_aerospike = lua.create_userdata(LAerospike { stream: true })?;
        lua.set_memory_limit(config.memory_limit)?;
        Ok(LuaState {
            globals,
            pcall,
            aerospike,
            stream_aerospike,
            aerospike_name,
            apply_record_name: lua.create_string("apply_record")?,
            apply_stream_name: lua.create_string("apply_stream")?,
            running_ops_name: lua.create_string("StreamOps_running")?,
            rec,
            rec_userdata,
            function_names: HashMap::new(),
            stage_names: HashMap::new(),
            registry: config.registry.clone(),
            user_path: config.user_path.clone(),
            budget: config.memory_limit,
            lua,
        })
    }

    /// A state with `module` loaded by `require`; `Err` with the reason when
    /// the module is missing or its top level fails.
    pub fn for_module(config: &StateConfig, module: &str) -> Result<LuaState, String> {
        if config.registry.source(&format!("{module}.lua")).is_none() {
            return Err(format!("module {module} is not registered"));
        }
        let state = LuaState::base(config).map_err(|e| error_text(&e))?;
        let require: Function = state
            .lua
            .globals()
            .get("require")
            .map_err(|e| error_text(&e))?;
        let _guard = CallGuard::new(config.limit(0), config.memory_limit);
        let (ok, err): (bool, Lv) = state
            .pcall
            .call((require, module))
            .map_err(|e| error_text(&e))?;
        if !ok {
            return Err(failure_text(&err));
        }
        Ok(state)
    }

    /// Loads and runs a module's top level as registration does; the raw
    /// error value's text when it fails.
    pub fn validate(config: &StateConfig, filename: &str, source: &[u8]) -> Result<(), Failure> {
        let state = LuaState::base(config).map_err(|e| Failure::Text(error_text(&e)))?;
        let chunk = state
            .lua
            .load(source)
            .set_name(filename)
            .set_mode(MODULE_CHUNK_MODE)
            .into_function()
            .map_err(|e| Failure::Text(error_text(&e)))?;
        let _guard = CallGuard::new(config.limit(0), config.memory_limit);
        let (ok, err): (bool, Lv) = state
            .pcall
            .call(chunk)
            .map_err(|e| Failure::Text(error_text(&e)))?;
        if ok {
            return Ok(());
        }
        Err(match &err {
            Lv::String(_) | Lv::Error(_) => Failure::Text(failure_text(&err)),
            _ => Failure::NotText,
        })
    }

    /// Calls `function(rec, args...)`. `Ok` with the first result, or the
    /// `FAILURE` text; the call's log lines; the record state after the call.
    pub fn call(
        &mut self,
        function: &str,
        rec: RecState,
        args: &[Value],
        limit: Duration,
    ) -> (Result<Value, String>, Vec<LogLine>, RecState) {
        *self.rec.lock() = rec;
        let result = self.call_inner(function, args, limit);
        let rec = std::mem::replace(&mut *self.rec.lock(), RecState::detached());
        let logs = self
            .lua
            .app_data_mut::<LuaLogs>()
            .map(|mut l| l.take())
            .unwrap_or_default();
        (result, logs, rec)
    }

    fn function_name(&mut self, function: &str) -> mlua::Result<mlua::String> {
        if let Some(name) = self.function_names.get(function) {
            return Ok(name.clone());
        }
        if self.function_names.len() >= FUNCTION_NAMES_KEPT {
            self.function_names.clear();
        }
        let name = self.lua.create_string(function)?;
        self.function_names
            .insert(function.to_string(), name.clone());
        Ok(name)
    }

    fn call_inner(
        &mut self,
        function: &str,
        args: &[Value],
        limit: Duration,
    ) -> Result<Value, String> {
        let name = self.function_name(function).map_err(|e| error_text(&e))?;
        let f: Lv = self.globals.get(name).map_err(|e| error_text(&e))?;
        if f.is_nil() {
            return Err("function not found".to_string());
        }
        self.globals
            .raw_set(&self.aerospike_name, &self.aerospike)
            .map_err(|e| error_text(&e))?;
        // The host calls whatever the global dispatcher is, as a server does.
        let dispatcher: Lv = self
            .globals
            .get(&self.apply_record_name)
            .map_err(|e| error_text(&e))?;
        let mut call_args = MultiValue::with_capacity(args.len() + 3);
        call_args.push_back(dispatcher);
        call_args.push_back(f);
        call_args.push_back(Lv::UserData(self.rec_userdata.clone()));
        for arg in args {
            call_args.push_back(arg_value(&self.lua, arg).map_err(|e| error_text(&e))?);
        }
        let _guard = CallGuard::new(limit, self.budget);
        match self.pcall.call::<(bool, Lv)>(call_args) {
            Ok((true, value)) => result_value(&value),
            Ok((false, err)) => Err(failure_text(&err)),
            Err(e) => Err(error_text(&e)),
        }
    }
}

/// Where a stream run's values come from: the next one, nil at the end.
pub(crate) type StreamSource<'a> = dyn FnMut(&Lua) -> mlua::Result<Lv> + 'a;

impl LuaState {
    /// Runs stream function `function` on one side (`scope` 1 server, 2
    /// client) over the values `next` yields, handing each output value to
    /// `emit` (false: stop). `Ok`, or the FAILURE text; and what the run
    /// did, up to its failure: each stage's counts and the log lines.
    #[allow(clippy::too_many_arguments)]
    pub fn stream(
        &mut self,
        function: &str,
        scope: i64,
        args: &[Value],
        next: &mut StreamSource<'_>,
        emit: &mut dyn FnMut(Value) -> bool,
        cancel: &AtomicBool,
        limit: Option<Duration>,
    ) -> (Result<(), String>, StreamRun) {
        let result = self.stream_inner(function, scope, args, next, emit, cancel, limit);
        // A cancelled state is dropped unread: its hook stops any Lua.
        let stages = if cancel.load(Ordering::Relaxed) {
            Vec::new()
        } else {
            self.take_running_stages()
        };
        let logs = self
            .lua
            .app_data_mut::<LuaLogs>()
            .map(|mut l| l.take())
            .unwrap_or_default();
        (result, StreamRun { stages, logs })
    }

    /// The counts of the ops `apply_stream` ran (kept in a global, as a
    /// failed call returns none), cleared for the state's next run.
    fn take_running_stages(&mut self) -> Vec<StageCount> {
        let name = self.running_ops_name.clone();
        let ops: Lv = self.globals.raw_get(&name).unwrap_or(Lv::Nil);
        let _ = self.globals.raw_set(&name, Lv::Nil);
        self.stage_counts(&ops)
    }

    #[allow(clippy::too_many_arguments)]
    fn stream_inner(
        &mut self,
        function: &str,
        scope: i64,
        args: &[Value],
        next: &mut StreamSource<'_>,
        emit: &mut dyn FnMut(Value) -> bool,
        cancel: &AtomicBool,
        limit: Option<Duration>,
    ) -> Result<(), String> {
        let failed = |e: mlua::Error| format!("UDF: Execution Error 2 : {}", error_text(&e));
        let name = self.function_name(function).map_err(failed)?;
        let f: Lv = self.globals.get(name).map_err(failed)?;
        if f.is_nil() {
            return Err("UDF: Execution Error 2 : function not found".to_string());
        }
        self.globals
            .raw_set(&self.aerospike_name, &self.stream_aerospike)
            .map_err(failed)?;
        let dispatcher: Lv = self.globals.get(&self.apply_stream_name).map_err(failed)?;
        let mut call_args = MultiValue::with_capacity(args.len() + 5);
        call_args.push_back(dispatcher);
        call_args.push_back(f);
        call_args.push_back(Lv::Integer(scope));
        for arg in args {
            let arg = arg_value(&self.lua, arg).map_err(failed)?;
            call_args.push_back(arg);
        }
        let _guard = CallGuard::with(limit, self.budget, Some(cancel));
        let pcall = &self.pcall;
        let mut ended = false;
        let outcome = self.lua.scope(|scope| {
            let istream = scope.create_function_mut(|lua, ()| {
                if cancel.load(Ordering::Relaxed) {
                    return Err(mlua::Error::RuntimeError(CANCELLED.to_string()));
                }
                if ended {
                    return Ok(Lv::Nil);
                }
                let value = next(lua)?;
                ended = value.is_nil();
                Ok(value)
            })?;
            // Values no bin could hold (tables, functions, records) come
            // out as nil, and nil is never sent.
            let ostream = scope.create_function_mut(|_, value: Lv| {
                let value = result_value(&value).map_err(mlua::Error::RuntimeError)?;
                Ok(match value {
                    Value::Nil => true,
                    value => emit(value),
                })
            })?;
            // The streams go between the function and its arguments.
            let mut call_args = call_args;
            let rest = call_args.split_off(3);
            call_args.push_back(Lv::Function(istream));
            call_args.push_back(Lv::Function(ostream));
            call_args.extend(rest);
            pcall.call::<(bool, Lv)>(call_args)
        });
        if cancel.load(Ordering::Relaxed) {
            return Err(CANCELLED.to_string());
        }
        match outcome {
            Ok((true, _)) => Ok(()),
            Ok((false, err)) => Err(stream_failure_text(&self.lua, &err)),
            Err(e) => Err(failed(e)),
        }
    }

    /// Each op's name and counts, from the ops table `apply_stream` ran.
    fn stage_counts(&mut self, ops: &Lv) -> Vec<StageCount> {
        let Lv::Table(ops) = ops else {
            return Vec::new();
        };
        let mut stages = Vec::new();
        for op in ops.clone().sequence_values::<Table>().flatten() {
            let count = |field: &str| op.get::<Option<i64>>(field).ok().flatten().unwrap_or(0);
            let label: Option<String> = op.get("label").ok().flatten();
            let user: Lv = op.get("user").unwrap_or(Lv::Nil);
            let stage = match label {
                Some(label) if !user.is_nil() => format!("{label}({})", self.stage_name(&user)),
                Some(label) => label,
                None => {
                    let kind: String = op.get("kind").unwrap_or_default();
                    let f: Lv = op.get("fn").unwrap_or(Lv::Nil);
                    format!("{kind}({})", self.stage_name(&f))
                }
            };
            stages.push(StageCount {
                stage,
                values_in: count("ins").max(0) as u64,
                values_out: count("outs").max(0) as u64,
            });
        }
        stages
    }

    /// What a stage calls the function it was given: the name the module
    /// defines it under (`local function pair(r)`, `to_pair = function`),
    /// a global or library name for a C function (`math.max`), or, for an
    /// anonymous function, where it is defined (`fm.lua:7`).
    fn stage_name(&mut self, f: &Lv) -> String {
        let Lv::Function(f) = f else {
            return f.type_name().to_string();
        };
        let info = f.info();
        // C functions are keyed by address, Lua ones by definition place.
        let key = match info.what {
            "C" => (String::new(), f.to_pointer() as usize),
            _ => (
                info.source.unwrap_or_default(),
                info.line_defined.unwrap_or(0),
            ),
        };
        if let Some(name) = self.stage_names.get(&key) {
            return name.clone();
        }
        if key.0.is_empty() {
            let name = self.global_name(f).unwrap_or_else(|| "?".to_string());
            self.stage_names.insert(key, name.clone());
            return name;
        }
        let line = key.1;
        let file = key.0.strip_prefix('@').unwrap_or(&key.0);
        let file = file
            .strip_prefix(&self.user_path)
            .and_then(|f| f.strip_prefix('/'))
            .unwrap_or_else(|| file.rsplit('/').next().unwrap_or(file))
            .to_string();
        let defined = self
            .registry
            .source(&file)
            .and_then(|source| {
                let text = String::from_utf8_lossy(&source).into_owned();
                text.lines()
                    .nth(line.checked_sub(1)?)
                    .and_then(defined_name)
            })
            .unwrap_or_else(|| format!("{file}:{line}"));
        if self.stage_names.len() >= FUNCTION_NAMES_KEPT {
            self.stage_names.clear();
        }
        self.stage_names.insert(key, defined.clone());
        defined
    }

    /// `name` or `table.name` of a global holding `f`.
    fn global_name(&self, f: &Function) -> Option<String> {
        let target = f.to_pointer();
        let is_f = |v: &Lv| matches!(v, Lv::Function(g) if g.to_pointer() == target);
        let mut tables = Vec::new();
        for (key, value) in self.globals.pairs::<Lv, Lv>().flatten() {
            let Lv::String(key) = key else { continue };
            let key = key.to_string_lossy();
            if is_f(&value) {
                return Some(key);
            }
            if let Lv::Table(t) = value {
                tables.push((key, t));
            }
        }
        tables.into_iter().find_map(|(name, table)| {
            table
                .pairs::<Lv, Lv>()
                .flatten()
                .find_map(|(key, value)| match key {
                    Lv::String(key) if is_f(&value) => {
                        Some(format!("{name}.{}", key.to_string_lossy()))
                    }
                    _ => None,
                })
        })
    }
}

/// The name a source line defines a function under, if it does:
/// `[local] function name(`, `[local] name = function`. A line with more
/// than one function on it is ambiguous (Lua tells only the line): none.
pub(crate) fn defined_name(line: &str) -> Option<String> {
    let functions = line
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| *word == "function")
        .count();
    if functions != 1 {
        return None;
    }
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_alphanumeric() || "_.:".contains(c))
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    let line = line.trim_start();
    let line = line.strip_prefix("local ").unwrap_or(line).trim_start();
    if let Some(rest) = line.strip_prefix("function ") {
        let name = rest.trim_start().split('(').next()?.trim();
        return is_name(name).then(|| name.to_string());
    }
    let (lhs, rhs) = line.split_once('=')?;
    let rhs = rhs.trim_start();
    let lhs = lhs.trim();
    (rhs.starts_with("function") && rhs[8..].trim_start().starts_with('(') && is_name(lhs))
        .then(|| lhs.to_string())
}

/// Modules load as source text only, in every mode (no bytecode).
const MODULE_CHUNK_MODE: ChunkMode = ChunkMode::Text;

/// How a registration-time run failed.
pub(crate) enum Failure {
    Text(String),
    /// The error value was not a string (e.g. a table).
    NotText,
}

/// Lets `getmetatable` see a userdata type's metatable (mlua hides it), so
/// `getmetatable(l) == List` works as on the server.
fn expose_metatable(lua: &Lua, sample: AnyUserData) -> mlua::Result<()> {
    // SAFETY: plain stack operations on the metatable of the one argument.
    unsafe {
        lua.exec_raw::<()>(sample, |state| {
            if ffi::lua_getmetatable(state, -1) != 0 {
                ffi::lua_pushnil(state);
                ffi::lua_setfield(state, -2, c"__metatable".as_ptr());
                ffi::lua_pop(state, 1);
            }
        })
    }
}

/// An argument as the UDF sees it (strings cut at NUL).
fn arg_value(lua: &Lua, value: &Value) -> mlua::Result<Lv> {
    match value {
        Value::Str(s) => Ok(Lv::String(lua.create_string(c_bytes(s))?)),
        other => push_elem(lua, &Elem::from_value(other)),
    }
}

/// `require` finds registered modules only: `<name>.lua`, loaded with the
/// chunk name `@<user_path>/<name>.lua`.
fn install_searcher(lua: &Lua, package: &Table, config: &StateConfig) -> mlua::Result<()> {
    let registry = config.registry.clone();
    let user_path = config.user_path.clone();
    let searcher = lua.create_function(move |lua, name: String| {
        let file = format!("{name}.lua");
        let path = format!("{user_path}/{file}");
        match registry.source(&file) {
            Some(source) => {
                let chunk = lua
                    .load(&source[..])
                    .set_name(format!("@{path}"))
                    .set_mode(MODULE_CHUNK_MODE)
                    .into_function()?;
                Ok((Lv::Function(chunk), Lv::String(lua.create_string(&path)?)))
            }
            None => Ok((
                Lv::String(lua.create_string(format!("\n\tno file '{path}'"))?),
                Lv::Nil,
            )),
        }
    })?;
    let old: Table = package.get("searchers")?;
    let searchers = lua.create_table()?;
    searchers.raw_set(1, old.raw_get::<Lv>(1)?)?; // package.preload
    searchers.raw_set(2, searcher)?;
    package.raw_set("searchers", searchers)
}

/// The pooled states of one module, for one registry generation.
pub(crate) struct ModulePool {
    pub generation: u64,
    states: Mutex<PoolStates>,
}

struct PoolStates {
    idle: VecDeque<LuaState>,
    created: usize,
}

impl ModulePool {
    pub fn new(generation: u64) -> ModulePool {
        ModulePool {
            generation,
            states: Mutex::new(PoolStates {
                idle: VecDeque::new(),
                created: 0,
            }),
        }
    }

    /// The next idle state (first in, first out); the first calls of a
    /// module each get a new one.
    pub fn take(&self, config: &StateConfig, module: &str) -> Result<LuaState, String> {
        {
            let mut states = self.states.lock();
            if states.created >= POOL_MIN
                && let Some(state) = states.idle.pop_front()
            {
                return Ok(state);
            }
            states.created += 1;
        }
        LuaState::for_module(config, module).inspect_err(|_| {
            self.states.lock().created -= 1;
        })
    }

    pub fn give_back(&self, state: LuaState) {
        let mut states = self.states.lock();
        if states.idle.len() < POOL_MAX {
            states.idle.push_back(state);
        }
    }
}

// LuaState holds only Send parts (mlua is built with `send`).
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<LuaState>();
};
