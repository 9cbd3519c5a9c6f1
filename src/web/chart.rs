//! The dashboard's chart of payments per day: inline SVG drawn on the server, so it needs no
//! script and scales with the page (a `viewBox`, no fixed width).

use maud::{html, Markup};

use super::format;
use crate::ledger::DayCount;

const WIDTH: f64 = 480.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 30.0;
const RIGHT: f64 = 6.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 22.0;

/// Coordinates to a tenth of a unit: finer is invisible and only makes the page longer.
fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Bars for the `span` days ending with `today` (days since the epoch): all payments created
/// that day, and the part of them that succeeded.
pub fn payments_per_day(days: &[DayCount], today: i64, span: i64) -> Markup {
    let first = today - span + 1;
    let days: Vec<&DayCount> = days
        .iter()
        .filter(|d| d.day >= first && d.day <= today)
        .collect();
    let max = days.iter().map(|d| d.payments).max().unwrap_or(0);
    let total: i64 = days.iter().map(|d| d.payments).sum();
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / span as f64;
    let bar = (slot * 0.7).max(1.0);
    let y = |n: i64| round(TOP + plot_h - plot_h * n as f64 / max.max(1) as f64);
    let h = |n: i64| round(plot_h * n as f64 / max.max(1) as f64);
    let label = format!(
        "Payments per day from {} to {}: {total} in all",
        format::day(first),
        format::day(today)
    );
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(label)
            xmlns="http://www.w3.org/2000/svg" {
            title { (label) }
            line.axis x1=(LEFT) y1=(TOP + plot_h) x2=(WIDTH - RIGHT) y2=(TOP + plot_h) {}
            line.grid x1=(LEFT) y1=(TOP) x2=(WIDTH - RIGHT) y2=(TOP) {}
            text.tick x=(LEFT - 4.0) y=(TOP + 4.0) text-anchor="end" { (max) }
            text.tick x=(LEFT - 4.0) y=(TOP + plot_h) text-anchor="end" { "0" }
            @for d in &days {
                @let x = round(LEFT + (d.day - first) as f64 * slot + (slot - bar) / 2.0);
                g.day data-day=(format::day(d.day)) data-payments=(d.payments)
                    data-succeeded=(d.succeeded) {
                    title {
                        (format::day(d.day)) ": " (d.payments) " payments, "
                        (d.succeeded) " succeeded"
                    }
                    rect.bar-all x=(x) y=(y(d.payments)) width=(round(bar))
                        height=(h(d.payments)) {}
                    rect.bar-ok x=(x) y=(y(d.succeeded)) width=(round(bar))
                        height=(h(d.succeeded)) {}
                }
            }
            text.tick x=(LEFT) y=(HEIGHT - 6.0) { (format::day(first)) }
            text.tick x=(WIDTH - RIGHT) y=(HEIGHT - 6.0) text-anchor="end" { (format::day(today)) }
            @if total == 0 {
                text.empty x=(LEFT + plot_w / 2.0) y=(TOP + plot_h / 2.0) text-anchor="middle" {
                    "No payments in these days"
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_per_day_with_payments_and_none_outside_the_span() {
        let days = [
            DayCount {
                day: 99,
                payments: 1,
                succeeded: 0,
            },
            DayCount {
                day: 128,
                payments: 4,
                succeeded: 3,
            },
            DayCount {
                day: 129,
                payments: 2,
                succeeded: 2,
            },
        ];
        let svg = payments_per_day(&days, 129, 30).into_string();
        assert_eq!(svg.matches("<g class=\"day\"").count(), 2, "{svg}");
        assert!(svg.contains("4 payments, 3 succeeded"));
        assert!(svg.contains("6 in all"));
        assert!(!svg.contains("No payments"));
        let empty = payments_per_day(&[], 129, 30).into_string();
        assert!(empty.contains("No payments in these days"));
    }
}
