use selene_lib::lints::{self, AstContext, Context, Lint};
use std::time::Instant;
fn main() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/bench/udf10k.lua"
    ))
    .unwrap();
    let std = selene_lib::standard_library::StandardLibrary::from_name("lua53").unwrap();
    let parsed = full_moon::parse_fallible(&src, full_moon::LuaVersion::lua54());
    let ast = parsed.ast();
    let t = Instant::now();
    let actx = AstContext::from_ast(ast);
    println!("scope manager {:?}", t.elapsed());
    let ctx = Context {
        standard_library: std,
        user_set_standard_library: None,
    };
    macro_rules! time { ($($name:ident: $ty:ty),*) => { $(
        let l = <$ty>::new(Default::default()).unwrap();
        let t = Instant::now();
        let n = l.pass(ast, &ctx, &actx).len();
        println!("{}: {:?} ({n})", stringify!($name), t.elapsed());
    )* } }
    time!(almost_swapped: lints::almost_swapped::AlmostSwappedLint,
    bad_string_escape: lints::bad_string_escape::BadStringEscapeLint,
    compare_nan: lints::compare_nan::CompareNanLint,
    constant_table_comparison: lints::constant_table_comparison::ConstantTableComparisonLint,
    deprecated: lints::deprecated::DeprecatedLint,
    divide_by_zero: lints::divide_by_zero::DivideByZeroLint,
    duplicate_keys: lints::duplicate_keys::DuplicateKeysLint,
    empty_if: lints::empty_if::EmptyIfLint,
    empty_loop: lints::empty_loop::EmptyLoopLint,
    global_usage: lints::global_usage::GlobalLint,
    high_cyclomatic_complexity: lints::high_cyclomatic_complexity::HighCyclomaticComplexityLint,
    if_same_then_else: lints::if_same_then_else::IfSameThenElseLint,
    ifs_same_cond: lints::ifs_same_cond::IfsSameCondLint,
    incorrect_standard_library_use: lints::standard_library::StandardLibraryLint,
    manual_table_clone: lints::manual_table_clone::ManualTableCloneLint,
    mismatched_arg_count: lints::mismatched_arg_count::MismatchedArgCountLint,
    mixed_table: lints::mixed_table::MixedTableLint,
    must_use: lints::must_use::MustUseLint,
    parenthese_conditions: lints::parenthese_conditions::ParentheseConditionsLint,
    shadowing: lints::shadowing::ShadowingLint,
    suspicious_reverse_loop: lints::suspicious_reverse_loop::SuspiciousReverseLoopLint,
    type_check_inside_call: lints::type_check_inside_call::TypeCheckInsideCallLint,
    unbalanced_assignments: lints::unbalanced_assignments::UnbalancedAssignmentsLint,
    undefined_variable: lints::undefined_variable::UndefinedVariableLint,
    unused_variable: lints::unused_variable::UnusedVariableLint);
}
