//! Lint budget (DESIGN §6): `../shared/bench/udf10k.lua` linted in ≤ 200 ms,
//! in each library mode, with a 10-line module in the same run for scale.

use std::hint::black_box;

use asudf::lint::{self, LuaLibs, Options};
use criterion::{Criterion, criterion_group, criterion_main};

fn udf10k() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/bench/udf10k.lua");
    std::fs::read_to_string(path).expect("shared/bench/udf10k.lua")
}

fn lint_10k(c: &mut Criterion) {
    let big = udf10k();
    let small = include_str!("../assets/counter.lua");
    let mut group = c.benchmark_group("lint");
    group.sample_size(20);
    for (name, libs) in [
        ("udf10k.lua default", LuaLibs::Default),
        ("udf10k.lua hardened", LuaLibs::Hardened),
    ] {
        let options = Options {
            libs,
            module: Some("udf10k.lua".into()),
            ..Options::default()
        };
        group.bench_function(name, |b| b.iter(|| black_box(lint::lint(&big, &options))));
    }
    let options = Options::default();
    group.bench_function("counter.lua (10 lines)", |b| {
        b.iter(|| black_box(lint::lint(small, &options)))
    });
    group.finish();
}

criterion_group!(benches, lint_10k);
criterion_main!(benches);
