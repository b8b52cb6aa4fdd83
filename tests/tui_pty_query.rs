//! The form's query-path kinds in a real pseudo-terminal (tmux), against
//! the local sandbox: the sum sample loaded with one key (module, 1,000
//! records, index) and its aggregation with its value and stage counts, the
//! stamp sample's job to 100 % with its counters, the stamped records
//! through the query kind, and a batch apply over three keys with one
//! missing.

mod common;
use common::tmux::{Tmux, console_program};

const BUMP: &str = "function bump(rec, n)
  if not aerospike:exists(rec) then error('no such record') end
  rec['n'] = (rec['n'] or 0) + n
  aerospike:update(rec)
  return rec['n']
end
";

/// Clears the focused form field and types `text` into it.
fn retype(tmux: &Tmux, text: &str) {
    tmux.keys(&["C-u"]);
    if !text.is_empty() {
        tmux.literal(text);
    }
}

#[test]
fn aggregate_background_query_and_batch_in_a_terminal() {
    let program = console_program();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bump.lua"), BUMP).unwrap();
    let tmux = Tmux::start(160, 45, dir.path());
    tmux.wait_for("READY$");
    // A module of our own for the batch; the samples come from the console.
    tmux.literal(&format!(
        "cd {} && {p} udf put bump.lua; echo LOADED-$?",
        dir.path().display(),
        p = program.display()
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("LOADED-0");
    tmux.literal(&format!("{}; echo EXIT=$?", program.display()));
    tmux.keys(&["Enter"]);
    tmux.wait_for("● sandbox");

    // The sum sample with one key (F2 lists them; it is the second): its
    // module, records and index, the editor and the form filled.
    tmux.keys(&["F2"]);
    tmux.wait_for("background UDF: the server stamps");
    tmux.keys(&["Down", "Enter"]);
    let screen = tmux.wait_for("sample sum loaded");
    assert!(screen.contains("1000 records in test.sales"), "{screen}");
    assert!(screen.contains("Apply · aggregate"), "{screen}");
    // Named after its file once the console found none in the way (an
    // answer from off the UI loop, a frame later).
    tmux.wait_for("sum.lua ───");
    tmux.keys(&["F5"]);
    let screen = tmux.wait_for("client reduce");
    for text in [
        "= 12300",
        "1 value",
        "map(amount)",
        "reduce(add)",
        "partitions ran",
    ] {
        assert!(screen.contains(text), "{text}:\n{screen}");
    }

    // The stamp sample: a background job over the set, to 100 %.
    tmux.keys(&["F2"]);
    tmux.wait_for("background UDF: the server stamps");
    tmux.keys(&["Down", "Down", "Down", "Enter"]);
    let screen = tmux.wait_for("sample stamp loaded");
    assert!(screen.contains("Apply · background"), "{screen}");
    tmux.keys(&["F5"]);
    let screen = tmux.wait_for("done(ok)");
    assert!(screen.contains("100.00%"), "{screen}");
    assert!(screen.contains("succeeded 1000 · failed 0"), "{screen}");

    // Query: the records the job stamped (Alt-3 focuses the form).
    tmux.keys(&["M-3", "F8"]);
    tmux.wait_for("Apply · query");
    tmux.keys(&["Down", "Down"]);
    retype(&tmux, "amount = 7");
    tmux.keys(&["Down"]);
    retype(&tmux, "amount, stamp");
    tmux.keys(&["F5"]);
    let screen = tmux.wait_for("10 records");
    assert!(screen.contains("{amount: 7, stamp: '"), "{screen}");

    // Batch: three keys, one missing.
    tmux.keys(&["F8"]);
    tmux.wait_for("Apply · batch");
    tmux.keys(&["Down", "Down"]);
    retype(&tmux, "1, 5000, 2");
    for text in ["bump", "bump", "10"] {
        tmux.keys(&["Down"]);
        retype(&tmux, text);
    }
    tmux.keys(&["F5"]);
    let screen = tmux.wait_for("3 keys · 1 failed");
    assert!(screen.contains("1    ✓ 10"), "{screen}");
    assert!(screen.contains("5000 ✗ error 100"), "{screen}");
    assert!(screen.contains("2    ✓ 10"), "{screen}");

    tmux.keys(&["C-c"]);
    tmux.wait_for("EXIT=0");
}
