//! A small scenario end to end: the supply equation holds after every block,
//! the reports are written, the data share is paid out exactly, spam costs
//! more than it earns, forged records lose their challenges, and the same seed
//! gives the same CSV files. Then bad scenario files, refused by name.

use crate::Scenario;
use crate::world::Role;

const SMALL: &str = r#"
name = "small"
seed = 7
days = 2
block_seconds = 600

# A bond the watchers find worth risking (the default 10 OPEN is not: see docs/simulator.md).
[params]
"attribution.challenge_bond" = "1 OPEN"

[population]
validators = 4
delegators = 10
honest_contributors = 40
spammers = 8
copycats = 6
datanets = 2
lazy_curators = 1
model_builders = 2
apps = 5
honest_operators = 2
forging_operators = 1
traders = 3

[behaviour]
inferences_per_day = 250
contribute_bps_per_day = 8000
model_every_days = 1
forge_bps = 8000
audit_bps = 10000
review_every_blocks = 6
settle_every_blocks = 6
claim_every_days = 1
"#;

fn small() -> Scenario {
    Scenario::from_toml(SMALL, "small").unwrap()
}

#[test]
fn a_small_economy_pays_exactly_and_replays_from_its_seed() {
    let dir = tempfile::tempdir().unwrap();
    let r = crate::run(&small(), &mut |_| {}).unwrap();
    let t = &r.totals;
    let summary: Vec<String> = r.summary().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("{}\n{:?}", summary.join("\n"), t.reverted);
    // The supply equation was checked after every block (a break is an error).
    assert_eq!(t.supply_checks, t.blocks);
    assert!(t.receipts_settled >= 200, "paid inferences: {}", t.receipts_settled);
    assert_eq!(t.settle_failures, 0, "every settlement went through: {:?}", t.reverted);
    // Payouts sum exactly: what apps' escrows lost is what receipts cost, and
    // every data share held was credited, left as dust or paid by the fallback.
    assert_eq!(t.escrow_spent, t.settled_cost);
    assert_eq!(t.open_holds_at_end, 0);
    assert_eq!(t.data_held, t.credited + t.dust + t.fallback + t.forfeited);
    assert_eq!(t.claimed, r.rows.iter().map(|p| p.stats.credits_claimed).sum::<u128>());
    // Spam costs the spammers more than it earns them.
    let spam = r.role(Role::Spammer);
    assert!(spam.files > 0 && spam.rejected > 0);
    assert!(
        spam.data_earnings < spam.bond_slashed,
        "spam earned {} and lost {}",
        spam.data_earnings,
        spam.bond_slashed
    );
    // Every forged record a watcher challenged lost; every false alarm lost its bond.
    assert!(t.forged_records > 0 && t.challenges_opened > 0);
    assert_eq!(t.challenges_upheld + t.challenges_defaulted, t.challenges_opened - t.false_alarms);
    assert_eq!(t.challenges_rejected, t.false_alarms);
    assert!(t.reverted.is_empty(), "{:?}", t.reverted);
    assert!(r.rows.iter().any(|p| p.role == Role::ForgingOperator && p.stats.stake_slashed > 0));

    r.write(dir.path()).unwrap();
    for f in ["summary.csv", "participants.csv", "daily.csv", "report.html"] {
        assert!(std::fs::metadata(dir.path().join(f)).unwrap().len() > 0, "{f}");
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"));

    let again = tempfile::tempdir().unwrap();
    crate::run(&small(), &mut |_| {}).unwrap().write(again.path()).unwrap();
    for f in ["summary.csv", "participants.csv", "daily.csv"] {
        let a = std::fs::read(dir.path().join(f)).unwrap();
        let b = std::fs::read(again.path().join(f)).unwrap();
        assert!(a == b, "{f} differs between two runs of one seed");
    }
}

#[test]
fn bad_scenarios_are_refused_by_name() {
    let err = |text: &str| Scenario::from_toml(text, "bad.toml").unwrap_err().to_string();
    let e = err("days = ");
    assert!(e.contains("bad.toml"), "{e}");
    let e = err("[params]\n\"inference.no_such_thing\" = 3\n");
    assert!(e.contains("unknown governed parameter") && e.contains("inference.no_such_thing"), "{e}");
    let e = err("[params]\n\"inference.split_data_bps\" = 20000\n");
    assert!(e.contains("inference.split_data_bps") && e.contains("out of range"), "{e}");
    let e = err("[params]\n\"attribution.challenge_bond\" = \"ten OPEN\"\n");
    assert!(e.contains("attribution.challenge_bond"), "{e}");
    let e = err("[population]\nwizards = 3\n");
    assert!(e.contains("wizards"), "{e}");
    let e = err("days = 0\n");
    assert!(e.contains("days"), "{e}");
    let e = err("[sweep.params]\n\"attribution.challenge_bond\" = [\"1 OPEN\", -5]\n");
    assert!(e.contains("negative"), "{e}");
    let e = err("[params]\n\"inference.split_serving_bps\" = 9000\n\"inference.split_stakers_bps\" = 2000\n");
    assert!(e.contains("more than 10000"), "{e}");
}
