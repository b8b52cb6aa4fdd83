//! Lua states: creation (libraries, globals, prelude, the user module),
//! the time limit, pooling per module, and one UDF call.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
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
use super::elem::{Elem, c_string, shared};
use super::errors::{error_text, failure_text};
use super::prelude;
use super::record::{LAerospike, LRecord, RecState, push_log, register_record, result_value};
use super::registry::Registry;
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
}

/// Sets this thread's deadline and container budget for as long as the
/// guard lives (while Lua code of a call or a module's top level runs).
struct CallGuard {
    _budget: BudgetGuard,
}

impl CallGuard {
    fn new(limit: Duration, budget: usize) -> CallGuard {
        DEADLINE.with(|d| d.set(Some(Instant::now() + limit)));
        CallGuard {
            _budget: BudgetGuard::new(budget),
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(None));
    }
}

/// Count hook: raises "UDF Execution Timeout" as a plain Lua string error
/// (so a `pcall` in the UDF can catch it, as on the server).
unsafe extern "C-unwind" fn timeout_hook(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
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
    dispatch: Function,
    pcall: Function,
    aerospike: AnyUserData,
    aerospike_name: mlua::String,
    /// The record userdata every call on this state gets; its contents are
    /// swapped in for a call and taken out after it (a reference a UDF kept
    /// from an earlier call sees a detached, empty record).
    rec: Arc<Mutex<RecState>>,
    rec_userdata: AnyUserData,
    /// Bytes a call may add to Rust-side containers.
    budget: usize,
    /// Lua strings of the function names called on this state.
    function_names: HashMap<String, mlua::String>,
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

        let aerospike = lua.create_userdata(LAerospike)?;
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
        lua.load(prelude::LOG_HELPERS)
            .set_name(prelude::LOG_HELPERS_NAME)
            .exec()?;
        let dispatch: Function = lua.load(prelude::DISPATCH).set_name("=dispatch").call(())?;
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
        lua.set_memory_limit(config.memory_limit)?;
        Ok(LuaState {
            globals,
            dispatch,
            pcall,
            aerospike,
            aerospike_name,
            rec,
            rec_userdata,
            function_names: HashMap::new(),
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
        let mut call_args = MultiValue::with_capacity(args.len() + 2);
        call_args.push_back(f);
        call_args.push_back(Lv::UserData(self.rec_userdata.clone()));
        for arg in args {
            call_args.push_back(arg_value(&self.lua, arg).map_err(|e| error_text(&e))?);
        }
        let _guard = CallGuard::new(limit, self.budget);
        match self.dispatch.call::<(bool, Lv)>(call_args) {
            Ok((true, value)) => Ok(result_value(&value)),
            Ok((false, err)) => Err(failure_text(&err)),
            Err(e) => Err(error_text(&e)),
        }
    }
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
        Value::Str(s) => Ok(Lv::String(lua.create_string(c_string(s.as_bytes()))?)),
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
