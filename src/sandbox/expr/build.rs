//! Field 43's msgpack tree compiled into a postfix program, with the
//! server's build-time checks (operand types, arity, names): `Build` (4).
//! What the sandbox does not evaluate is `Unsupported` (16), never run as
//! something else. The tree is walked with an explicit stack, so any nesting
//! that fits the field is compiled without recursion.

use super::FilterError;
use super::posix;
use super::read::{Head, Reader, is_blob};
use crate::sandbox::value::Value;

/// Static value types: the wire's numbering (0 NIL ... 9 HLL) plus `Any`,
/// the type of `unknown()`, which fits wherever a value does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Nil,
    Bool,
    Int,
    Str,
    List,
    Map,
    Blob,
    Float,
    Geo,
    Hll,
    Any,
}

impl Ty {
    fn from_wire(code: i64) -> Result<Ty, FilterError> {
        Ok(match code {
            0 => Ty::Nil,
            1 => Ty::Bool,
            2 => Ty::Int,
            3 => Ty::Str,
            4 => Ty::List,
            5 => Ty::Map,
            6 => Ty::Blob,
            7 => Ty::Float,
            8 => Ty::Geo,
            9 => Ty::Hll,
            other => return Err(build(format!("unknown value type {other}"))),
        })
    }

    fn fits(self, want: Ty) -> bool {
        self == want || self == Ty::Any || want == Ty::Any
    }

    fn of(value: &Value) -> Ty {
        match value {
            Value::Nil => Ty::Nil,
            Value::Bool(_) => Ty::Bool,
            Value::Int(_) => Ty::Int,
            Value::Float(_) => Ty::Float,
            Value::Str(_) => Ty::Str,
            Value::Bytes { .. } if is_blob(value) => Ty::Blob,
            Value::Bytes { ty: 18, .. } => Ty::Hll,
            Value::Bytes { .. } => Ty::Blob,
            Value::List(_) => Ty::List,
            Value::Map(_) => Ty::Map,
            Value::GeoJson(_) => Ty::Geo,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    DigestModulo(i64),
    DeviceSize,
    LastUpdate,
    SinceUpdate,
    VoidTime,
    Ttl,
    SetName,
    KeyExists,
    IsTombstone,
    MemorySize,
    RecordSize,
}

impl Meta {
    fn ty(self) -> Ty {
        match self {
            Meta::SetName => Ty::Str,
            Meta::KeyExists | Meta::IsTombstone => Ty::Bool,
            _ => Ty::Int,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cdt {
    ListSize,
    ListByIndex(i64),
    MapSize,
    MapByKey(Value),
}

/// One step of the postfix program; operands are the values on the stack.
#[derive(Debug, Clone)]
pub enum Ins {
    Push(Value),
    Unknown,
    Bin(String, Ty),
    BinType(String),
    Key(Ty),
    Meta(Meta),
    Cmp(CmpOp),
    Regex(posix::Regex),
    InList,
    And(usize),
    Or(usize),
    Not,
    Exclusive(usize),
    Arith(Arith, usize),
    Pow,
    Mod,
    Abs,
    ToInt,
    ToFloat,
    Min(usize),
    Max(usize),
    /// `n` operands: condition, value, ..., default.
    Cond(usize),
    Store(usize),
    Load(usize),
    /// A CDT read with the call's declared result type.
    Cdt(Cdt, Ty),
}

pub struct Program {
    pub code: Vec<Ins>,
    pub slots: usize,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Program({} steps)", self.code.len())
    }
}

fn build(why: impl Into<String>) -> FilterError {
    FilterError::Build(why.into())
}

fn unsupported(what: impl Into<String>) -> FilterError {
    FilterError::unsupported(what)
}

/// What an op does once its expression operands are compiled.
enum Kind {
    Cmp(CmpOp),
    Regex(posix::Regex),
    InList,
    And,
    Or,
    Not,
    Exclusive,
    Arith(Arith),
    Pow,
    Mod,
    Abs,
    ToInt,
    ToFloat,
    Min,
    Max,
    Cond,
    Call(Cdt, Ty),
    /// `defs` definitions, then the body; `base`: the scope's length before.
    Let {
        defs: usize,
        base: usize,
        pending: Option<String>,
    },
}

/// An op waiting for its operands.
struct Frame {
    kind: Kind,
    /// Expression operands still to come.
    left: usize,
    tys: Vec<Ty>,
}

/// A `let` name in scope.
struct Binding {
    name: String,
    slot: usize,
    ty: Ty,
}

/// The op codes a server knows but the sandbox does not evaluate (16):
/// cmp_geo, log, floor, ceil, the integer bit ops, and everything from 83
/// up that is not cond/var/let/quote/call (newer ops such as path
/// expressions). Other codes are unknown to the server (4).
fn known_but_refused(op: i64) -> Option<&'static str> {
    Some(match op {
        8 => "cmp_geo",
        25 => "log",
        28 => "floor",
        29 => "ceil",
        32..=41 => "integer bit operations",
        83..=122 | 128.. => "this op code",
        _ => return None,
    })
}

pub fn compile(wire: &[u8]) -> Result<Program, FilterError> {
    let mut c = Compiler {
        r: Reader::new(wire),
        code: Vec::new(),
        frames: Vec::new(),
        scope: Vec::new(),
        slots: 0,
    };
    if wire.is_empty() {
        return Err(build("empty expression"));
    }
    let ty = c.run()?;
    if c.r.remaining() != 0 {
        return Err(build("bytes after the expression"));
    }
    if !ty.fits(Ty::Bool) {
        return Err(build("the expression is not boolean"));
    }
    Ok(Program {
        code: c.code,
        slots: c.slots,
    })
}

struct Compiler<'a> {
    r: Reader<'a>,
    code: Vec<Ins>,
    frames: Vec<Frame>,
    scope: Vec<Binding>,
    slots: usize,
}

impl Compiler<'_> {
    /// Compiles one whole expression; returns its type.
    fn run(&mut self) -> Result<Ty, FilterError> {
        loop {
            // Before the next operand of a `let`, read the name it defines.
            if let Some(Frame {
                kind: Kind::Let { defs, pending, .. },
                tys,
                ..
            }) = self.frames.last_mut()
                && tys.len() < *defs
            {
                *pending = Some(self.r.name()?);
            }
            let mut done = self.start()?;
            // Hand each finished operand to the op waiting for it.
            while let Some(ty) = done {
                let Some(frame) = self.frames.last_mut() else {
                    return Ok(ty);
                };
                if let Kind::Let {
                    base,
                    pending: pending @ Some(_),
                    ..
                } = &mut frame.kind
                {
                    let name = pending.take().unwrap_or_default();
                    if self.scope[*base..].iter().any(|b| b.name == name) {
                        return Err(build(format!("{name:?} defined twice in one let")));
                    }
                    self.code.push(Ins::Store(self.slots));
                    self.scope.push(Binding {
                        name,
                        slot: self.slots,
                        ty,
                    });
                    self.slots += 1;
                }
                frame.tys.push(ty);
                frame.left -= 1;
                if frame.left > 0 {
                    break;
                }
                let frame = self.frames.pop().expect("a frame");
                done = Some(self.finish(frame)?);
            }
        }
    }

    /// Starts the expression at the reader: a leaf is compiled at once
    /// (`Some(type)`); an op with operands pushes a frame (`None`).
    fn start(&mut self) -> Result<Option<Ty>, FilterError> {
        let head = self.r.head()?;
        let n = match head {
            Head::Array(n) => n,
            Head::Map(_) => {
                let value = self.r.literal(head, 0)?;
                return Ok(Some(self.push_literal(value)));
            }
            Head::Ext => return Err(unsupported("an ext value as an expression")),
            Head::Bytes(b) => {
                let value = self.r.literal(Head::Bytes(b), 0)?;
                if matches!(value, Value::GeoJson(_)) {
                    return Err(unsupported("GeoJSON literals"));
                }
                if Ty::of(&value) == Ty::Hll {
                    return Err(unsupported("HLL literals"));
                }
                return Ok(Some(self.push_literal(value)));
            }
            leaf => {
                let value = self.r.literal(leaf, 0)?;
                return Ok(Some(self.push_literal(value)));
            }
        };
        if n == 0 {
            return Err(build("an empty array is not an expression"));
        }
        let op = self.r.int()?;
        let args = n - 1;
        let arity = |want: usize| {
            if args == want {
                Ok(())
            } else {
                Err(build(format!("op {op} takes {want} arguments, got {args}")))
            }
        };
        let at_least = |min: usize| {
            if args >= min {
                Ok(())
            } else {
                Err(build(format!("op {op} needs at least {min} arguments")))
            }
        };
        let kind = match op {
            0 => {
                arity(0)?;
                self.code.push(Ins::Unknown);
                return Ok(Some(Ty::Any));
            }
            1..=6 => {
                arity(2)?;
                Kind::Cmp(
                    [
                        CmpOp::Eq,
                        CmpOp::Ne,
                        CmpOp::Gt,
                        CmpOp::Ge,
                        CmpOp::Lt,
                        CmpOp::Le,
                    ][op as usize - 1],
                )
            }
            7 => {
                arity(3)?;
                let flags = self.r.int()?;
                let pattern = self.r.name()?;
                Kind::Regex(posix::Regex::new(&pattern, flags).map_err(build)?)
            }
            9 => {
                arity(2)?;
                Kind::InList
            }
            16 | 17 | 19 => {
                at_least(1)?;
                match op {
                    16 => Kind::And,
                    17 => Kind::Or,
                    _ => Kind::Exclusive,
                }
            }
            18 => {
                arity(1)?;
                Kind::Not
            }
            20..=23 => {
                at_least(1)?;
                Kind::Arith([Arith::Add, Arith::Sub, Arith::Mul, Arith::Div][op as usize - 20])
            }
            24 => {
                arity(2)?;
                Kind::Pow
            }
            26 => {
                arity(2)?;
                Kind::Mod
            }
            27 | 30 | 31 => {
                arity(1)?;
                match op {
                    27 => Kind::Abs,
                    30 => Kind::ToInt,
                    _ => Kind::ToFloat,
                }
            }
            50 | 51 => {
                at_least(1)?;
                if op == 50 { Kind::Min } else { Kind::Max }
            }
            64 => {
                arity(1)?;
                let m = self.r.int()?;
                if m <= 0 {
                    return Err(build("digest_modulo needs a positive modulus"));
                }
                return Ok(Some(self.meta(Meta::DigestModulo(m))));
            }
            65..=74 => {
                arity(0)?;
                let meta = match op {
                    65 => Meta::DeviceSize,
                    66 => Meta::LastUpdate,
                    67 => Meta::SinceUpdate,
                    68 => Meta::VoidTime,
                    69 => Meta::Ttl,
                    70 => Meta::SetName,
                    71 => Meta::KeyExists,
                    72 => Meta::IsTombstone,
                    73 => Meta::MemorySize,
                    _ => Meta::RecordSize,
                };
                return Ok(Some(self.meta(meta)));
            }
            80 => {
                arity(1)?;
                let ty = Ty::from_wire(self.r.int()?)?;
                if !matches!(ty, Ty::Int | Ty::Str | Ty::Blob) {
                    return Err(build(format!("a key cannot be {ty:?}")));
                }
                self.code.push(Ins::Key(ty));
                return Ok(Some(ty));
            }
            81 => {
                arity(2)?;
                let ty = Ty::from_wire(self.r.int()?)?;
                let name = self.r.name()?;
                match ty {
                    Ty::Nil => return Err(build("a bin cannot be read as nil")),
                    Ty::Geo | Ty::Hll => return Err(unsupported(format!("{ty:?} bins"))),
                    _ => {}
                }
                self.code.push(Ins::Bin(name, ty));
                return Ok(Some(ty));
            }
            82 => {
                arity(1)?;
                let name = self.r.name()?;
                self.code.push(Ins::BinType(name));
                return Ok(Some(Ty::Int));
            }
            123 => {
                if args < 3 || args % 2 == 0 {
                    return Err(build("cond needs condition/value pairs and a default"));
                }
                Kind::Cond
            }
            124 => {
                arity(1)?;
                let name = self.r.name()?;
                let Some(b) = self.scope.iter().rev().find(|b| b.name == name) else {
                    return Err(build(format!("variable {name:?} is not defined")));
                };
                self.code.push(Ins::Load(b.slot));
                return Ok(Some(b.ty));
            }
            125 => {
                if args % 2 == 0 {
                    return Err(build("let needs name/value pairs and an expression"));
                }
                Kind::Let {
                    defs: args / 2,
                    base: self.scope.len(),
                    pending: None,
                }
            }
            126 => {
                arity(1)?;
                let head = self.r.head()?;
                if !matches!(head, Head::Array(_)) {
                    return Err(build("quote takes a list"));
                }
                let value = self.r.literal(head, 0)?;
                return Ok(Some(self.push_literal(value)));
            }
            127 => {
                arity(4)?;
                let ty = Ty::from_wire(self.r.int()?)?;
                let flags = self.r.int()?;
                if flags != 0 {
                    return Err(unsupported(format!(
                        "call flags {flags} (bit, HLL or modify calls)"
                    )));
                }
                self.cdt(ty)?
            }
            other => {
                return Err(match known_but_refused(other) {
                    Some(name) => unsupported(format!("op {other} ({name})")),
                    None => build(format!("unknown op code {other}")),
                });
            }
        };
        let left = match &kind {
            // Their leading arguments were read above.
            Kind::Regex(_) | Kind::Call(..) => 1,
            // The names are not operands.
            Kind::Let { defs, .. } => defs + 1,
            _ => args,
        };
        self.frames.push(Frame {
            kind,
            left,
            tys: Vec::new(),
        });
        Ok(None)
    }

    fn push_literal(&mut self, value: Value) -> Ty {
        let ty = Ty::of(&value);
        self.code.push(Ins::Push(value));
        ty
    }

    fn meta(&mut self, meta: Meta) -> Ty {
        self.code.push(Ins::Meta(meta));
        meta.ty()
    }

    /// The `[cdt op, args...]` of a call: the four reads the sandbox serves.
    fn cdt(&mut self, ty: Ty) -> Result<Kind, FilterError> {
        let Head::Array(n) = self.r.head()? else {
            return Err(build("a call needs its CDT operation as a list"));
        };
        if n == 0 {
            return Err(build("empty CDT operation"));
        }
        let op = match self.r.head()? {
            Head::Int(op) => op,
            // 0xff is the context marker: reads inside nested containers.
            _ => return Err(unsupported("CDT calls with a context")),
        };
        let want = |k: usize| {
            if n == k {
                Ok(())
            } else {
                Err(build(format!("CDT op {op} takes {} arguments", k - 1)))
            }
        };
        let cdt = match op {
            16 | 96 => {
                want(1)?;
                if ty != Ty::Int {
                    return Err(build("a size is an integer"));
                }
                if op == 16 {
                    Cdt::ListSize
                } else {
                    Cdt::MapSize
                }
            }
            19 | 97 => {
                want(3)?;
                let rt = self.r.int()?;
                if rt != 7 {
                    return Err(unsupported(format!("CDT return type {rt} (only VALUE, 7)")));
                }
                let head = self.r.head()?;
                if matches!(head, Head::Array(_)) {
                    return Err(unsupported("CDT arguments given as expressions"));
                }
                let arg = self.r.literal(head, 0)?;
                match (op, arg) {
                    (19, Value::Int(i)) => Cdt::ListByIndex(i),
                    (19, _) => return Err(build("a list index is an integer")),
                    (_, key) => Cdt::MapByKey(key),
                }
            }
            other => return Err(unsupported(format!("CDT op {other} in a call"))),
        };
        Ok(Kind::Call(cdt, ty))
    }

    /// Checks an op's operand types, emits it and gives its type.
    fn finish(&mut self, frame: Frame) -> Result<Ty, FilterError> {
        let tys = &frame.tys;
        let n = tys.len();
        let all = |want: Ty| tys.iter().all(|t| t.fits(want));
        let numeric = || -> Result<Ty, FilterError> {
            let first = tys
                .iter()
                .copied()
                .find(|t| *t != Ty::Any)
                .unwrap_or(Ty::Any);
            if !matches!(first, Ty::Int | Ty::Float | Ty::Any) || !all(first) {
                return Err(build("arithmetic needs operands of one numeric type"));
            }
            Ok(first)
        };
        let (ins, ty) = match frame.kind {
            Kind::Cmp(op) => {
                let (a, b) = (tys[0], tys[1]);
                if !a.fits(b) {
                    return Err(build(format!("comparing {a:?} with {b:?}")));
                }
                let t = if a == Ty::Any { b } else { a };
                match t {
                    Ty::Nil | Ty::Geo | Ty::Hll => {
                        return Err(unsupported(format!("comparing {t:?} values")));
                    }
                    Ty::Bool if !matches!(op, CmpOp::Eq | CmpOp::Ne) => {
                        return Err(unsupported("ordering booleans"));
                    }
                    _ => {}
                }
                (Ins::Cmp(op), Ty::Bool)
            }
            Kind::Regex(re) => {
                if !all(Ty::Str) {
                    return Err(build("cmp_regex needs a string"));
                }
                (Ins::Regex(re), Ty::Bool)
            }
            Kind::InList => {
                if !tys[1].fits(Ty::List) {
                    return Err(build("in_list needs a list"));
                }
                (Ins::InList, Ty::Bool)
            }
            Kind::And | Kind::Or | Kind::Exclusive | Kind::Not => {
                if !all(Ty::Bool) {
                    return Err(build("logic ops need booleans"));
                }
                let ins = match frame.kind {
                    Kind::And => Ins::And(n),
                    Kind::Or => Ins::Or(n),
                    Kind::Exclusive => Ins::Exclusive(n),
                    _ => Ins::Not,
                };
                (ins, Ty::Bool)
            }
            Kind::Arith(op) => (Ins::Arith(op, n), numeric()?),
            Kind::Min => (Ins::Min(n), numeric()?),
            Kind::Max => (Ins::Max(n), numeric()?),
            Kind::Abs => (Ins::Abs, numeric()?),
            Kind::Pow => {
                if !all(Ty::Float) {
                    return Err(build("pow needs floats"));
                }
                (Ins::Pow, Ty::Float)
            }
            Kind::Mod => {
                if !all(Ty::Int) {
                    return Err(build("mod needs integers"));
                }
                (Ins::Mod, Ty::Int)
            }
            Kind::ToInt => {
                if !all(Ty::Float) {
                    return Err(build("to_int needs a float"));
                }
                (Ins::ToInt, Ty::Int)
            }
            Kind::ToFloat => {
                if !all(Ty::Int) {
                    return Err(build("to_float needs an integer"));
                }
                (Ins::ToFloat, Ty::Float)
            }
            Kind::Cond => {
                let mut result = Ty::Any;
                for (i, t) in tys.iter().enumerate() {
                    let is_value = i % 2 == 1 || i == n - 1;
                    if !is_value {
                        if !t.fits(Ty::Bool) {
                            return Err(build("a cond condition is not boolean"));
                        }
                    } else if !t.fits(result) {
                        return Err(build("cond values of different types"));
                    } else if *t != Ty::Any {
                        result = *t;
                    }
                }
                (Ins::Cond(n), result)
            }
            Kind::Call(cdt, ty) => {
                let want = match cdt {
                    Cdt::ListSize | Cdt::ListByIndex(_) => Ty::List,
                    Cdt::MapSize | Cdt::MapByKey(_) => Ty::Map,
                };
                if !tys[0].fits(want) {
                    return Err(build(format!("a {want:?} read on a {:?}", tys[0])));
                }
                (Ins::Cdt(cdt, ty), ty)
            }
            Kind::Let { base, .. } => {
                // The body's value is already on the stack.
                self.scope.truncate(base);
                return Ok(tys[n - 1]);
            }
        };
        self.code.push(ins);
        Ok(ty)
    }
}
