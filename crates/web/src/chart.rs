//! Line charts drawn on the server as inline SVG: one `<polyline>` per
//! series, axes with tick labels, a `<title>` and an `aria-label` naming the
//! chart, a legend that tells series apart by dash pattern as well as colour,
//! and the same numbers in a visually hidden table for screen readers. No
//! script draws anything.
//!
//! The x axis is a count (a training step, a block number); the y axis is any
//! [`Value`]: a float (a loss) or an exact amount of OPEN ([`Open`]), whose
//! tick labels are exact however large the amount.

use maud::{Markup, html};
use primitives::U256;

use crate::format;

/// The plot area, in SVG user units (the SVG scales to its container's width).
pub const PLOT_WIDTH: f64 = 560.0;
pub const PLOT_HEIGHT: f64 = 220.0;
/// Space below the plot for the x tick labels, and above and right of it.
const BOTTOM: f64 = 36.0;
const TOP: f64 = 12.0;
const RIGHT: f64 = 16.0;
/// Approximate width of one character of a tick label, for the left margin.
const CHAR_WIDTH: f64 = 6.5;
/// Ticks on each axis (intervals).
const TICKS: u32 = 4;

/// A y value the chart can place and label.
pub trait Value: Copy + PartialOrd {
    /// Where `self` sits between `lo` and `hi` (`lo < hi`), from 0 to 1.
    fn position(self, lo: Self, hi: Self) -> f64;
    /// `lo + (hi - lo) * k / n`, rounded down.
    fn between(lo: Self, hi: Self, k: u32, n: u32) -> Self;
    /// A range with room in it when every value is `v`.
    fn around(v: Self) -> (Self, Self);
    /// The axis's lowest value when the smallest datum is `min` (amounts start at zero).
    fn bottom(min: Self) -> Self {
        min
    }
    fn label(self) -> String;
}

impl Value for f64 {
    fn position(self, lo: f64, hi: f64) -> f64 {
        (self - lo) / (hi - lo)
    }
    fn between(lo: f64, hi: f64, k: u32, n: u32) -> f64 {
        lo + (hi - lo) * f64::from(k) / f64::from(n)
    }
    fn around(v: f64) -> (f64, f64) {
        let d = if v == 0.0 { 1.0 } else { v.abs() / 10.0 };
        (v - d, v + d)
    }
    /// Four significant digits (losses are small numbers), plain notation.
    fn label(self) -> String {
        if !self.is_finite() {
            return self.to_string();
        }
        let digits = if self == 0.0 { 0 } else { (3 - self.abs().log10().floor() as i32).clamp(0, 6) as usize };
        format!("{self:.digits$}")
    }
}

/// An amount of OPEN in base units: placed approximately, labelled exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Open(pub U256);

impl Value for Open {
    fn position(self, lo: Open, hi: Open) -> f64 {
        let (num, den) = (self.0 - lo.0, hi.0 - lo.0);
        // Keep the top 53 bits of both so that they convert to f64 exactly enough.
        let shift = den.bit_len().saturating_sub(53);
        let (num, den) = ((num >> shift).saturating_to::<u64>(), (den >> shift).saturating_to::<u64>());
        num as f64 / den.max(1) as f64
    }
    fn between(lo: Open, hi: Open, k: u32, n: u32) -> Open {
        let (span, k, n) = (hi.0 - lo.0, U256::from(k), U256::from(n.max(1)));
        // (span / n) * k + (span % n) * k / n: exact floor, no overflow for k <= n.
        Open(lo.0 + span / n * k + span % n * k / n)
    }
    fn around(v: Open) -> (Open, Open) {
        if v.0.is_zero() { (Open(U256::ZERO), Open(U256::from(1u64))) } else { (Open(U256::ZERO), v) }
    }
    fn bottom(_: Open) -> Open {
        Open(U256::ZERO)
    }
    fn label(self) -> String {
        format::open(self.0)
    }
}

/// One line: its name (in the legend and the data table) and its points, by x.
pub struct Series<Y> {
    pub name: String,
    pub points: Vec<(u64, Y)>,
}

/// What the chart is of, for its title, axis names and the hidden table.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
}

/// The ranges every point of `series` falls in: `None` when there is no point.
fn ranges<Y: Value>(series: &[Series<Y>]) -> Option<((u64, u64), (Y, Y))> {
    let mut all = series.iter().flat_map(|s| s.points.iter().copied());
    let (x0, y0) = all.next()?;
    let (mut xs, mut ys) = ((x0, x0), (y0, y0));
    for (x, y) in all {
        xs = (xs.0.min(x), xs.1.max(x));
        if y < ys.0 {
            ys.0 = y;
        }
        if y > ys.1 {
            ys.1 = y;
        }
    }
    let lo = Y::bottom(ys.0);
    let ys = if lo < ys.1 { (lo, ys.1) } else { Y::around(ys.1) };
    Some((xs, ys))
}

/// Where `x` sits in the plot's width (a single x is in the middle).
fn x_position(x: u64, (lo, hi): (u64, u64)) -> f64 {
    if hi == lo { PLOT_WIDTH / 2.0 } else { (x - lo) as f64 / (hi - lo) as f64 * PLOT_WIDTH }
}

/// The points of one series in SVG coordinates relative to the plot's
/// top-left corner (y grows downwards), each inside the plot.
pub fn scale<Y: Value>(points: &[(u64, Y)], xs: (u64, u64), ys: (Y, Y)) -> Vec<(f64, f64)> {
    points
        .iter()
        .map(|&(x, y)| {
            let p = y.position(ys.0, ys.1);
            let p = if p.is_finite() { p.clamp(0.0, 1.0) } else { 0.0 };
            (x_position(x, xs), PLOT_HEIGHT - p * PLOT_HEIGHT)
        })
        .collect()
}

/// The chart as a `<figure>`: the SVG, its legend, and the data table.
pub fn line_chart<Y: Value>(c: &Chart, series: &[Series<Y>]) -> Markup {
    let Some((xs, ys)) = ranges(series) else {
        return html! { p.muted { (c.title) ": no data yet." } };
    };
    let y_ticks: Vec<(f64, String)> = (0..=TICKS)
        .map(|k| {
            let v = Y::between(ys.0, ys.1, k, TICKS);
            (PLOT_HEIGHT - v.position(ys.0, ys.1).clamp(0.0, 1.0) * PLOT_HEIGHT, v.label())
        })
        .collect();
    let x_ticks: Vec<(f64, u64)> = if xs.0 == xs.1 {
        vec![(x_position(xs.0, xs), xs.0)]
    } else {
        let mut t: Vec<u64> = (0..=TICKS).map(|k| xs.0 + (xs.1 - xs.0) / u64::from(TICKS) * u64::from(k)).collect();
        t[TICKS as usize] = xs.1;
        t.dedup();
        t.into_iter().map(|x| (x_position(x, xs), x)).collect()
    };
    let longest = y_ticks.iter().map(|(_, l)| l.chars().count()).max().unwrap_or(1);
    let left = 12.0 + CHAR_WIDTH * longest as f64;
    let (width, height) = (left + PLOT_WIDTH + RIGHT, TOP + PLOT_HEIGHT + BOTTOM);
    let described = format!("{}: {} against {}", c.title, c.y_label, c.x_label);
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(described)
                viewBox=(format!("0 0 {width:.0} {height:.0}")) preserveAspectRatio="xMinYMin meet" {
                title { (described) }
                g transform=(format!("translate({left:.1},{TOP:.1})")) {
                    g.axis {
                        line x1="0" y1="0" x2="0" y2=(PLOT_HEIGHT) {}
                        line x1="0" y1=(PLOT_HEIGHT) x2=(PLOT_WIDTH) y2=(PLOT_HEIGHT) {}
                        @for (y, l) in &y_ticks {
                            line.grid x1="0" y1=(format!("{y:.1}")) x2=(PLOT_WIDTH) y2=(format!("{y:.1}")) {}
                            text x="-6" y=(format!("{:.1}", y + 4.0)) text-anchor="end" { (l) }
                        }
                        @for (x, l) in &x_ticks {
                            text x=(format!("{x:.1}")) y=(PLOT_HEIGHT + 16.0) text-anchor="middle" { (l) }
                        }
                        text x=(PLOT_WIDTH / 2.0) y=(PLOT_HEIGHT + 32.0) text-anchor="middle" { (c.x_label) }
                    }
                    @for (i, s) in series.iter().enumerate() {
                        @let pts = scale(&s.points, xs, ys);
                        @if pts.len() == 1 {
                            circle class=(format!("series-{i}")) r="3"
                                cx=(format!("{:.1}", pts[0].0)) cy=(format!("{:.1}", pts[0].1)) {}
                        } @else if !pts.is_empty() {
                            polyline class=(format!("series-{i}")) fill="none" points=(points_attr(&pts)) {}
                        }
                    }
                }
            }
            figcaption {
                (c.y_label) " by " (c.x_label) ". "
                @for (i, s) in series.iter().enumerate() {
                    span.legend {
                        svg.key width="24" height="8" aria-hidden="true" {
                            line class=(format!("series-{i}")) x1="0" y1="4" x2="24" y2="4" {}
                        }
                        " " (s.name)
                    }
                    " "
                }
            }
            (data_table(c, series))
        }
    }
}

fn points_attr(pts: &[(f64, f64)]) -> String {
    pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect::<Vec<_>>().join(" ")
}

/// The chart's numbers, for screen readers: one row per point of each series.
/// Hidden by a wrapper: a table never shrinks below its content's width, so a
/// hidden table (1 px wide on paper) would still widen a phone's page.
fn data_table<Y: Value>(c: &Chart, series: &[Series<Y>]) -> Markup {
    html! {
        div.visually-hidden { table {
            caption { (c.title) ", the data" }
            thead { tr { th scope="col" { "Series" } th scope="col" { (c.x_label) } th scope="col" { (c.y_label) } } }
            tbody {
                @for s in series { @for (x, y) in &s.points {
                    tr { td { (s.name) } td { (x) } td { (y.label()) } }
                } }
            }
        } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart<'static> {
        Chart { title: "Loss", x_label: "step", y_label: "loss" }
    }

    #[test]
    fn points_are_scaled_into_the_box() {
        let s = [Series { name: "train".into(), points: vec![(1, 4.0), (3, 2.0), (5, 3.0)] }];
        let (xs, ys) = ranges(&s).unwrap();
        assert_eq!((xs, ys), ((1, 5), (2.0, 4.0)));
        let pts = scale(&s[0].points, xs, ys);
        assert_eq!(pts, vec![(0.0, 0.0), (PLOT_WIDTH / 2.0, PLOT_HEIGHT), (PLOT_WIDTH, PLOT_HEIGHT / 2.0)]);
        let svg = line_chart(&chart(), &s).into_string();
        assert!(svg.contains("<polyline class=\"series-0\" fill=\"none\" points=\"0.0,0.0 280.0,220.0 560.0,110.0\""));
        assert!(
            svg.contains("aria-label=\"Loss: loss against step\"") && svg.contains("<title>Loss: loss against step")
        );
        // Ticks: the extremes of both axes are labelled.
        for want in [">4.000<", ">2.000<", ">1<", ">5<"] {
            assert!(svg.contains(want), "{want} in {svg}");
        }
        // The hidden table carries every point.
        assert!(svg.contains("<td>train</td><td>3</td><td>2.000</td>"), "{svg}");
    }

    #[test]
    fn an_empty_chart_says_so() {
        let none: [Series<f64>; 0] = [];
        assert_eq!(line_chart(&chart(), &none).into_string(), "<p class=\"muted\">Loss: no data yet.</p>");
        let empty = [Series::<f64> { name: "train".into(), points: vec![] }];
        assert!(line_chart(&chart(), &empty).into_string().contains("no data yet"));
    }

    #[test]
    fn a_single_point_sits_inside_the_box() {
        let s = [Series { name: "validation".into(), points: vec![(7, 2.5)] }];
        let (xs, ys) = ranges(&s).unwrap();
        let pts = scale(&s[0].points, xs, ys);
        assert_eq!(pts, vec![(PLOT_WIDTH / 2.0, PLOT_HEIGHT / 2.0)]);
        let svg = line_chart(&chart(), &s).into_string();
        assert!(
            svg.contains("<circle class=\"series-0\" r=\"3\" cx=\"280.0\" cy=\"110.0\"") && !svg.contains("<polyline")
        );
        let zero = [Series { name: "earned".into(), points: vec![(3, Open(U256::ZERO))] }];
        let (_, ys) = ranges(&zero).unwrap();
        assert_eq!(ys, (Open(U256::ZERO), Open(U256::from(1u64))));
    }

    #[test]
    fn huge_amounts_are_exact_on_the_axis() {
        let max = Open(U256::MAX);
        let s = [Series { name: "credited".into(), points: vec![(10, Open(U256::from(1u64))), (20, max)] }];
        let (xs, ys) = ranges(&s).unwrap();
        assert_eq!(ys, (Open(U256::ZERO), max));
        let pts = scale(&s[0].points, xs, ys);
        assert_eq!(pts[1], (PLOT_WIDTH, 0.0));
        assert!(pts[0].1 > PLOT_HEIGHT - 1e-9 && pts[0].1 <= PLOT_HEIGHT);
        let svg = line_chart(&Chart { title: "Earnings", x_label: "block", y_label: "OPEN" }, &s).into_string();
        assert!(svg.contains(&format!(">{}<", format::open(U256::MAX))), "{svg}");
        // A quarter of the maximum, floored exactly.
        assert!(svg.contains(&format!(">{}<", format::open(U256::MAX / U256::from(4u64)))), "{svg}");
        // One base unit is exactly 0.000000000000000001 in the table.
        assert!(svg.contains("<td>0.000000000000000001</td>"), "{svg}");
        assert_eq!(Open::between(Open(U256::ZERO), max, 4, 4), max);
    }
}
