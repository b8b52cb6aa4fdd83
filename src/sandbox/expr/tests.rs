//! The evaluator op by op, with exact results on one record.

use super::*;
use crate::sandbox::store::now_cf_ms;
use crate::sandbox::value::Value;
use proptest::prelude::*;

/// A tiny msgpack writer for expression trees.
#[derive(Clone, Debug)]
enum E {
    I(i64),
    F(f64),
    /// A string literal (particle byte 3).
    S(&'static str),
    /// A blob literal (particle byte 4).
    B(&'static [u8]),
    /// A plain name (bins, variables, regex).
    N(&'static str),
    Bool(bool),
    Nil,
    A(Vec<E>),
    M(Vec<(E, E)>),
}
use E::*;

fn enc(e: &E, out: &mut Vec<u8>) {
    let str_head = |n: usize, out: &mut Vec<u8>| {
        if n < 32 {
            out.push(0xa0 | n as u8);
        } else {
            out.push(0xd9);
            out.push(n as u8);
        }
    };
    match e {
        I(i) if (0..128).contains(i) => out.push(*i as u8),
        I(i) if (-32..0).contains(i) => out.push(*i as i8 as u8),
        I(i) => {
            out.push(0xd3);
            out.extend_from_slice(&i.to_be_bytes());
        }
        F(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        S(s) => {
            str_head(s.len() + 1, out);
            out.push(3);
            out.extend_from_slice(s.as_bytes());
        }
        B(b) => {
            str_head(b.len() + 1, out);
            out.push(4);
            out.extend_from_slice(b);
        }
        N(s) => {
            str_head(s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Nil => out.push(0xc0),
        A(items) => {
            assert!(items.len() < 16);
            out.push(0x90 | items.len() as u8);
            items.iter().for_each(|i| enc(i, out));
        }
        M(pairs) => {
            out.push(0x80 | pairs.len() as u8);
            for (k, v) in pairs {
                enc(k, out);
                enc(v, out);
            }
        }
    }
}

fn wire(e: &E) -> Vec<u8> {
    let mut out = Vec::new();
    enc(e, &mut out);
    out
}

fn op(code: i64, args: Vec<E>) -> E {
    let mut items = vec![I(code)];
    items.extend(args);
    A(items)
}
fn bin(ty: i64, name: &'static str) -> E {
    op(81, vec![I(ty), N(name)])
}
fn int_bin(name: &'static str) -> E {
    bin(2, name)
}
fn eq(a: E, b: E) -> E {
    op(1, vec![a, b])
}
fn quote(items: Vec<E>) -> E {
    op(126, vec![A(items)])
}

fn fixture() -> Record {
    let s = |t: &str| Value::Str(t.into());
    Record {
        bins: vec![
            ("i".into(), Value::Int(10)),
            ("neg".into(), Value::Int(-3)),
            ("f".into(), Value::Float(2.5)),
            ("s".into(), s("hello world")),
            ("t".into(), Value::Bool(true)),
            (
                "b".into(),
                Value::Bytes {
                    ty: 4,
                    data: vec![1, 2],
                },
            ),
            (
                "l".into(),
                Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
            ),
            (
                "m".into(),
                Value::Map(vec![(s("x"), Value::Int(1)), (s("y"), Value::Int(2))]),
            ),
            ("e".into(), Value::List(vec![])),
        ],
        generation: 1,
        void_time: 0,
        last_update_ms: now_cf_ms(),
        set: Some("be".into()),
        key: Some(s("k1")),
    }
}

/// The digest's last four bytes, little-endian, are 5.
const DIGEST: Digest = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0];

/// The answer a command on `record` gets: 0 (go on), 27, 4 or 16.
fn code_on(bytes: &[u8], record: &Record) -> u8 {
    let subject = Subject {
        ns: "test",
        digest: &DIGEST,
        record,
    };
    match RecordFilter::from_field(Some(bytes)).check(&subject) {
        Ok(()) => 0,
        Err(code) => code,
    }
}

fn code(e: &E) -> u8 {
    code_on(&wire(e), &fixture())
}

fn code_hex(hex_text: &str) -> u8 {
    code_on(&hex::decode(hex_text).unwrap(), &fixture())
}

#[test]
fn integer_comparisons() {
    let cmp = |op_code: i64, v: i64| code(&op(op_code, vec![int_bin("i"), I(v)]));
    // eq, ne, gt, ge, lt, le against 9, 10, 11 with i = 10.
    let want = [
        (1, [27, 0, 27]),
        (2, [0, 27, 0]),
        (3, [0, 27, 27]),
        (4, [0, 0, 27]),
        (5, [27, 27, 0]),
        (6, [27, 0, 0]),
    ];
    for (op_code, codes) in want {
        for (v, expected) in [9, 10, 11].into_iter().zip(codes) {
            assert_eq!(cmp(op_code, v), expected, "op {op_code} with {v}");
        }
    }
    assert_eq!(code(&op(5, vec![int_bin("neg"), I(0)])), 0);
}

#[test]
fn float_string_blob_bool_comparisons() {
    assert_eq!(code(&eq(bin(7, "f"), F(2.5))), 0);
    assert_eq!(code(&op(3, vec![bin(7, "f"), F(2.4999)])), 0);
    assert_eq!(code(&op(6, vec![bin(7, "f"), F(2.0)])), 27);
    assert_eq!(code(&op(2, vec![bin(7, "f"), F(-2.5)])), 0);
    assert_eq!(code(&eq(bin(3, "s"), S("hello world"))), 0);
    // Byte order: "Hello" < "hello", a prefix sorts first.
    assert_eq!(code(&op(3, vec![bin(3, "s"), S("hello")])), 0);
    assert_eq!(code(&op(5, vec![bin(3, "s"), S("Hello")])), 27);
    assert_eq!(code(&op(5, vec![bin(3, "s"), S("help")])), 0);
    assert_eq!(code(&eq(bin(6, "b"), B(&[1, 2]))), 0);
    assert_eq!(code(&op(3, vec![bin(6, "b"), B(&[1])])), 0);
    assert_eq!(code(&op(5, vec![bin(6, "b"), B(&[1, 2, 0])])), 0);
    assert_eq!(code(&eq(bin(1, "t"), Bool(true))), 0);
    assert_eq!(code(&eq(bin(1, "t"), Bool(false))), 27);
    assert_eq!(code(&op(2, vec![bin(1, "t"), Bool(false)])), 0);
    // Ordering booleans is not evaluated.
    assert_eq!(code(&op(3, vec![bin(1, "t"), Bool(false)])), 16);
}

#[test]
fn list_and_map_comparisons() {
    let l = || bin(4, "l");
    assert_eq!(code(&eq(l(), quote(vec![I(1), I(2), I(3)]))), 0);
    assert_eq!(code(&op(5, vec![l(), quote(vec![I(1), I(3)])])), 0);
    assert_eq!(
        code(&op(3, vec![l(), quote(vec![I(1), I(2), I(3), I(0)])])),
        27
    );
    assert_eq!(
        code(&op(5, vec![l(), quote(vec![I(1), I(2), I(3), I(0)])])),
        0
    );
    // Int sorts before string inside lists.
    assert_eq!(code(&op(5, vec![l(), quote(vec![S("a")])])), 0);
    // Maps the sandbox holds are unordered: comparing them is unknown.
    let map = M(vec![(S("x"), I(1)), (S("y"), I(2))]);
    assert_eq!(code(&eq(bin(5, "m"), map.clone())), 27);
    assert_eq!(code(&op(2, vec![bin(5, "m"), map])), 27);
}

#[test]
fn comparison_build_rules() {
    assert_eq!(code_hex("9301935102a169a20378"), 4); // int bin vs "x"
    assert_eq!(code(&eq(bin(7, "f"), I(2))), 4);
    assert_eq!(code(&eq(bin(3, "s"), B(&[1]))), 4);
    assert_eq!(code(&eq(int_bin("i"), Nil)), 4);
    assert_eq!(code(&eq(Nil, Nil)), 16);
    assert_eq!(code(&eq(bin(8, "g"), bin(8, "g"))), 16);
    assert_eq!(code(&eq(bin(9, "h"), bin(9, "h"))), 16);
    assert_eq!(code(&eq(bin(0, "x"), I(1))), 4);
    assert_eq!(code(&eq(bin(12, "x"), I(1))), 4);
    // A bin of another type, or missing, is unknown.
    assert_eq!(code_hex("9301935102a17301"), 27); // int bin s
    assert_eq!(code_hex("9301935107a169cb3ff0000000000000"), 27); // float bin i
    assert_eq!(code(&eq(int_bin("zz"), I(1))), 27);
}

#[test]
fn regex_flags() {
    let re =
        |flags: i64, pattern: &'static str| code(&op(7, vec![I(flags), N(pattern), bin(3, "s")]));
    assert_eq!(re(0, "^hel+o"), 27);
    assert_eq!(re(1, "^hel+o"), 0);
    assert_eq!(re(0, "^hel*o"), 0);
    assert_eq!(re(0, "^HELLO"), 27);
    assert_eq!(re(2, "^HELLO"), 0);
    assert_eq!(re(0, "wor.d$"), 0);
    assert_eq!(re(1, "a(b"), 4);
    assert_eq!(re(0, "\\(l\\)\\1"), 0); // a back-reference: the "ll" of hello
    assert_eq!(re(0, "\\(a\\)\\1"), 27);
    assert_eq!(code(&op(7, vec![I(0), N("1"), int_bin("i")])), 4);
    assert_eq!(code(&op(7, vec![I(0), N("x"), bin(3, "zz")])), 27);
}

#[test]
fn in_list() {
    let l = || bin(4, "l");
    assert_eq!(code(&op(9, vec![I(2), l()])), 0);
    assert_eq!(code(&op(9, vec![I(5), l()])), 27);
    assert_eq!(code(&op(9, vec![S("1"), l()])), 27);
    assert_eq!(code(&op(9, vec![I(1), quote(vec![I(1)])])), 0);
    assert_eq!(code(&op(9, vec![I(2), int_bin("i")])), 4);
    assert_eq!(code(&op(9, vec![I(2), bin(4, "zz")])), 27);
}

#[test]
fn logic_is_three_valued() {
    let t = || eq(int_bin("i"), I(10));
    let f = || eq(int_bin("i"), I(9));
    let u = || eq(int_bin("zz"), I(1));
    let and = |a: Vec<E>| code(&op(16, a));
    let or = |a: Vec<E>| code(&op(17, a));
    let xor = |a: Vec<E>| code(&op(19, a));
    assert_eq!(and(vec![t(), t()]), 0);
    assert_eq!(and(vec![t(), f()]), 27);
    assert_eq!(and(vec![u(), t()]), 27);
    assert_eq!(or(vec![u(), t()]), 0);
    assert_eq!(or(vec![f(), f()]), 27);
    assert_eq!(or(vec![u(), f()]), 27);
    assert_eq!(code(&op(18, vec![f()])), 0);
    assert_eq!(code(&op(18, vec![t()])), 27);
    assert_eq!(code(&op(18, vec![u()])), 27);
    assert_eq!(code(&op(2, vec![int_bin("zz"), I(1)])), 27);
    assert_eq!(xor(vec![t(), f()]), 0);
    assert_eq!(xor(vec![t(), t()]), 27);
    assert_eq!(xor(vec![t(), u()]), 27);
    assert_eq!(code(&op(16, vec![])), 4);
    assert_eq!(code(&op(18, vec![t(), t()])), 4);
    assert_eq!(and(vec![t(), int_bin("i")]), 4);
    // unknown() alone is unknown.
    assert_eq!(code(&op(0, vec![])), 27);
    assert_eq!(or(vec![op(0, vec![]), t()]), 0);
}

#[test]
fn arithmetic() {
    let i = || int_bin("i");
    let is = |e: E, v: i64| code(&eq(e, I(v)));
    assert_eq!(is(op(20, vec![i(), I(5)]), 15), 0);
    assert_eq!(is(op(21, vec![i(), I(3), I(2)]), 5), 0);
    assert_eq!(is(op(21, vec![i()]), -10), 0);
    assert_eq!(is(op(22, vec![i(), int_bin("neg")]), -30), 0);
    assert_eq!(is(op(23, vec![i(), I(3)]), 3), 0);
    assert_eq!(is(op(23, vec![int_bin("neg"), I(2)]), -1), 0);
    assert_eq!(is(op(23, vec![i(), I(0)]), 1), 27);
    // div: the first by the product of the rest; one operand: the reciprocal.
    assert_eq!(is(op(23, vec![I(100), I(3), I(4)]), 8), 0);
    assert_eq!(is(op(23, vec![I(1), I(1)]), 1), 0);
    assert_eq!(is(op(23, vec![I(2)]), 0), 0);
    assert_eq!(is(op(23, vec![I(0)]), 0), 27);
    let fl1 = |e: E, v: f64| code(&eq(e, F(v)));
    assert_eq!(fl1(op(23, vec![F(4.0)]), 0.25), 0);
    assert_eq!(fl1(op(21, vec![F(4.0)]), -4.0), 0);
    assert_eq!(fl1(op(21, vec![F(1.0), F(0.25), F(0.5)]), 0.25), 0);
    assert_eq!(is(op(26, vec![i(), I(3)]), 1), 0);
    assert_eq!(is(op(26, vec![int_bin("neg"), I(2)]), -1), 0);
    assert_eq!(is(op(26, vec![i(), I(0)]), 0), 27);
    assert_eq!(is(op(27, vec![int_bin("neg")]), 3), 0);
    assert_eq!(is(op(51, vec![i(), I(50), I(3)]), 50), 0);
    assert_eq!(is(op(50, vec![i(), int_bin("neg")]), -3), 0);
    assert_eq!(is(op(30, vec![bin(7, "f")]), 2), 0);
    assert_eq!(is(op(30, vec![F(-2.5)]), -2), 0);
    let fl = |e: E, v: f64| code(&eq(e, F(v)));
    assert_eq!(fl(op(31, vec![i()]), 10.0), 0);
    assert_eq!(fl(op(20, vec![bin(7, "f"), F(0.5)]), 3.0), 0);
    assert_eq!(fl(op(24, vec![bin(7, "f"), F(2.0)]), 6.25), 0);
    assert_eq!(fl(op(27, vec![F(-1.5)]), 1.5), 0);
    assert_eq!(fl(op(23, vec![F(1.0), F(0.0)]), 1.0), 27);
    // Overflow wraps: 5 * 2^62 is positive.
    assert_eq!(code(&op(3, vec![op(22, vec![I(5), I(1 << 62)]), I(0)])), 0);
    assert_eq!(is(op(20, vec![I(i64::MAX), I(1)]), i64::MIN), 0);
    // Build checks.
    assert_eq!(code_hex("9301911401"), 4); // add()
    assert_eq!(code(&eq(op(20, vec![i(), F(0.5)]), F(10.5))), 4);
    assert_eq!(code(&eq(op(24, vec![i(), I(2)]), I(100))), 4);
    assert_eq!(code(&eq(op(26, vec![F(1.0), F(2.0)]), F(1.0))), 4);
    assert_eq!(code(&eq(op(31, vec![S("x")]), F(1.0))), 4);
    assert_eq!(code(&eq(op(30, vec![I(1)]), I(1))), 4);
    assert_eq!(code(&eq(op(20, vec![S("a"), S("b")]), S("ab"))), 4);
    assert_eq!(code(&eq(op(20, vec![i(), I(1)]), F(11.0))), 4);
    // A missing operand makes the result unknown.
    assert_eq!(is(op(20, vec![int_bin("zz"), I(1)]), 1), 27);
}

#[test]
fn metadata() {
    let is = |m: i64, v: E| code(&eq(op(m, vec![]), v));
    assert_eq!(is(69, I(-1)), 0); // ttl
    assert_eq!(is(68, I(-1)), 0); // void_time
    assert_eq!(is(65, I(0)), 0); // device_size
    assert_eq!(is(70, S("be")), 0);
    assert_eq!(is(70, S("other")), 27);
    assert_eq!(code(&op(71, vec![])), 0); // key_exists
    assert_eq!(code(&op(18, vec![op(72, vec![])])), 0); // not(is_tombstone)
    assert_eq!(code(&eq(op(73, vec![]), op(74, vec![]))), 0);
    assert_eq!(code(&eq(op(64, vec![I(3)]), I(2))), 0); // 5 mod 3
    assert_eq!(code(&eq(op(64, vec![I(7)]), I(5))), 0);
    assert_eq!(code(&op(64, vec![I(0)])), 4);
    // last_update in ns since 1970, since_update in ms.
    let between = |m: i64, lo: i64, hi: i64| {
        code(&op(
            16,
            vec![
                op(3, vec![op(m, vec![]), I(lo)]),
                op(5, vec![op(m, vec![]), I(hi)]),
            ],
        ))
    };
    assert_eq!(
        between(66, 1_600_000_000_000_000_000, 4_000_000_000_000_000_000),
        0
    );
    assert_eq!(between(67, -1, 600_000), 0);
    // ttl and void time of a record that expires.
    let mut expiring = fixture();
    expiring.void_time = crate::sandbox::store::now_cf_secs() + 100;
    let ttl_in = |lo: i64, hi: i64| {
        let e = op(
            16,
            vec![
                op(4, vec![op(69, vec![]), I(lo)]),
                op(6, vec![op(69, vec![]), I(hi)]),
            ],
        );
        code_on(&wire(&e), &expiring)
    };
    assert_eq!(ttl_in(98, 100), 0);
    let vt = (i64::from(expiring.void_time) + CITRUSLEAF_EPOCH) * 1_000_000_000;
    assert_eq!(code_on(&wire(&eq(op(68, vec![]), I(vt))), &expiring), 0);
    assert_eq!(code(&op(69, vec![I(1)])), 4);
}

const CITRUSLEAF_EPOCH: i64 = crate::sandbox::store::CITRUSLEAF_EPOCH_SECS as i64;

#[test]
fn record_size_matches_the_probed_sizes() {
    let size_is = |r: &Record, n: i64| code_on(&wire(&eq(op(74, vec![]), I(n))), r);
    let mut r = fixture();
    r.bins = vec![("a".into(), Value::Int(1))];
    r.key = None;
    assert_eq!(size_is(&r, 48), 0);
    r.set = None;
    r.key = Some(Value::Int(7));
    assert_eq!(size_is(&r, 64), 0);
    r.set = Some("be".into());
    r.key = Some(Value::Str("k1".into()));
    r.bins.push(("s".into(), Value::Str("hello".into())));
    r.bins.push((
        "b".into(),
        Value::Bytes {
            ty: 4,
            data: vec![1, 2],
        },
    ));
    r.bins.push(("t".into(), Value::Bool(true)));
    assert_eq!(size_is(&r, 80), 0);
}

#[test]
fn keys_and_bin_types() {
    assert_eq!(code_hex("9301925003a3036b31"), 0); // key(STR) == "k1"
    assert_eq!(code_hex("9301925003a3036b32"), 27);
    assert_eq!(code_hex("930192500207"), 27); // key(INT) on a string key
    let mut no_key = fixture();
    no_key.key = None;
    assert_eq!(
        code_on(&hex::decode("9301925003a3036b31").unwrap(), &no_key),
        27
    );
    assert_eq!(code_on(&hex::decode("9147").unwrap(), &no_key), 27);
    assert_eq!(code(&eq(op(80, vec![I(7)]), F(1.0))), 4);
    let bin_type = |name: &'static str, t: i64| code(&eq(op(82, vec![N(name)]), I(t)));
    assert_eq!(bin_type("i", 1), 0);
    assert_eq!(bin_type("f", 2), 0);
    assert_eq!(bin_type("s", 3), 0);
    assert_eq!(bin_type("b", 4), 0);
    assert_eq!(bin_type("t", 17), 0);
    assert_eq!(bin_type("m", 19), 0);
    assert_eq!(bin_type("l", 20), 0);
    assert_eq!(bin_type("zz", 0), 0);
    assert_eq!(code_hex("93029252a16900"), 0); // BinExists('i')
    assert_eq!(code_hex("921293029252a27a7a00"), 0); // not(BinExists('zz'))
}

#[test]
fn cond_let_var() {
    assert_eq!(code_hex("947b9301935102a1690ac3c2"), 0);
    assert_eq!(code_hex("967b9301935102a16909c39303935102a16909c2c3"), 27);
    assert_eq!(
        code_hex("9301967b9305935102a16905019305935102a16932020302"),
        0
    );
    assert_eq!(code_hex("947da1789314935102a169019301927ca1780b"), 0);
    assert_eq!(code_hex("967da17802a1799316927ca178039301927ca17907"), 27);
    assert_eq!(code_hex("937b9301935102a16901c3"), 4); // no default
    assert_eq!(code_hex("9301927ca46e6f706501"), 4); // unbound
    // An unknown condition makes cond unknown; values must share a type.
    let unknown_cond = op(123, vec![eq(int_bin("zz"), I(1)), Bool(true), Bool(true)]);
    assert_eq!(code(&unknown_cond), 27);
    assert_eq!(code(&eq(op(123, vec![Bool(true), I(1), F(1.0)]), I(1))), 4);
    assert_eq!(code(&op(123, vec![I(1), Bool(true), Bool(false)])), 4);
    assert_eq!(
        code(&eq(op(123, vec![Bool(false), op(0, vec![]), I(1)]), I(1))),
        0
    );
    // The same name twice in one let; shadowing in an inner let.
    let twice = op(125, vec![N("x"), I(1), N("x"), I(2), Bool(true)]);
    assert_eq!(code(&twice), 4);
    let var = |n: &'static str| op(124, vec![N(n)]);
    let inner = op(125, vec![N("x"), I(2), eq(var("x"), I(2))]);
    let shadow = op(
        125,
        vec![N("x"), I(1), op(16, vec![inner, eq(var("x"), I(1))])],
    );
    assert_eq!(code(&shadow), 0);
    // A name is not visible in its own definition nor after its let.
    assert_eq!(code(&op(125, vec![N("x"), var("x"), Bool(true)])), 4);
    let after = op(
        16,
        vec![op(125, vec![N("y"), I(1), Bool(true)]), eq(var("y"), I(1))],
    );
    assert_eq!(code(&after), 4);
    assert_eq!(code(&op(125, vec![N("x"), I(1)])), 4);
    assert_eq!(code(&op(125, vec![eq(var("y"), I(1))])), 4);
    assert_eq!(code(&op(125, vec![Bool(true)])), 0);
}

#[test]
fn cdt_reads() {
    let call = |rt: i64, cdt: Vec<E>, input: E| op(127, vec![I(rt), I(0), A(cdt), input]);
    let l = || bin(4, "l");
    let m = || bin(5, "m");
    assert_eq!(code(&eq(call(2, vec![I(16)], l()), I(3))), 0);
    assert_eq!(code(&eq(call(2, vec![I(16)], bin(4, "e")), I(0))), 0);
    assert_eq!(code(&eq(call(2, vec![I(19), I(7), I(0)], l()), I(1))), 0);
    assert_eq!(code(&eq(call(2, vec![I(19), I(7), I(-1)], l()), I(3))), 0);
    assert_eq!(code(&eq(call(2, vec![I(19), I(7), I(3)], l()), I(3))), 27);
    assert_eq!(code(&eq(call(3, vec![I(19), I(7), I(0)], l()), S("1"))), 27);
    assert_eq!(code(&eq(call(2, vec![I(97), I(7), S("y")], m()), I(2))), 0);
    assert_eq!(code(&eq(call(2, vec![I(97), I(7), S("z")], m()), I(2))), 27);
    assert_eq!(code(&eq(call(2, vec![I(96)], m()), I(2))), 0);
    assert_eq!(code(&eq(call(2, vec![I(16)], quote(vec![I(1)])), I(1))), 0);
    assert_eq!(code_hex("9301957f02009110935104a16c03"), 0);
    // What the sandbox does not serve.
    assert_eq!(code(&eq(call(2, vec![I(19), I(1), I(0)], l()), I(1))), 16);
    assert_eq!(code(&eq(call(2, vec![I(17)], l()), I(1))), 16);
    assert_eq!(
        code(&eq(op(127, vec![I(2), I(1), A(vec![I(16)]), l()]), I(1))),
        16
    );
    assert_eq!(
        code(&eq(call(2, vec![I(0xff), A(vec![]), I(16)], l()), I(1))),
        16
    );
    let index_exp = call(2, vec![I(19), I(7), op(81, vec![I(2), N("i")])], l());
    assert_eq!(code(&eq(index_exp, I(1))), 16);
    // Build checks.
    assert_eq!(code(&eq(call(2, vec![I(16)], m()), I(2))), 4);
    assert_eq!(code(&eq(call(3, vec![I(16)], l()), S("3"))), 4);
    assert_eq!(code(&eq(call(2, vec![I(19), I(7), S("x")], l()), I(1))), 4);
}

#[test]
fn what_is_not_a_filter() {
    assert_eq!(code_hex("935102a169"), 4); // bin(INT, "i") alone
    assert_eq!(code_hex("05"), 4);
    assert_eq!(code_hex("c0"), 4);
    assert_eq!(code_hex("c3"), 0); // a literal true passes
    assert_eq!(code_hex("c1"), 4);
    assert_eq!(code_hex(""), 4);
    assert_eq!(code_hex("9301935102a169"), 4); // truncated
    assert_eq!(code_hex("9147c3"), 4); // trailing bytes
    assert_eq!(code_hex("90"), 4);
    assert_eq!(code_hex("91a1"), 4); // op code not an integer
    assert_eq!(code(&op(10, vec![])), 4); // unknown op codes
    assert_eq!(code(&op(60, vec![])), 4);
    assert_eq!(code(&op(8, vec![S("a"), S("b")])), 16); // cmp_geo
    assert_eq!(code(&eq(op(25, vec![F(8.0), F(2.0)]), F(3.0))), 16); // log
    assert_eq!(code(&eq(op(32, vec![I(1), I(1)]), I(1))), 16); // int_and
    assert_eq!(code(&eq(op(200, vec![]), I(1))), 16);
    // A GeoJSON literal (particle 23) and an ext value.
    assert_eq!(code_hex("9301935108a167a3177b7d"), 16);
    assert_eq!(code_hex("d4ff00"), 16);
}

#[test]
fn lengths_beyond_the_field_are_refused_before_allocating() {
    for hex_text in [
        "ddffffffff",
        "dfffffffff",
        "dbffffffff03",
        "9301935102a169dbffffffff",
        "927edcffff",
        "c9ffffffff00",
    ] {
        assert_eq!(code_hex(hex_text), 4, "{hex_text}");
    }
}

#[test]
fn deep_not_chain_compiles_without_recursion() {
    let mut bytes = Vec::new();
    for _ in 0..10_000 {
        bytes.extend_from_slice(&[0x92, 18]);
    }
    bytes.extend(wire(&eq(int_bin("i"), I(10))));
    assert_eq!(code_on(&bytes, &fixture()), 0);
    let mut odd = vec![0x92, 18];
    odd.extend(bytes);
    assert_eq!(code_on(&odd, &fixture()), 27);
    // 200,000 levels of add, far deeper than any native stack would take.
    let mut sum = vec![0x93, 1];
    for _ in 0..200_000 {
        sum.extend_from_slice(&[0x93, 20, 1]);
    }
    sum.push(0);
    sum.push(0xd2);
    sum.extend_from_slice(&200_000i32.to_be_bytes());
    assert_eq!(code_on(&sum, &fixture()), 0);
}

#[test]
fn deep_list_literals_are_refused_with_4() {
    // eq(quote([[...[1]...]]), quote([[...[1]...]])) with `depth` levels.
    let nested = |depth: usize| {
        let mut bytes = vec![0x93, 1];
        for _ in 0..2 {
            bytes.extend_from_slice(&[0x92, 126]);
            bytes.extend(std::iter::repeat_n(0x91, depth));
            bytes.push(1);
        }
        bytes
    };
    assert_eq!(code_on(&nested(MAX_LITERAL_DEPTH + 2), &fixture()), 4);
    assert_eq!(code_on(&nested(100_000), &fixture()), 4);
    // Within the limit it is a value like any other.
    assert_eq!(code_on(&nested(100), &fixture()), 0);
}

#[test]
fn missing_filter_passes_and_errors_wait_for_check() {
    let record = fixture();
    let subject = Subject {
        ns: "test",
        digest: &DIGEST,
        record: &record,
    };
    assert_eq!(RecordFilter::none().check(&subject), Ok(()));
    let bad = RecordFilter::from_field(Some(&[0xc1]));
    assert!(!bad.is_none());
    assert_eq!(bad.check(&subject), Err(4));
    assert_eq!(Filter::parse(&[0xc1]).unwrap_err().result_code(), 4);
    let err = Filter::parse(&wire(&op(8, vec![S("a"), S("b")]))).unwrap_err();
    assert_eq!(err.result_code(), 16);
}

#[test]
fn metadata_stage_of_background_jobs() {
    let mut record = fixture();
    let meta_fails = |e: &E, r: &Record| {
        let f = Filter::parse(&wire(e)).unwrap();
        f.fails_on_metadata(&Subject {
            ns: "test",
            digest: &DIGEST,
            record: r,
        })
    };
    let set_is = |s: &'static str| eq(op(70, vec![]), S(s));
    let n_gt = |v: i64| op(3, vec![int_bin("i"), I(v)]);
    assert!(meta_fails(&set_is("other"), &record));
    assert!(!meta_fails(&n_gt(1_000_000_000), &record));
    assert!(meta_fails(&op(16, vec![set_is("other"), n_gt(5)]), &record));
    assert!(meta_fails(&op(16, vec![n_gt(5), set_is("other")]), &record));
    assert!(!meta_fails(
        &op(16, vec![set_is("be"), n_gt(1_000_000_000)]),
        &record
    ));
    assert!(!meta_fails(
        &op(17, vec![set_is("other"), n_gt(1_000_000_000)]),
        &record
    ));
    assert!(!meta_fails(&eq(op(80, vec![I(2)]), I(5)), &record));
    assert!(meta_fails(&eq(op(64, vec![I(3)]), I(7)), &record));
    assert!(!meta_fails(&op(71, vec![]), &record));
    record.key = None;
    assert!(meta_fails(&op(71, vec![]), &record));
    assert!(!meta_fails(&op(18, vec![op(71, vec![])]), &record));
    assert!(!meta_fails(&op(5, vec![op(69, vec![]), I(0)]), &record));
}

/// Every expression of the public cases' table compiles (or is refused
/// with the code its case records).
#[test]
fn the_public_case_expressions_build() {
    let refused = [
        "9301935102a16ea20378",
        "9301935102a169a20378",
        "9301927ca46e6f706501",
        "937b9301935102a16901c3",
        "9301911401",
        "935102a169",
        "93019314935102a169cb3fe0000000000000cb4025000000000000",
    ];
    let table = include_str!("../../../tests/data/expr_public_wires.txt");
    for line in table.lines().filter(|l| !l.is_empty()) {
        let got = Filter::parse(&hex::decode(line).unwrap());
        if refused.contains(&line) {
            assert_eq!(got.unwrap_err().result_code(), 4, "{line}");
        } else {
            assert!(got.is_ok(), "{line}: {:?}", got.err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_crash(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let c = code_on(&bytes, &fixture());
        prop_assert!([0, 4, 16, 27].contains(&c));
    }

    #[test]
    fn mutated_case_expressions_never_crash(
        seed in 0usize..8,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let seeds = [
            "967b9301935102a16909c39303935102a16909c2c3",
            "967da17802a1799316927ca178039301927ca17907",
            "9301957f020093130700935104a16c01",
            "9301957f0200936107a20379935105a16d02",
            "940701a65e68656c2b6f935103a173",
            "9301935105a16d82a2037801a2037902",
            "9303935104a16c927e9401020300",
            "93109301935102a161019301935102a16202",
        ];
        let mut bytes = hex::decode(seeds[seed]).unwrap();
        for (at, b) in edits {
            let at = at % bytes.len();
            bytes[at] = b;
        }
        let c = code_on(&bytes, &fixture());
        prop_assert!([0, 4, 16, 27].contains(&c));
    }
}

/// Random trees over the evaluated ops: most fail to build, the rest run.
fn tree() -> impl Strategy<Value = E> {
    let leaf = prop_oneof![
        (-3i64..12).prop_map(I),
        prop_oneof![Just(F(2.5)), Just(F(0.0)), Just(F(-1.5))],
        prop_oneof![Just(S("hello world")), Just(S("x"))],
        Just(Bool(true)),
        Just(Bool(false)),
        (
            1i64..8,
            prop_oneof![Just("i"), Just("f"), Just("s"), Just("l"), Just("zz")]
        )
            .prop_map(|(t, n)| bin(t, n)),
        (64i64..75).prop_map(|m| if m == 64 {
            op(64, vec![I(3)])
        } else {
            op(m, vec![])
        }),
        Just(op(0, vec![])),
        Just(quote(vec![I(1), I(2)])),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        let codes = prop_oneof![
            1i64..7,
            Just(9),
            16i64..20,
            20i64..25,
            Just(26),
            Just(27),
            Just(30),
            Just(31),
            Just(50),
            Just(51),
            Just(123),
        ];
        (codes, proptest::collection::vec(inner, 1..4)).prop_map(|(c, args)| op(c, args))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_trees_obey_three_valued_logic(x in tree()) {
        let c = code(&x);
        prop_assert!([0, 4, 16, 27].contains(&c));
        if Filter::parse(&wire(&x)).is_ok() {
            // x and not x is never true; x or not x is true unless x is unknown.
            let both = op(16, vec![x.clone(), op(18, vec![x.clone()])]);
            prop_assert_eq!(code(&both), 27);
            let either = op(17, vec![x.clone(), op(18, vec![x.clone()])]);
            let negated = code(&op(18, vec![x.clone()]));
            let known = c == 0 || negated == 0;
            prop_assert_eq!(code(&either), if known { 0 } else { 27 });
        }
    }
}

#[test]
fn refusals_are_logged_naming_what_was_refused() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(Arc::default());
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let _ = Filter::parse(&wire(&op(25, vec![F(8.0), F(2.0)])));
        let _ = Filter::parse(&hex::decode("d4ff00").unwrap());
        let _ = Filter::parse(&wire(&eq(int_bin("i"), S("x"))));
    });
    let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("WARN") && log.contains("op 25 (log)"), "{log}");
    assert!(log.contains("an ext value"), "{log}");
    // A filter the server cannot build is not the sandbox's limit: no warning.
    assert_eq!(log.lines().count(), 2, "{log}");
}
