//! `openledger bench fuzz` as a test: a seeded run against a fresh dev node
//! (serving on), bounded in time, must find no panic, no hang, no unexpected 5xx,
//! no admission violation, and leave the node live.

use std::path::PathBuf;

#[test]
fn seeded_fuzz_run_finds_no_panic_hang_or_5xx() {
    let opts = bench::FuzzOpts {
        seed: 20261204,
        seconds: 30,
        openledger_bin: Some(PathBuf::from(env!("CARGO_BIN_EXE_openledger"))),
        ..Default::default()
    };
    let r = bench::fuzz(&opts).expect("the fuzz run starts its node");
    r.print();
    let tried = r.total(|s| s.tried);
    assert!(tried > 100, "only {tried} inputs in {:.1} s", r.seconds);
    for s in &r.surfaces {
        assert!(s.tried > 0, "surface {} got no input", s.name);
    }
    assert!(r.missing_methods.is_empty(), "methods the node no longer knows: {:?}", r.missing_methods);
    assert_eq!(r.total(|s| s.panics), 0, "panics (see the examples printed above)");
    assert_eq!(r.log_panics, Some(0), "panics in the node's log");
    assert_eq!(r.total(|s| s.hangs), 0, "hangs (see the examples printed above)");
    assert_eq!(r.total(|s| s.unexpected_5xx), 0, "unexpected 5xx (see the examples printed above)");
    assert_eq!(r.admission.violations, 0, "refused inputs changed the state root or the pool");
    assert!(r.admission.checked > 0, "no admission check was judged");
    assert!(r.node_live, "the node stopped answering");
}
