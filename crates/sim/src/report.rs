//! What a run found, as CSV files and one self-contained HTML page whose charts
//! are inline SVG drawn here (no script, no network). Money is integer base
//! units everywhere; only the charts and the concentration indices are
//! computed in floating point, for display.

use std::fmt::Write as _;
use std::path::Path;

use primitives::ONE_OPEN;

use crate::SimError;
use crate::world::{Day, Role, Totals, World};

/// One participant's line.
#[derive(Clone, Debug)]
pub struct Row {
    pub index: usize,
    pub role: Role,
    pub address: String,
    pub quality_bps: u32,
    pub stats: crate::world::Stats,
    pub net: i128,
}

/// Aggregates of one role.
#[derive(Clone, Debug, Default)]
pub struct RoleSum {
    pub count: u64,
    pub net: i128,
    pub data_earnings: u128,
    pub bond_slashed: u128,
    pub gas: u128,
    pub files: u64,
    pub approved: u64,
    pub rejected: u64,
}

/// Everything a run found.
#[derive(Clone, Debug)]
pub struct Report {
    pub name: String,
    pub seed: u64,
    pub days_simulated: u32,
    pub params: Vec<(String, u128)>,
    pub rows: Vec<Row>,
    pub roles: Vec<(Role, RoleSum)>,
    /// Honest contributors by latent-quality decile: (count, mean net, mean data earnings).
    pub deciles: Vec<(u64, i128, u128)>,
    pub gini_data: f64,
    pub gini_net: f64,
    pub stakes: Vec<u128>,
    pub nakamoto: usize,
    pub days: Vec<Day>,
    pub totals: Totals,
    pub elapsed: std::time::Duration,
}

/// Gini coefficient of non-negative values (0 = equal, 1 = one holds all).
pub fn gini(values: &[u128]) -> f64 {
    let mut v: Vec<f64> = values.iter().map(|x| *x as f64).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len() as f64;
    let sum: f64 = v.iter().sum();
    if v.is_empty() || sum == 0.0 {
        return 0.0;
    }
    let weighted: f64 = v.iter().enumerate().map(|(i, x)| (i as f64 + 1.0) * x).sum();
    (2.0 * weighted) / (n * sum) - (n + 1.0) / n
}

/// The fewest validators holding more than a third of the stake.
pub fn nakamoto(stakes: &[u128]) -> usize {
    let mut s = stakes.to_vec();
    s.sort_unstable_by(|a, b| b.cmp(a));
    let total: u128 = s.iter().sum();
    let mut acc = 0u128;
    for (i, x) in s.iter().enumerate() {
        acc += x;
        if acc * 3 > total {
            return i + 1;
        }
    }
    s.len()
}

/// Base units as OPEN with six decimals (integer arithmetic).
pub fn open(v: i128) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let micro = a / (ONE_OPEN / 1_000_000);
    format!("{sign}{}.{:06}", micro / 1_000_000, micro % 1_000_000)
}

fn openf(v: i128) -> f64 {
    v as f64 / ONE_OPEN as f64
}

impl Report {
    pub fn new(w: &World, elapsed: std::time::Duration) -> Report {
        let rows: Vec<Row> = w
            .people
            .iter()
            .enumerate()
            .map(|(i, p)| Row {
                index: i,
                role: p.role,
                address: p.address.to_string(),
                quality_bps: p.quality_bps,
                stats: p.stats.clone(),
                net: p.net,
            })
            .collect();
        let mut roles = vec![];
        for role in Role::ALL {
            let mut s = RoleSum::default();
            for r in rows.iter().filter(|r| r.role == role) {
                s.count += 1;
                s.net += r.net;
                s.data_earnings += r.stats.credits_claimed + r.stats.credits_unclaimed;
                s.bond_slashed += r.stats.bond_slashed;
                s.gas += r.stats.gas_paid;
                s.files += r.stats.files;
                s.approved += r.stats.approved;
                s.rejected += r.stats.rejected;
            }
            if s.count > 0 {
                roles.push((role, s));
            }
        }
        let mut deciles = vec![(0u64, 0i128, 0u128); 10];
        for r in rows.iter().filter(|r| r.role == Role::Contributor) {
            let d = ((r.quality_bps.saturating_sub(2_000)) as usize * 10 / 8_001).min(9);
            deciles[d].0 += 1;
            deciles[d].1 += r.net;
            deciles[d].2 += r.stats.credits_claimed + r.stats.credits_unclaimed;
        }
        for d in &mut deciles {
            if d.0 > 0 {
                d.1 /= d.0 as i128;
                d.2 /= d.0 as u128;
            }
        }
        let contributors: Vec<u128> = rows
            .iter()
            .filter(|r| matches!(r.role, Role::Contributor | Role::Spammer | Role::Copycat))
            .map(|r| r.stats.credits_claimed + r.stats.credits_unclaimed)
            .collect();
        let positive: Vec<u128> = rows.iter().map(|r| r.net.max(0) as u128).collect();
        let stakes: Vec<u128> = w.stakes().iter().map(|(_, s)| *s).collect();
        Report {
            name: w.scn.name.clone(),
            seed: w.scn.seed,
            days_simulated: w.scn.days,
            params: w.scn.genesis_params().unwrap_or_default(),
            nakamoto: nakamoto(&stakes),
            stakes,
            gini_data: gini(&contributors),
            gini_net: gini(&positive),
            rows,
            roles,
            deciles,
            days: w.days.clone(),
            totals: w.totals.clone(),
            elapsed,
        }
    }

    pub fn role(&self, r: Role) -> RoleSum {
        self.roles.iter().find(|(x, _)| *x == r).map(|(_, s)| s.clone()).unwrap_or_default()
    }

    /// Mean net position of a role's participants.
    pub fn mean_net(&self, r: Role) -> i128 {
        let s = self.role(r);
        if s.count == 0 { 0 } else { s.net / s.count as i128 }
    }

    /// The headline figures, as (metric, value) pairs.
    pub fn summary(&self) -> Vec<(String, String)> {
        let t = &self.totals;
        let spam = self.role(Role::Spammer);
        let copy = self.role(Role::Copycat);
        let forger = self.role(Role::ForgingOperator);
        let mut v: Vec<(String, String)> = vec![
            ("scenario".into(), self.name.clone()),
            ("seed".into(), self.seed.to_string()),
            ("days".into(), self.days_simulated.to_string()),
            ("blocks".into(), t.blocks.to_string()),
            ("empty_blocks".into(), t.empty_blocks.to_string()),
            ("transactions".into(), t.txs.to_string()),
            ("supply_checks_passed".into(), t.supply_checks.to_string()),
            ("paid_inferences".into(), t.receipts_settled.to_string()),
            ("inference_spend_open".into(), open(t.settled_cost as i128)),
            ("escrow_spent_open".into(), open(t.escrow_spent as i128)),
            ("data_share_held_open".into(), open(t.data_held as i128)),
            ("data_credited_open".into(), open(t.credited as i128)),
            ("data_dust_open".into(), open(t.dust as i128)),
            ("data_fallback_open".into(), open(t.fallback as i128)),
            ("data_forfeited_open".into(), open(t.forfeited as i128)),
            ("credits_claimed_open".into(), open(t.claimed as i128)),
            ("open_holds_at_end".into(), t.open_holds_at_end.to_string()),
            ("settle_failures".into(), t.settle_failures.to_string()),
            ("transactions_dropped".into(), t.dropped.to_string()),
            ("models_live".into(), t.models_live.to_string()),
            ("proposals_failed".into(), t.proposals_failed.to_string()),
            ("gini_contributor_data_earnings".into(), format!("{:.4}", self.gini_data)),
            ("gini_positive_net_all".into(), format!("{:.4}", self.gini_net)),
            ("nakamoto_coefficient_stake".into(), self.nakamoto.to_string()),
            ("spam_files".into(), spam.files.to_string()),
            ("spam_approved".into(), spam.approved.to_string()),
            ("spam_rejected".into(), spam.rejected.to_string()),
            ("spam_data_earnings_open".into(), open(spam.data_earnings as i128)),
            ("spam_bonds_lost_open".into(), open(spam.bond_slashed as i128)),
            ("spam_gas_open".into(), open(spam.gas as i128)),
            ("spammer_mean_net_open".into(), open(self.mean_net(Role::Spammer))),
            ("copycat_files".into(), copy.files.to_string()),
            ("copycat_approved".into(), copy.approved.to_string()),
            ("copycat_data_earnings_open".into(), open(copy.data_earnings as i128)),
            ("copycat_bonds_lost_open".into(), open(copy.bond_slashed as i128)),
            ("copycat_mean_net_open".into(), open(self.mean_net(Role::Copycat))),
            ("honest_contributor_mean_net_open".into(), open(self.mean_net(Role::Contributor))),
            ("honest_operator_mean_net_open".into(), open(self.mean_net(Role::Operator))),
            ("forger_net_open".into(), open(forger.net)),
            ("forged_records".into(), t.forged_records.to_string()),
            ("forged_unchallenged".into(), t.forged_unchallenged.to_string()),
            ("challenges_opened".into(), t.challenges_opened.to_string()),
            ("challenges_upheld".into(), t.challenges_upheld.to_string()),
            ("challenges_defaulted".into(), t.challenges_defaulted.to_string()),
            ("challenges_rejected".into(), t.challenges_rejected.to_string()),
            ("challenges_lapsed".into(), t.challenges_lapsed.to_string()),
            ("challenges_unaffordable".into(), t.challenges_unaffordable.to_string()),
            ("challenges_declined".into(), t.challenges_declined.to_string()),
            ("false_alarms_challenged".into(), t.false_alarms.to_string()),
            ("treasury_start_open".into(), open(t.treasury_start as i128)),
            ("treasury_end_open".into(), open(t.treasury_end as i128)),
            ("treasury_inflow_open".into(), open(t.treasury_end as i128 - t.treasury_start as i128)),
            ("treasury_from_inference_split_open".into(), open(t.treasury_from_inference as i128)),
            ("treasury_from_rejected_bonds_open".into(), open(t.treasury_from_rejections as i128)),
            (
                "treasury_from_fees_royalties_and_slashes_open".into(),
                open(
                    t.treasury_end as i128
                        - t.treasury_start as i128
                        - t.treasury_from_inference as i128
                        - t.treasury_from_rejections as i128,
                ),
            ),
            ("issued_open".into(), open(t.issued as i128)),
            ("burned_open".into(), open(t.burned as i128)),
        ];
        for (n, x) in &self.params {
            v.push((format!("param {n}"), x.to_string()));
        }
        for (r, s) in &self.roles {
            v.push((format!("role {} count", r.name()), s.count.to_string()));
            v.push((format!("role {} net_open", r.name()), open(s.net)));
        }
        v
    }

    fn participants_csv(&self) -> String {
        let mut s = String::from(
            "index,role,address,quality_bps,files,refused_by_ingest,approved,rejected,rows_approved,bond_slashed_wei,credits_claimed_wei,credits_unclaimed_wei,share_earnings_wei,gas_paid_wei,inferences_paid,inference_spend_wei,receipts_served,records_forged,challenges_opened,challenges_won,stake_slashed_wei,net_wei\n",
        );
        for r in &self.rows {
            let t = &r.stats;
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.index,
                r.role.name(),
                r.address,
                r.quality_bps,
                t.files,
                t.refused_by_ingest,
                t.approved,
                t.rejected,
                t.rows_approved,
                t.bond_slashed,
                t.credits_claimed,
                t.credits_unclaimed,
                t.share_earnings,
                t.gas_paid,
                t.inferences_paid,
                t.inference_spend,
                t.receipts_served,
                t.records_forged,
                t.challenges_opened,
                t.challenges_won,
                t.stake_slashed,
                r.net
            );
        }
        s
    }

    fn daily_csv(&self) -> String {
        let mut s = String::from(
            "day,paid_inferences,spend_wei,treasury_wei,files,spam_approved,spam_rejected,live_models,challenges\n",
        );
        for (i, d) in self.days.iter().enumerate() {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{}",
                i + 1,
                d.inferences,
                d.spend,
                d.treasury,
                d.files,
                d.spam_approved,
                d.spam_rejected,
                d.live_models,
                d.challenges
            );
        }
        s
    }

    fn summary_csv(&self) -> String {
        let mut s = String::from("metric,value\n");
        for (k, v) in self.summary() {
            let _ = writeln!(s, "{k},{v}");
        }
        s
    }

    /// Write `summary.csv`, `participants.csv`, `daily.csv` and `report.html` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), SimError> {
        std::fs::create_dir_all(dir).map_err(|e| SimError::Io(format!("cannot create {}: {e}", dir.display())))?;
        let put = |name: &str, text: String| {
            std::fs::write(dir.join(name), text)
                .map_err(|e| SimError::Io(format!("cannot write {}: {e}", dir.join(name).display())))
        };
        put("summary.csv", self.summary_csv())?;
        put("participants.csv", self.participants_csv())?;
        put("daily.csv", self.daily_csv())?;
        put("report.html", self.html())?;
        Ok(())
    }

    fn html(&self) -> String {
        let mut h = page_head(&format!("OpenLedger simulation: {}", self.name));
        let t = &self.totals;
        let _ = write!(
            h,
            "<h1>OpenLedger economic simulation: {}</h1><p>Seed {}, {} simulated days, {} blocks, {} transactions, {} paid inferences; \
             the supply equation was checked after each of {} blocks and held. Run time {:.1} s.</p>",
            esc(&self.name),
            self.seed,
            self.days_simulated,
            t.blocks,
            t.txs,
            t.receipts_settled,
            t.supply_checks,
            self.elapsed.as_secs_f64()
        );
        let labels: Vec<String> = self.roles.iter().map(|(r, s)| format!("{} ({})", r.name(), s.count)).collect();
        let means: Vec<f64> = self.roles.iter().map(|(_, s)| openf(s.net) / s.count.max(1) as f64).collect();
        h += &bar_chart("Mean net position by role (OPEN, end minus start)", &labels, &means);
        let totals: Vec<f64> = self.roles.iter().map(|(_, s)| openf(s.net)).collect();
        h += &bar_chart("Total net position by role (OPEN)", &labels, &totals);
        let dl: Vec<String> = (0..10).map(|i| format!("decile {} ({})", i + 1, self.deciles[i].0)).collect();
        let dv: Vec<f64> = self.deciles.iter().map(|d| openf(d.2 as i128)).collect();
        h += &bar_chart("Honest contributors: mean data earnings by latent-quality decile (OPEN)", &dl, &dv);
        let dn: Vec<f64> = self.deciles.iter().map(|d| openf(d.1)).collect();
        h += &bar_chart("Honest contributors: mean net position by latent-quality decile (OPEN)", &dl, &dn);
        let contributors: Vec<u128> = self
            .rows
            .iter()
            .filter(|r| matches!(r.role, Role::Contributor | Role::Spammer | Role::Copycat))
            .map(|r| r.stats.credits_claimed + r.stats.credits_unclaimed)
            .collect();
        h += &lorenz(
            &format!("Lorenz curve of contributors' data earnings (Gini {:.3})", self.gini_data),
            &contributors,
        );
        let mut st = self.stakes.clone();
        st.sort_unstable_by(|a, b| b.cmp(a));
        let sl: Vec<String> = (0..st.len()).map(|i| format!("#{}", i + 1)).collect();
        let sv: Vec<f64> = st.iter().map(|s| openf(*s as i128)).collect();
        h +=
            &bar_chart(&format!("Validators' stake, largest first (Nakamoto coefficient {})", self.nakamoto), &sl, &sv);
        let days: Vec<String> = (1..=self.days.len()).map(|d| d.to_string()).collect();
        let inf: Vec<f64> = self.days.iter().map(|d| d.inferences as f64).collect();
        h += &bar_chart("Paid inferences per day", &days, &inf);
        let tr: Vec<f64> = self.days.iter().map(|d| openf(d.treasury as i128)).collect();
        h += &bar_chart("Treasury balance at the end of each day (OPEN)", &days, &tr);
        let sp: Vec<f64> = self.days.iter().map(|d| d.spam_approved as f64).collect();
        h += &bar_chart("Spam files approved per day (by lazy curators)", &days, &sp);
        h += "<h2>Headline figures</h2><table>";
        for (k, v) in self.summary() {
            let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", esc(&k), esc(&v));
        }
        h += "</table>";
        if !t.reverted.is_empty() {
            h += "<h2>Reverted or dropped transactions</h2><table>";
            for (k, v) in &t.reverted {
                let _ = write!(h, "<tr><td>{}</td><td>{v}</td></tr>", esc(k));
            }
            h += "</table>";
        }
        h += "</body></html>\n";
        h
    }
}

/// One point of a sweep: its parameter values and the figures that say whether each attack paid.
#[derive(Clone, Debug)]
pub struct SweepRow {
    pub labels: Vec<(String, u128)>,
    pub spammer_mean_net: i128,
    pub spam_approved: u64,
    pub copycat_mean_net: i128,
    pub forger_net: i128,
    pub honest_operator_mean_net: i128,
    pub honest_contributor_mean_net: i128,
    pub forged_records: u64,
    pub challenges_opened: u64,
    pub challenges_won: u64,
    pub challenges_unaffordable: u64,
    pub inferences: u64,
    pub gini_data: f64,
}

impl SweepRow {
    pub fn new(labels: Vec<(String, u128)>, r: &Report) -> SweepRow {
        let t = &r.totals;
        let spam = r.role(Role::Spammer);
        SweepRow {
            labels,
            spammer_mean_net: r.mean_net(Role::Spammer),
            spam_approved: spam.approved,
            copycat_mean_net: r.mean_net(Role::Copycat),
            forger_net: r.role(Role::ForgingOperator).net,
            honest_operator_mean_net: r.mean_net(Role::Operator),
            honest_contributor_mean_net: r.mean_net(Role::Contributor),
            forged_records: t.forged_records,
            challenges_opened: t.challenges_opened,
            challenges_won: t.challenges_upheld + t.challenges_defaulted,
            challenges_unaffordable: t.challenges_unaffordable,
            inferences: t.receipts_settled,
            gini_data: r.gini_data,
        }
    }
}

/// Write `sweep.csv` and `sweep.html`.
pub fn write_sweep(rows: &[SweepRow], dir: &Path, title: &str) -> Result<(), SimError> {
    std::fs::create_dir_all(dir).map_err(|e| SimError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let names: Vec<String> =
        rows.first().map(|r| r.labels.iter().map(|(n, _)| n.clone()).collect()).unwrap_or_default();
    let mut csv = names.join(",");
    csv += if names.is_empty() { "" } else { "," };
    csv += "paid_inferences,spammer_mean_net_open,spam_approved,copycat_mean_net_open,forger_net_open,honest_operator_mean_net_open,honest_contributor_mean_net_open,forged_records,challenges_opened,challenges_won,challenges_unaffordable,gini_contributor_data_earnings\n";
    for r in rows {
        for (_, v) in &r.labels {
            let _ = write!(csv, "{v},");
        }
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{:.4}",
            r.inferences,
            open(r.spammer_mean_net),
            r.spam_approved,
            open(r.copycat_mean_net),
            open(r.forger_net),
            open(r.honest_operator_mean_net),
            open(r.honest_contributor_mean_net),
            r.forged_records,
            r.challenges_opened,
            r.challenges_won,
            r.challenges_unaffordable,
            r.gini_data
        );
    }
    std::fs::write(dir.join("sweep.csv"), &csv).map_err(|e| SimError::Io(e.to_string()))?;
    let mut h = page_head(title);
    let _ =
        write!(h, "<h1>{}</h1><p>{} runs. Each attack pays while its net is above zero.</p>", esc(title), rows.len());
    // Amounts (at least 0.001 OPEN) read better in OPEN than in base units.
    let value = |v: u128| {
        if v >= ONE_OPEN / 1_000 {
            format!("{} OPEN", open(v as i128).trim_end_matches('0').trim_end_matches('.'))
        } else {
            v.to_string()
        }
    };
    let label = |r: &SweepRow| {
        r.labels.iter().map(|(n, v)| format!("{}={}", short(n), value(*v))).collect::<Vec<_>>().join(" ")
    };
    let ls: Vec<String> = rows.iter().map(label).collect();
    for (t, f) in [
        (
            "Forging operator: net position (OPEN; both its accounts)",
            (|r: &SweepRow| openf(r.forger_net)) as fn(&SweepRow) -> f64,
        ),
        ("Honest operator: mean net position (OPEN)", |r| openf(r.honest_operator_mean_net)),
        ("Spammer: mean net position (OPEN)", |r| openf(r.spammer_mean_net)),
        ("Copycat: mean net position (OPEN)", |r| openf(r.copycat_mean_net)),
        ("Honest contributor: mean net position (OPEN)", |r| openf(r.honest_contributor_mean_net)),
        ("Challenges won", |r| r.challenges_won as f64),
        ("Challenges a watcher could not afford", |r| r.challenges_unaffordable as f64),
    ] {
        let v: Vec<f64> = rows.iter().map(f).collect();
        h += &bar_chart(t, &ls, &v);
    }
    h += "<h2>All figures</h2><table>";
    for (i, line) in csv.lines().enumerate() {
        h += "<tr>";
        for cell in line.split(',') {
            let tag = if i == 0 { "th" } else { "td" };
            let _ = write!(h, "<{tag}>{}</{tag}>", esc(cell));
        }
        h += "</tr>";
    }
    h += "</table></body></html>\n";
    std::fs::write(dir.join("sweep.html"), h).map_err(|e| SimError::Io(e.to_string()))?;
    Ok(())
}

fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn page_head(title: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}\
         td:first-child{{text-align:left}}svg{{display:block;margin:1em 0}}\
         </style></head><body>",
        esc(title)
    )
}

/// A horizontal bar chart (negative values to the left of the axis).
fn bar_chart(title: &str, labels: &[String], values: &[f64]) -> String {
    let row = 18.0;
    let (w, left, right) = (960.0, 300.0, 110.0);
    let plot = w - left - right;
    let hgt = 30.0 + row * values.len() as f64 + 10.0;
    let max = values.iter().fold(0.0f64, |m, v| m.max(*v));
    let min = values.iter().fold(0.0f64, |m, v| m.min(*v));
    let span = if max - min == 0.0 { 1.0 } else { max - min };
    let zero = left + plot * (-min / span);
    let mut s = format!(
        "<h2>{}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{hgt}\" font-size=\"11\">",
        esc(title)
    );
    let _ = write!(s, "<line x1=\"{zero}\" y1=\"20\" x2=\"{zero}\" y2=\"{}\" stroke=\"#444\"/>", hgt - 5.0);
    for (i, (l, v)) in labels.iter().zip(values).enumerate() {
        let y = 25.0 + row * i as f64;
        let x = left + plot * ((v.min(0.0) - min) / span);
        let bw = plot * (v.abs() / span);
        let color = if *v < 0.0 { "#c0392b" } else { "#2e86c1" };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect x=\"{x:.1}\" y=\"{y}\" width=\"{bw:.1}\" height=\"{}\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{}\">{}</text>",
            left - 6.0,
            y + 12.0,
            esc(l),
            row - 4.0,
            left + plot + 4.0,
            y + 12.0,
            fmt_num(*v)
        );
    }
    s += "</svg>";
    s
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// A Lorenz curve with the line of equality.
fn lorenz(title: &str, values: &[u128]) -> String {
    let mut v: Vec<f64> = values.iter().map(|x| *x as f64).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let total: f64 = v.iter().sum::<f64>().max(1.0);
    let (size, pad) = (320.0, 30.0);
    let mut pts = format!("{pad},{}", pad + size);
    let mut acc = 0.0;
    let n = v.len().max(1) as f64;
    for (i, x) in v.iter().enumerate() {
        acc += x;
        let _ = write!(pts, " {:.1},{:.1}", pad + size * (i as f64 + 1.0) / n, pad + size - size * acc / total);
    }
    format!(
        "<h2>{}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{w}\" font-size=\"11\">\
         <rect x=\"{pad}\" y=\"{pad}\" width=\"{size}\" height=\"{size}\" fill=\"none\" stroke=\"#888\"/>\
         <line x1=\"{pad}\" y1=\"{b}\" x2=\"{e}\" y2=\"{pad}\" stroke=\"#aaa\" stroke-dasharray=\"4\"/>\
         <polyline points=\"{pts}\" fill=\"none\" stroke=\"#2e86c1\" stroke-width=\"2\"/>\
         <text x=\"{pad}\" y=\"{t}\">share of contributors →</text></svg>",
        esc(title),
        w = size + 2.0 * pad,
        b = pad + size,
        e = pad + size,
        t = pad + size + 20.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concentration_indices() {
        assert_eq!(gini(&[5, 5, 5, 5]), 0.0);
        assert!((gini(&[0, 0, 0, 8]) - 0.75).abs() < 1e-12, "one of four holds all: (n - 1) / n");
        assert_eq!(gini(&[]), 0.0);
        assert_eq!(nakamoto(&[10, 10, 10, 10]), 2, "two of four hold more than a third");
        assert_eq!(nakamoto(&[60, 20, 20]), 1);
        assert_eq!(open(-1_500_000_000_000_000_000), "-1.500000");
        assert_eq!(open(999_999_999_999), "0.000000");
    }
}
