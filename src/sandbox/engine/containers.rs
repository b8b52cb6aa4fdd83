//! The `list`, `map`, `bytes` and `geojson` modules and their userdata.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlua::{
    AnyUserData, Lua, MetaMethod, MultiValue, Result, Table, UserData, UserDataFields,
    UserDataMethods, Value as Lv, Variadic,
};

use super::budget::{SLOT, charge, charge_elem, cost};
use super::elem::{
    BytesData, BytesRef, Elem, ListRef, MapKey, MapRef, c_bytes, c_string, render_list, render_map,
    too_deep,
};
use super::errors::{bad_arg, bad_userdata_arg, int_arg, raise};
use crate::sandbox::value::BLOB;

/// A list seen from Lua.
pub(crate) struct LList(pub ListRef);
/// A map seen from Lua.
pub(crate) struct LMap(pub MapRef);
/// A blob seen from Lua.
pub(crate) struct LBytes(pub BytesRef);
/// A GeoJSON value seen from Lua.
pub(crate) struct LGeo(pub Arc<str>);

/// Largest size a `bytes` value may be grown to by a setter (keeps a wild
/// index from allocating gigabytes).
const MAX_BYTES_LEN: usize = 16 << 20;

// ---------------------------------------------------------------------------
// Lua <-> Elem
// ---------------------------------------------------------------------------

/// A Lua value as a container element; `None` for what the server cannot
/// hold (tables, functions, records, ...).
pub(crate) fn to_elem(value: &Lv) -> Option<Elem> {
    match value {
        Lv::Nil => Some(Elem::Nil),
        Lv::Boolean(b) => Some(Elem::Bool(*b)),
        Lv::Integer(i) => Some(Elem::Int(*i)),
        Lv::Number(n) => Some(Elem::Float(*n)),
        Lv::String(s) => Some(Elem::Str(c_string(&s.as_bytes()))),
        Lv::UserData(ud) => userdata_elem(ud),
        _ => None,
    }
}

pub(crate) fn userdata_elem(ud: &AnyUserData) -> Option<Elem> {
    if let Ok(l) = ud.borrow::<LList>() {
        return Some(Elem::List(l.0.clone()));
    }
    if let Ok(m) = ud.borrow::<LMap>() {
        return Some(Elem::Map(m.0.clone()));
    }
    if let Ok(b) = ud.borrow::<LBytes>() {
        return Some(Elem::Bytes(b.0.clone()));
    }
    if let Ok(g) = ud.borrow::<LGeo>() {
        return Some(Elem::Geo(g.0.clone()));
    }
    None
}

pub(crate) fn push_elem(lua: &Lua, elem: &Elem) -> Result<Lv> {
    Ok(match elem {
        Elem::Nil => Lv::Nil,
        Elem::Bool(b) => Lv::Boolean(*b),
        Elem::Int(i) => Lv::Integer(*i),
        Elem::Float(f) => Lv::Number(*f),
        Elem::Str(s) => Lv::String(lua.create_string(s)?),
        Elem::Bytes(b) => Lv::UserData(lua.create_userdata(LBytes(b.clone()))?),
        Elem::List(l) => Lv::UserData(lua.create_userdata(LList(l.clone()))?),
        Elem::Map(m) => Lv::UserData(lua.create_userdata(LMap(m.clone()))?),
        Elem::Geo(g) => Lv::UserData(lua.create_userdata(LGeo(g.clone()))?),
    })
}

fn list_arg(lua: &Lua, value: &Lv, n: usize, fname: &str) -> Result<ListRef> {
    if let Lv::UserData(ud) = value
        && let Ok(l) = ud.borrow::<LList>()
    {
        return Ok(l.0.clone());
    }
    Err(bad_userdata_arg(lua, n, fname, "List", value))
}

fn map_arg(lua: &Lua, value: &Lv, n: usize, fname: &str) -> Result<MapRef> {
    if let Lv::UserData(ud) = value
        && let Ok(m) = ud.borrow::<LMap>()
    {
        return Ok(m.0.clone());
    }
    Err(bad_userdata_arg(lua, n, fname, "Map", value))
}

fn bytes_arg(lua: &Lua, value: &Lv, n: usize, fname: &str) -> Result<BytesRef> {
    if let Lv::UserData(ud) = value
        && let Ok(b) = ud.borrow::<LBytes>()
    {
        return Ok(b.0.clone());
    }
    Err(bad_userdata_arg(lua, n, fname, "Bytes", value))
}

fn arg(args: &[Lv], i: usize) -> &Lv {
    args.get(i).unwrap_or(&Lv::Nil)
}

// ---------------------------------------------------------------------------
// list
// ---------------------------------------------------------------------------

impl UserData for LList {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type, "List");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, this, key: Lv| {
            let i = index_key(lua, &key, "index")?;
            let item = usize::try_from(i)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| this.0.lock().get(i).cloned());
            match item {
                Some(item) => push_elem(lua, &item),
                None => Ok(Lv::Nil),
            }
        });
        methods.add_meta_method(MetaMethod::NewIndex, |lua, this, (key, value): (Lv, Lv)| {
            let i = index_key(lua, &key, "newindex")?;
            if i <= 0 {
                return Err(raise(
                    lua,
                    &format!(
                        "list index {i} is out of range (l[i] = v needs i >= 1; a real server crashes on this)"
                    ),
                ));
            }
            if let Some(elem) = to_elem(&value) {
                let len = this.0.lock().len();
                charge_elem(&elem, (i as usize).saturating_sub(len + 1))?;
                set_padded(&mut this.0.lock(), i as usize, elem);
            }
            Ok(())
        });
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.0.lock().len()));
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            let items = this.0.lock().clone();
            Ok(render_list(&items, 0))
        });
    }
}

/// A list index as `luaL_checkinteger` reads it.
fn index_key(lua: &Lua, key: &Lv, fname: &str) -> Result<i64> {
    match key {
        Lv::Integer(i) => Ok(*i),
        Lv::Number(_) => int_arg(lua, key, 2, fname),
        _ => Err(bad_arg(lua, 2, fname, "number", key)),
    }
}

/// Sets 1-based `i`, padding with NIL past the end.
fn set_padded(items: &mut Vec<Elem>, i: usize, elem: Elem) {
    if i > items.len() {
        items.resize(i - 1, Elem::Nil);
        items.push(elem);
    } else {
        items[i - 1] = elem;
    }
}

fn list_from_table(table: &Table) -> Result<Vec<Elem>> {
    let mut items = Vec::new();
    for pair in table.pairs::<Lv, Lv>() {
        let (key, value) = pair?;
        if !matches!(key, Lv::Integer(_) | Lv::Number(_)) {
            continue;
        }
        // A nested Lua table (or another unsupported value) becomes NIL.
        let elem = to_elem(&value).unwrap_or(Elem::Nil);
        charge(cost(&elem))?;
        items.push(elem);
    }
    Ok(items)
}

fn new_list(lua: &Lua, items: Vec<Elem>) -> Result<AnyUserData> {
    lua.create_userdata(LList(super::elem::shared(items)))
}

pub(crate) fn register_list(lua: &Lua) -> Result<Table> {
    let module = lua.create_table()?;
    let f = |name: &str, func: mlua::Function| module.raw_set(name, func);

    let create = lua.create_function(|lua, args: Variadic<Lv>| {
        let ok = match args.len() {
            1 | 2 => {
                let cap = as_int(arg(&args, 0));
                let step = if args.len() == 2 {
                    as_int(arg(&args, 1))
                } else {
                    Some(10)
                };
                matches!((cap, step), (Some(c), Some(s)) if c >= 0 && s >= 0)
            }
            _ => false,
        };
        if !ok {
            return Ok(MultiValue::new());
        }
        Ok(MultiValue::from_iter([Lv::UserData(new_list(
            lua,
            Vec::new(),
        )?)]))
    })?;
    f("create", create.clone())?;
    f("new", create)?;
    f(
        "size",
        lua.create_function(|lua, l: Lv| Ok(list_arg(lua, &l, 1, "size")?.lock().len()))?,
    )?;
    f(
        "append",
        lua.create_function(|lua, (l, v): (Lv, Lv)| {
            let l = list_arg(lua, &l, 1, "append")?;
            if let Some(elem) = to_elem(&v) {
                charge(cost(&elem))?;
                l.lock().push(elem);
            }
            Ok(())
        })?,
    )?;
    f(
        "prepend",
        lua.create_function(|lua, (l, v): (Lv, Lv)| {
            let l = list_arg(lua, &l, 1, "prepend")?;
            if let Some(elem) = to_elem(&v) {
                charge(cost(&elem))?;
                l.lock().insert(0, elem);
            }
            Ok(())
        })?,
    )?;
    f(
        "insert",
        lua.create_function(|lua, (l, i, v): (Lv, Lv, Lv)| {
            let l = list_arg(lua, &l, 1, "insert")?;
            let i = int_arg(lua, &i, 2, "insert")?;
            if let (Some(elem), true) = (to_elem(&v), i >= 1) {
                let i = i as usize;
                let len = l.lock().len();
                charge_elem(&elem, i.saturating_sub(len + 1))?;
                let mut items = l.lock();
                if i > items.len() {
                    set_padded(&mut items, i, elem);
                } else {
                    items.insert(i - 1, elem);
                }
            }
            Ok(())
        })?,
    )?;
    f(
        "remove",
        lua.create_function(|lua, (l, i): (Lv, Lv)| {
            let l = list_arg(lua, &l, 1, "remove")?;
            let i = int_arg(lua, &i, 2, "remove")?;
            let mut items = l.lock();
            if i >= 1 && (i as usize) <= items.len() {
                items.remove(i as usize - 1);
            }
            Ok(())
        })?,
    )?;
    f(
        "trim",
        lua.create_function(|lua, (l, i): (Lv, Lv)| {
            let l = list_arg(lua, &l, 1, "trim")?;
            let i = int_arg(lua, &i, 2, "trim")?;
            if i >= 1 {
                l.lock().truncate(i as usize - 1);
            }
            Ok(())
        })?,
    )?;
    f(
        "take",
        lua.create_function(|lua, (l, n): (Lv, Lv)| {
            let l = list_arg(lua, &l, 1, "take")?;
            let n = int_arg(lua, &n, 2, "take")?;
            if n <= 0 {
                return Ok(Lv::Nil);
            }
            let items: Vec<Elem> = l.lock().iter().take(n as usize).cloned().collect();
            charge(items.len() * SLOT)?;
            Ok(Lv::UserData(new_list(lua, items)?))
        })?,
    )?;
    f(
        "drop",
        lua.create_function(|lua, (l, n): (Lv, Lv)| {
            let l = list_arg(lua, &l, 1, "drop")?;
            let n = int_arg(lua, &n, 2, "drop")?;
            if n <= 0 {
                return Ok(Lv::Nil);
            }
            let items: Vec<Elem> = l.lock().iter().skip(n as usize).cloned().collect();
            charge(items.len() * SLOT)?;
            Ok(Lv::UserData(new_list(lua, items)?))
        })?,
    )?;
    f(
        "concat",
        lua.create_function(|lua, (a, b): (Lv, Lv)| {
            let a = list_arg(lua, &a, 1, "concat")?;
            let b = list_arg(lua, &b, 2, "concat")?;
            let tail = b.lock().clone();
            charge(tail.len() * SLOT)?;
            a.lock().extend(tail);
            Ok(())
        })?,
    )?;
    f(
        "iterator",
        lua.create_function(|lua, l: Lv| {
            let l = list_arg(lua, &l, 1, "iterator")?;
            let mut next = 0usize;
            lua.create_function_mut(move |lua, _: MultiValue| {
                let item = l.lock().get(next).cloned();
                next += 1;
                match item {
                    Some(Elem::Nil) | None => Ok(Lv::Nil),
                    Some(item) => push_elem(lua, &item),
                }
            })
        })?,
    )?;
    f(
        "tostring",
        lua.create_function(|lua, l: Lv| {
            let items = list_arg(lua, &l, 1, "tostring")?.lock().clone();
            Ok(render_list(&items, 0))
        })?,
    )?;
    f(
        "nbytes",
        lua.create_function(|lua, l: Lv| {
            let l = list_arg(lua, &l, 1, "nbytes")?;
            let value = Elem::List(l).to_value();
            let value = value.ok_or_else(|| raise(lua, &too_deep("the list")))?;
            Ok(super::record::packed_size(&value))
        })?,
    )?;

    let meta = lua.create_table()?;
    meta.raw_set(
        "__call",
        lua.create_function(|lua, (_, init): (Lv, Lv)| {
            let items = match &init {
                Lv::Table(t) => list_from_table(t)?,
                _ => Vec::new(),
            };
            new_list(lua, items)
        })?,
    )?;
    module.set_metatable(Some(meta))?;
    Ok(module)
}

fn as_int(value: &Lv) -> Option<i64> {
    match value {
        Lv::Integer(i) => Some(*i),
        Lv::Number(n) if n.fract() == 0.0 => Some(*n as i64),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// map
// ---------------------------------------------------------------------------

impl UserData for LMap {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type, "Map");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, this, key: Lv| {
            let Some(key) = to_elem(&key).as_ref().and_then(MapKey::from_elem) else {
                return Ok(Lv::Nil);
            };
            let value = this.0.lock().get(&key).cloned();
            match value {
                Some(v) => push_elem(lua, &v),
                None => Ok(Lv::Nil),
            }
        });
        methods.add_meta_method(MetaMethod::NewIndex, |_, this, (key, value): (Lv, Lv)| {
            let key = to_elem(&key).as_ref().and_then(MapKey::from_elem);
            if let (Some(key), Some(value)) = (key, to_elem(&value)) {
                charge(key_cost(&key) + cost(&value))?;
                this.0.lock().insert(key, value);
            }
            Ok(())
        });
        methods.add_meta_method(MetaMethod::Len, |_, this, ()| Ok(this.0.lock().len()));
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| Ok(map_text(&this.0)));
    }
}

fn map_text(map: &MapRef) -> String {
    let entries: Vec<(MapKey, Elem)> = map
        .lock()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    render_map(&entries, 0)
}

fn map_from_table(table: &Table) -> Result<BTreeMap<MapKey, Elem>> {
    let mut entries = BTreeMap::new();
    for pair in table.pairs::<Lv, Lv>() {
        let (key, value) = pair?;
        let key = to_elem(&key).as_ref().and_then(MapKey::from_elem);
        if let (Some(key), Some(value)) = (key, to_elem(&value)) {
            charge(key_cost(&key) + cost(&value))?;
            entries.insert(key, value);
        }
    }
    Ok(entries)
}

fn key_cost(key: &MapKey) -> usize {
    SLOT + match key {
        MapKey::Int(_) => 0,
        MapKey::Str(s) => s.len(),
        MapKey::Bytes(b) => b.len(),
    }
}

fn new_map(lua: &Lua, entries: BTreeMap<MapKey, Elem>) -> Result<AnyUserData> {
    lua.create_userdata(LMap(super::elem::shared(entries)))
}

/// What a map iterator yields for each entry.
#[derive(Clone, Copy)]
enum MapVisit {
    Pairs,
    Keys,
    Values,
}

fn map_iterator(lua: &Lua, map: MapRef, visit: MapVisit) -> Result<mlua::Function> {
    let entries: Vec<(MapKey, Elem)> = map
        .lock()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut next = 0usize;
    lua.create_function_mut(move |lua, _: MultiValue| {
        let Some((key, value)) = entries.get(next) else {
            return Ok(MultiValue::new());
        };
        next += 1;
        let out = match visit {
            MapVisit::Pairs => vec![push_elem(lua, &key.to_elem())?, push_elem(lua, value)?],
            MapVisit::Keys => vec![push_elem(lua, &key.to_elem())?],
            MapVisit::Values => match value {
                Elem::Nil => {
                    next = entries.len();
                    vec![Lv::Nil]
                }
                v => vec![push_elem(lua, v)?],
            },
        };
        Ok(MultiValue::from_iter(out))
    })
}

pub(crate) fn register_map(lua: &Lua) -> Result<Table> {
    let module = lua.create_table()?;
    let f = |name: &str, func: mlua::Function| module.raw_set(name, func);

    let create = lua.create_function(|lua, args: Variadic<Lv>| {
        let capacity_ok = as_int(arg(&args, 0)).is_some_and(|c| c >= 1);
        if args.len() != 1 || !capacity_ok {
            return Ok(MultiValue::new());
        }
        Ok(MultiValue::from_iter([Lv::UserData(new_map(
            lua,
            BTreeMap::new(),
        )?)]))
    })?;
    f("create", create.clone())?;
    f("new", create)?;
    f(
        "size",
        lua.create_function(|lua, m: Lv| Ok(map_arg(lua, &m, 1, "size")?.lock().len()))?,
    )?;
    f(
        "remove",
        lua.create_function(|lua, (m, k): (Lv, Lv)| {
            let m = map_arg(lua, &m, 1, "remove")?;
            if let Some(key) = to_elem(&k).as_ref().and_then(MapKey::from_elem) {
                m.lock().remove(&key);
            }
            Ok(())
        })?,
    )?;
    for (name, visit) in [
        ("pairs", MapVisit::Pairs),
        ("iterator", MapVisit::Pairs),
        ("keys", MapVisit::Keys),
        ("values", MapVisit::Values),
    ] {
        f(
            name,
            lua.create_function(move |lua, m: Lv| {
                map_iterator(lua, map_arg(lua, &m, 1, name)?, visit)
            })?,
        )?;
    }
    f(
        "tostring",
        lua.create_function(|lua, m: Lv| Ok(map_text(&map_arg(lua, &m, 1, "tostring")?)))?,
    )?;
    f(
        "nbytes",
        lua.create_function(|lua, m: Lv| {
            let m = map_arg(lua, &m, 1, "nbytes")?;
            let value = Elem::Map(m).to_value();
            let value = value.ok_or_else(|| raise(lua, &too_deep("the map")))?;
            Ok(super::record::packed_size(&value))
        })?,
    )?;

    let meta = lua.create_table()?;
    meta.raw_set(
        "__call",
        lua.create_function(|lua, (_, init): (Lv, Lv)| {
            let entries = match &init {
                Lv::Table(t) => map_from_table(t)?,
                _ => BTreeMap::new(),
            };
            new_map(lua, entries)
        })?,
    )?;
    module.set_metatable(Some(meta))?;
    Ok(module)
}

// ---------------------------------------------------------------------------
// bytes
// ---------------------------------------------------------------------------

impl UserData for LBytes {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type, "Bytes");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, this, key: Lv| {
            let i = index_key(lua, &key, "index")?;
            Ok(byte_at(&this.0.lock(), i))
        });
        methods.add_meta_method(MetaMethod::NewIndex, |lua, this, (key, value): (Lv, Lv)| {
            let i = index_key(lua, &key, "newindex")?;
            let v = int_arg(lua, &value, 3, "newindex")?;
            write_at(&mut this.0.lock(), i, &[v as u8]);
            Ok(())
        });
        // The server's length handler wants exactly one argument and Lua
        // passes two, so `#b` is always 0 there.
        methods.add_meta_method(MetaMethod::Len, |_, _, _: MultiValue| Ok(0));
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(bytes_text(&this.0.lock()))
        });
    }
}

/// `41 42` (upper-case hex, space separated), or `Bytes()` when empty.
fn bytes_text(b: &BytesData) -> String {
    if b.data.is_empty() {
        return "Bytes()".to_string();
    }
    let hex: Vec<String> = b.data.iter().map(|x| format!("{x:02X}")).collect();
    hex.join(" ")
}

fn byte_at(b: &BytesData, i: i64) -> Option<i64> {
    let i = usize::try_from(i).ok()?.checked_sub(1)?;
    b.data.get(i).map(|&x| x as i64)
}

/// Writes `src` at 1-based `i`, growing (zero-filled) as needed.
fn write_at(b: &mut BytesData, i: i64, src: &[u8]) -> bool {
    let Some(offset) = usize::try_from(i).ok().and_then(|i| i.checked_sub(1)) else {
        return false;
    };
    let end = offset + src.len();
    if end > MAX_BYTES_LEN || charge(end.saturating_sub(b.data.len())).is_err() {
        return false;
    }
    if end > b.data.len() {
        b.data.resize(end, 0);
    }
    b.data[offset..end].copy_from_slice(src);
    true
}

fn read_at(b: &BytesData, i: i64, n: usize) -> Option<&[u8]> {
    let offset = usize::try_from(i).ok()?.checked_sub(1)?;
    b.data.get(offset..offset.checked_add(n)?)
}

fn var_int(mut v: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(5);
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

fn read_var_int(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        value |= ((b & 0x7f) as u32) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

fn int_bytes(v: i64, width: usize, big_endian: bool) -> Vec<u8> {
    let le = v.to_le_bytes();
    let mut out = le[..width].to_vec();
    if big_endian {
        out.reverse();
    }
    out
}

fn int_from(bytes: &[u8], big_endian: bool) -> i64 {
    let mut le = bytes.to_vec();
    if big_endian {
        le.reverse();
    }
    match le.len() {
        2 => i16::from_le_bytes([le[0], le[1]]) as i64,
        4 => i32::from_le_bytes([le[0], le[1], le[2], le[3]]) as i64,
        _ => i64::from_le_bytes(le.try_into().unwrap_or([0; 8])),
    }
}

fn string_arg(lua: &Lua, value: &Lv, n: usize, fname: &str) -> Result<Vec<u8>> {
    match value {
        Lv::String(s) => Ok(s.as_bytes().to_vec()),
        Lv::Integer(_) | Lv::Number(_) => Ok(value.to_string()?.into_bytes()),
        _ => Err(bad_arg(lua, n, fname, "string", value)),
    }
}

pub(crate) fn register_bytes(lua: &Lua) -> Result<Table> {
    let module = lua.create_table()?;
    let f = |name: &str, func: mlua::Function| module.raw_set(name, func);

    f(
        "size",
        lua.create_function(|lua, b: Lv| Ok(bytes_arg(lua, &b, 1, "size")?.lock().data.len()))?,
    )?;
    // Only ever guarantees capacity: the size does not change.
    f(
        "set_size",
        lua.create_function(|lua, (b, _n): (Lv, Lv)| {
            bytes_arg(lua, &b, 1, "set_size")?;
            Ok(true)
        })?,
    )?;
    f(
        "get_type",
        lua.create_function(|lua, b: Lv| Ok(bytes_arg(lua, &b, 1, "get_type")?.lock().ty))?,
    )?;
    f(
        "set_type",
        lua.create_function(|lua, (b, t): (Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "set_type")?;
            let t = int_arg(lua, &t, 2, "set_type")?;
            b.lock().ty = t as u8;
            Ok(true)
        })?,
    )?;
    f(
        "get_byte",
        lua.create_function(|lua, (b, i): (Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "get_byte")?;
            let i = int_arg(lua, &i, 2, "get_byte")?;
            Ok(byte_at(&b.lock(), i))
        })?,
    )?;
    f(
        "set_byte",
        lua.create_function(|lua, (b, i, v): (Lv, Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "set_byte")?;
            let i = int_arg(lua, &i, 2, "set_byte")?;
            let v = int_arg(lua, &v, 3, "set_byte")?;
            Ok(write_at(&mut b.lock(), i, &[v as u8]))
        })?,
    )?;
    f(
        "append_byte",
        lua.create_function(|lua, (b, v): (Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "append_byte")?;
            let v = int_arg(lua, &v, 2, "append_byte")?;
            if !(0..=255).contains(&v) {
                return Ok(false);
            }
            charge(1)?;
            b.lock().data.push(v as u8);
            Ok(true)
        })?,
    )?;
    for (width, bits) in [(2usize, "16"), (4, "32"), (8, "64")] {
        for (suffix, big_endian) in [("", true), ("_be", true), ("_le", false)] {
            let get = format!("get_int{bits}{suffix}");
            let set = format!("set_int{bits}{suffix}");
            let append = format!("append_int{bits}{suffix}");
            let name = get.clone();
            f(
                &get,
                lua.create_function(move |lua, (b, i): (Lv, Lv)| {
                    let b = bytes_arg(lua, &b, 1, &name)?;
                    let i = int_arg(lua, &i, 2, &name)?;
                    let b = b.lock();
                    Ok(read_at(&b, i, width).map(|x| int_from(x, big_endian)))
                })?,
            )?;
            let name = set.clone();
            f(
                &set,
                lua.create_function(move |lua, (b, i, v): (Lv, Lv, Lv)| {
                    let b = bytes_arg(lua, &b, 1, &name)?;
                    let i = int_arg(lua, &i, 2, &name)?;
                    let v = int_arg(lua, &v, 3, &name)?;
                    Ok(write_at(&mut b.lock(), i, &int_bytes(v, width, big_endian)))
                })?,
            )?;
            let name = append.clone();
            f(
                &append,
                lua.create_function(move |lua, (b, v): (Lv, Lv)| {
                    let b = bytes_arg(lua, &b, 1, &name)?;
                    let v = int_arg(lua, &v, 2, &name)?;
                    charge(width)?;
                    b.lock()
                        .data
                        .extend_from_slice(&int_bytes(v, width, big_endian));
                    Ok(true)
                })?,
            )?;
        }
    }
    f(
        "get_var_int",
        lua.create_function(|lua, (b, i): (Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "get_var_int")?;
            let i = int_arg(lua, &i, 2, "get_var_int")?;
            let b = b.lock();
            let decoded = usize::try_from(i)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|o| b.data.get(o..))
                .and_then(read_var_int);
            Ok(match decoded {
                Some((v, n)) => {
                    MultiValue::from_iter([Lv::Integer(v as i64), Lv::Integer(n as i64)])
                }
                None => MultiValue::from_iter([Lv::Nil]),
            })
        })?,
    )?;
    f(
        "set_var_int",
        lua.create_function(|lua, (b, i, v): (Lv, Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "set_var_int")?;
            let i = int_arg(lua, &i, 2, "set_var_int")?;
            let v = int_arg(lua, &v, 3, "set_var_int")?;
            let encoded = var_int(v as u32);
            Ok(if write_at(&mut b.lock(), i, &encoded) {
                encoded.len()
            } else {
                0
            })
        })?,
    )?;
    // The server writes the encoded bytes past the end without growing the
    // size, so nothing visible is appended; only the length is returned.
    f(
        "append_var_int",
        lua.create_function(|lua, (b, v): (Lv, Lv)| {
            bytes_arg(lua, &b, 1, "append_var_int")?;
            let v = int_arg(lua, &v, 2, "append_var_int")?;
            Ok(var_int(v as u32).len())
        })?,
    )?;
    f(
        "get_string",
        lua.create_function(|lua, (b, i, n): (Lv, Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "get_string")?;
            let i = int_arg(lua, &i, 2, "get_string")?;
            let n = int_arg(lua, &n, 3, "get_string")?;
            let b = b.lock();
            match usize::try_from(n).ok().and_then(|n| read_at(&b, i, n)) {
                Some(x) => Ok(Lv::String(lua.create_string(x)?)),
                None => Ok(Lv::Nil),
            }
        })?,
    )?;
    f(
        "get_bytes",
        lua.create_function(|lua, (b, i, n): (Lv, Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "get_bytes")?;
            let i = int_arg(lua, &i, 2, "get_bytes")?;
            let n = int_arg(lua, &n, 3, "get_bytes")?;
            let data = {
                let b = b.lock();
                usize::try_from(n)
                    .ok()
                    .and_then(|n| read_at(&b, i, n))
                    .map(<[u8]>::to_vec)
            };
            match data {
                Some(data) => push_elem(lua, &Elem::new_bytes(BLOB, data)),
                None => Ok(Lv::Nil),
            }
        })?,
    )?;
    f(
        "set_string",
        lua.create_function(|lua, (b, i, s): (Lv, Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "set_string")?;
            let i = int_arg(lua, &i, 2, "set_string")?;
            let s = string_arg(lua, &s, 3, "set_string")?;
            Ok(write_at(&mut b.lock(), i, &s))
        })?,
    )?;
    f(
        "set_bytes",
        lua.create_function(|lua, (b, i, src, n): (Lv, Lv, Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "set_bytes")?;
            let i = int_arg(lua, &i, 2, "set_bytes")?;
            let src = bytes_arg(lua, &src, 3, "set_bytes")?;
            let n = int_arg(lua, &n, 4, "set_bytes")?;
            let data = src.lock().data.clone();
            match usize::try_from(n).ok().and_then(|n| data.get(..n)) {
                Some(part) => Ok(write_at(&mut b.lock(), i, part)),
                None => Ok(false),
            }
        })?,
    )?;
    f(
        "append_string",
        lua.create_function(|lua, (b, s): (Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "append_string")?;
            let s = string_arg(lua, &s, 2, "append_string")?;
            charge(s.len())?;
            b.lock().data.extend_from_slice(&s);
            Ok(true)
        })?,
    )?;
    f(
        "append_bytes",
        lua.create_function(|lua, (b, src, n): (Lv, Lv, Lv)| {
            let b = bytes_arg(lua, &b, 1, "append_bytes")?;
            let src = bytes_arg(lua, &src, 2, "append_bytes")?;
            let n = int_arg(lua, &n, 3, "append_bytes")?;
            let data = src.lock().data.clone();
            match usize::try_from(n).ok().and_then(|n| data.get(..n)) {
                Some(part) => {
                    charge(part.len())?;
                    b.lock().data.extend_from_slice(part);
                    Ok(true)
                }
                None => Ok(false),
            }
        })?,
    )?;
    f(
        "tostring",
        lua.create_function(|lua, b: Lv| {
            let b = bytes_arg(lua, &b, 1, "tostring")?;
            Ok(bytes_text(&b.lock()))
        })?,
    )?;

    let meta = lua.create_table()?;
    meta.raw_set(
        "__call",
        lua.create_function(|lua, _: MultiValue| {
            lua.create_userdata(LBytes(super::elem::shared(BytesData {
                ty: BLOB,
                data: Vec::new(),
            })))
        })?,
    )?;
    module.set_metatable(Some(meta))?;
    Ok(module)
}

// ---------------------------------------------------------------------------
// geojson
// ---------------------------------------------------------------------------

impl UserData for LGeo {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type, "GeoJSON");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("\"{}\"", this.0))
        });
    }
}

/// The `geojson` table has no keys at all: only its constructor.
pub(crate) fn register_geojson(lua: &Lua) -> Result<Table> {
    let module = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.raw_set(
        "__call",
        lua.create_function(|lua, args: Variadic<Lv>| {
            // Exactly one string, or no value at all.
            match args.get(1) {
                Some(Lv::String(s)) if args.len() == 2 => {
                    // GeoJSON is text: bytes that are not UTF-8 fail its parse anyway.
                    let text: Arc<str> = Arc::from(String::from_utf8_lossy(c_bytes(&s.as_bytes())));
                    Ok(MultiValue::from_iter([Lv::UserData(
                        lua.create_userdata(LGeo(text))?,
                    )]))
                }
                _ => Ok(MultiValue::new()),
            }
        })?,
    )?;
    module.set_metatable(Some(meta))?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_int_round_trip() {
        assert_eq!(var_int(300), vec![0xac, 0x02]);
        assert_eq!(read_var_int(&[0xac, 0x02]), Some((300, 2)));
        assert_eq!(read_var_int(&[0x80]), None);
    }

    #[test]
    fn ints_big_and_little_endian() {
        assert_eq!(int_bytes(0x0102, 2, true), vec![1, 2]);
        assert_eq!(int_bytes(0x0102, 2, false), vec![2, 1]);
        assert_eq!(int_from(&[0xff, 0xfe], true), -2);
        assert_eq!(int_from(&[1, 0, 0, 0], false), 1);
    }

    #[test]
    fn writes_grow_zero_filled() {
        let mut b = BytesData::default();
        assert!(write_at(&mut b, 3, &[7]));
        assert_eq!(b.data, vec![0, 0, 7]);
        assert!(!write_at(&mut b, 0, &[1]));
        assert_eq!(read_at(&b, 2, 2), Some(&[0u8, 7][..]));
        assert_eq!(read_at(&b, 3, 2), None);
    }
}
