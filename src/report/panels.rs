//! The report's panels: for each chart, the figures it shows, the chart itself and the
//! sentence that reads it. Sentences are computed from the same numbers the chart draws.
//!
//! Not for: drawing (see `charts`) or page layout (see `templates/report.html`).

use plotters::style::RGBColor;
use plotters::style::text_anchor::{HPos, VPos};

use super::charts::{self, Column, Mark, Matrix, MigrationGrid, PairedRow, RfmGrid, Scale, colour};
use super::{Cell, Figure, Legend, Page, Panel, ReportInput, Table};
use crate::affinity;
use crate::cohorts::{self, CohortRow};
use crate::cube::{self, Dimension, Groups};
use crate::deciles::{self, DecileBy, MoneyDecile};
use crate::error::Result;
use crate::ltv::{Bucket, HoldoutCheck, Ltv};
use crate::migration::{Migration, NEW, NO_SEGMENT, VANISHED, moved_customers};
use crate::output::percent;
use crate::output::{money_text, thousands};
use crate::profit::{ProfitView, profit_view};
use crate::segments::{AnalysisSettings, SegmentSize, Segmentation};
use crate::time::format_day;

/// Everything on the page, in reading order; panels in the same row sit side by side.
pub(super) fn page(input: &ReportInput<'_>) -> Result<Page> {
    let seg = input.segmentation;
    let view = profit_view(&seg.summary);
    let mut rows = vec![
        vec![money_panel(seg)?],
        vec![
            purchase_panel(seg)?,
            whale_panel(&view, seg.summary.currency_decimals)?,
        ],
        vec![rfm_panel(seg)?, lifecycle_panel(seg)?],
        vec![segments_panel(seg)?],
    ];
    if let Some(moves) = input.migration {
        rows.push(vec![migration_panel(seg, moves)?]);
    }
    rows.extend([
        vec![best_panel(seg, input.settings)?],
        vec![cube_panel(input)?],
        vec![cohorts_panel(input)?],
        vec![affinity_panel(input)?],
    ]);
    if let Some(ltv) = input.ltv {
        let mut row = vec![clv_panel(ltv)?];
        if let Some(holdout) = &ltv.holdout {
            row.push(holdout_panel(ltv, holdout)?);
        }
        rows.push(row);
    }
    let files: Vec<String> = input
        .load
        .files
        .iter()
        .map(|f| format!("{} ({})", f.path, size_text(f.bytes)))
        .collect();
    Ok(Page {
        title: input.title.to_string(),
        subtitle: format!(
            "As of {} · {}",
            format_day(input.load.as_of),
            files.join(", ")
        ),
        figures: figures(input, &view),
        rows,
        notes: notes(input),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// "1.9 MB".
fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.0} kB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

/// Minor units (possibly beyond i64 as a sum) as currency text.
fn money(minor: i128, decimals: u32) -> String {
    let clamped = i64::try_from(minor).unwrap_or(if minor < 0 { i64::MIN } else { i64::MAX });
    money_text(clamped, decimals)
}

/// Currency units held as a float (model outputs, means) as currency text.
fn money_f64(value: f64, decimals: u32) -> String {
    let minor = value * 10f64.powi(decimals as i32);
    if minor.is_finite() && minor.abs() < 9.0e18 {
        money_text(minor.round() as i64, decimals)
    } else {
        "n/a".into()
    }
}

/// "1 customer", "2,345 customers".
fn customers(n: u64) -> String {
    format!("{} customer{}", thousands(n), if n == 1 { "" } else { "s" })
}

fn share(part: f64, whole: f64) -> f64 {
    if whole == 0.0 { 0.0 } else { part / whole }
}

/// Capitalises the first letter, so library phrases can open a sentence.
fn sentence(text: String) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

fn legend(c: RGBColor, label: &str, mark: &'static str) -> Legend {
    Legend {
        colour: colour::hex(c),
        label: label.into(),
        mark,
    }
}

fn cell(text: impl Into<String>, numeric: bool) -> Cell {
    Cell {
        text: text.into(),
        numeric,
    }
}

fn table(head: &[(&str, bool)], rows: Vec<Vec<Cell>>) -> Table {
    Table {
        head: head.iter().map(|&(t, n)| cell(t, n)).collect(),
        rows,
    }
}

fn panel(id: &'static str, title: &str, reading: String, svg: String) -> Panel {
    Panel {
        id,
        title: title.into(),
        reading,
        svg,
        legend: Vec::new(),
        table: None,
        layout: "stack",
        wide: false,
        note: String::new(),
    }
}

fn figures(input: &ReportInput<'_>, view: &ProfitView) -> Vec<Figure> {
    let s = &input.segmentation.summary;
    let d = s.currency_decimals;
    let load = input.load;
    let customers = s.len() as u64;
    let revenue = s.total_monetary();
    let buyers = s.frequency.iter().filter(|&&f| f > 0).count() as u64;
    let best = input.segmentation.best.count() as u64;
    let mut figures = vec![
        Figure {
            label: "Customers",
            value: thousands(customers),
            note: format!("{} with a purchase", thousands(buyers)),
        },
        Figure {
            label: "Revenue",
            value: money(revenue, d),
            note: format!(
                "{} per customer",
                money_f64(
                    share(revenue as f64, customers as f64) / 10f64.powi(d as i32),
                    d
                )
            ),
        },
        Figure {
            label: "Profit",
            value: money(view.total_profit, d),
            note: if revenue > 0 {
                format!(
                    "{} of revenue",
                    percent(view.total_profit as f64 / revenue as f64)
                )
            } else {
                "revenue is not positive".into()
            },
        },
        Figure {
            label: "As-of date",
            value: format_day(load.as_of),
            note: if load.as_of_given {
                "as given".into()
            } else {
                "the day after the latest transaction".into()
            },
        },
        Figure {
            label: "Rows used",
            value: thousands(load.rows_used),
            note: format!(
                "of {} read; {} rejected",
                thousands(load.rows_read),
                thousands(load.rows_rejected)
            ),
        },
        Figure {
            label: "Best customers",
            value: thousands(best),
            note: format!(
                "{} of customers",
                percent(share(best as f64, customers as f64))
            ),
        },
    ];
    if let Some(ltv) = input.ltv {
        figures.push(Figure {
            label: "Predicted CLV",
            value: money_f64(ltv.total_clv(), d),
            note: format!(
                "{}, next {} {}",
                ltv.report().model,
                ltv.settings.horizon,
                ltv.settings.period.name()
            ),
        });
    }
    figures
}

fn what(by: DecileBy) -> &'static str {
    match by {
        DecileBy::Revenue => "revenue",
        DecileBy::Profit => "profit",
    }
}

fn ranked_share(row: &MoneyDecile, by: DecileBy) -> (Option<f64>, Option<f64>) {
    match by {
        DecileBy::Revenue => (row.revenue_share, row.cum_revenue_share),
        DecileBy::Profit => (row.profit_share, row.cum_profit_share),
    }
}

fn money_panel(seg: &Segmentation) -> Result<Panel> {
    let d = seg.summary.currency_decimals;
    let by = seg.decile_by;
    let rows = deciles::money_deciles(&seg.summary, &seg.decile);
    let (share, cumulative): (Vec<_>, Vec<_>) = rows.iter().map(|r| ranked_share(r, by)).unzip();
    let svg = charts::money_deciles(&share, &cumulative, what(by))?;
    let reading = match (
        cumulative.first().copied().flatten(),
        cumulative.get(1).copied().flatten(),
        cumulative.get(4).copied().flatten(),
    ) {
        (Some(top10), Some(top20), Some(top50)) => format!(
            "The top 10% of customers bring {} of {w} and the top 20% bring {}, while the bottom half brings {}.",
            percent(top10),
            percent(top20),
            percent(1.0 - top50),
            w = what(by)
        ),
        _ => format!(
            "Total {} is zero, so decile shares are undefined.",
            what(by)
        ),
    };
    let opt = |v: Option<f64>| v.map_or("n/a".into(), percent);
    let body = rows
        .iter()
        .map(|r| {
            vec![
                cell(r.decile.to_string(), true),
                cell(thousands(r.customers), true),
                cell(money_text(r.revenue, d), true),
                cell(opt(r.revenue_share), true),
                cell(opt(r.cum_revenue_share), true),
                cell(money_text(r.profit, d), true),
                cell(opt(r.profit_share), true),
                cell(opt(r.cum_profit_share), true),
                cell(
                    match (r.min_monetary, r.max_monetary) {
                        (Some(lo), Some(hi)) => {
                            format!("{} – {}", money_text(lo, d), money_text(hi, d))
                        }
                        _ => String::new(),
                    },
                    true,
                ),
            ]
        })
        .collect();
    let mut p = panel("money-deciles", "Money deciles", reading, svg);
    p.wide = true;
    p.legend = vec![
        legend(
            colour::MONEY,
            &format!("share of {} in the decile", what(by)),
            "bar",
        ),
        legend(colour::ACCENT, "cumulative share, top decile first", "line"),
    ];
    p.table = Some(table(
        &[
            ("decile", true),
            ("customers", true),
            ("revenue", true),
            ("share", true),
            ("cumulative", true),
            ("profit", true),
            ("share", true),
            ("cumulative", true),
            ("revenue per customer, min – max", true),
        ],
        body,
    ));
    Ok(p)
}

fn purchase_panel(seg: &Segmentation) -> Result<Panel> {
    let rows = deciles::purchase_deciles(&seg.summary);
    let slices: Vec<u64> = rows
        .iter()
        .filter(|r| r.slice.is_some())
        .map(|r| r.customers)
        .collect();
    let non_positive: u64 = rows
        .iter()
        .filter(|r| r.slice.is_none())
        .map(|r| r.customers)
        .sum();
    let mut cols: Vec<Column> = slices
        .iter()
        .enumerate()
        .map(|(k, &n)| Column {
            name: format!("{}–{}", k * 10, (k + 1) * 10),
            value: n as f64,
            label: thousands(n),
            colour: colour::CUSTOMERS,
        })
        .collect();
    if non_positive > 0 {
        cols.push(Column {
            name: "≤ 0".into(),
            value: non_positive as f64,
            label: thousands(non_positive),
            colour: colour::AXIS,
        });
    }
    let svg = charts::columns(
        "Purchase deciles",
        &cols,
        (
            "slice of total revenue (%), biggest spenders first",
            "customers",
        ),
        None,
        None,
    )?;
    let first = rows.first();
    let last = rows.iter().rfind(|r| r.slice.is_some());
    let reading = match (first, last) {
        (Some(f), Some(l)) if slices.iter().sum::<u64>() > 0 => format!(
            "{} ({}) {} the first 10% of revenue, while the last 10% takes {} ({}).",
            customers(f.customers),
            percent(f.customer_share),
            if f.customers == 1 { "makes" } else { "make" },
            customers(l.customers),
            percent(l.customer_share)
        ),
        _ => "No customer has positive revenue, so there are no revenue slices.".into(),
    };
    let mut p = panel("purchase-deciles", "Purchase deciles", reading, svg);
    p.legend = vec![legend(
        colour::CUSTOMERS,
        "customers making each tenth of revenue",
        "bar",
    )];
    if non_positive > 0 {
        p.legend
            .push(legend(colour::AXIS, "customers with revenue ≤ 0", "bar"));
    }
    Ok(p)
}

fn whale_panel(view: &ProfitView, d: u32) -> Result<Panel> {
    let Some(curve) = view.whale_curve.as_ref() else {
        let svg = charts::whale_curve(&[0.0; 101], &[])?;
        let reading = sentence(format!(
            "total profit is {}, so profit shares and the whale curve are undefined.",
            money(view.total_profit, d)
        ));
        return Ok(panel("whale-curve", "Whale curve (20/80/30)", reading, svg));
    };
    let top20 = curve.get(20).copied().unwrap_or(0.0);
    let peak = view.whale_peak.unwrap_or(1.0);
    let peak_at = view.whale_peak_customer_share.unwrap_or(1.0);
    let mut marks = vec![Mark {
        at: (0.2, top20),
        text: format!("top 20%: {}", percent(top20)),
        place: (HPos::Left, VPos::Top),
    }];
    let losses = peak > 1.0 + 1e-9;
    if losses {
        marks.push(Mark {
            at: (peak_at, peak),
            text: format!("peak {} at {}", percent(peak), percent(peak_at)),
            place: (
                if peak_at > 0.75 {
                    HPos::Right
                } else {
                    HPos::Center
                },
                VPos::Bottom,
            ),
        });
    }
    // With losses the curve comes down to the end point from above, so its label goes
    // below; without, the curve climbs to it from below, so its label goes above.
    marks.push(Mark {
        at: (1.0, 1.0),
        text: if losses {
            "all customers: 100%".into()
        } else {
            "peak, all customers: 100%".into()
        },
        place: (HPos::Right, if losses { VPos::Top } else { VPos::Bottom }),
    });
    let svg = charts::whale_curve(curve, &marks)?;
    let rest = if losses {
        format!(
            "profit peaks at {} of the total after the first {} of customers, and the rest take {} back",
            percent(peak),
            percent(peak_at),
            percent(peak - 1.0)
        )
    } else if peak_at >= 0.995 {
        "no group of customers loses money, so the curve climbs all the way to 100%".into()
    } else {
        format!(
            "the curve reaches 100% at {} of customers and the rest add no profit",
            percent(peak_at)
        )
    };
    let reading = format!(
        "The top 20% of customers bring {} of profit; {rest}.",
        percent(view.top20_profit_share.unwrap_or(top20))
    );
    let mut p = panel("whale-curve", "Whale curve (20/80/30)", reading, svg);
    p.legend = vec![
        legend(colour::MONEY, "cumulative share of profit", "line"),
        legend(colour::ACCENT, "marked points", "dot"),
    ];
    p.note = format!(
        "The bottom 30% ({} customers) bring {}; without them profit would be {}.",
        thousands(view.bottom30_customers),
        money(view.bottom30_profit, d),
        money(view.profit_without_bottom30, d)
    );
    Ok(p)
}

fn rfm_panel(seg: &Segmentation) -> Result<Panel> {
    let s = &seg.summary;
    let k = usize::from(seg.scores.k);
    let unit = 10f64.powi(s.currency_decimals as i32);
    let mut customers = vec![vec![0u64; k]; k];
    let mut revenue = vec![vec![0i128; k]; k];
    let (mut buyers, mut all_revenue) = (0u64, 0i128);
    for c in 0..s.len() {
        let (r, f) = (usize::from(seg.scores.r[c]), usize::from(seg.scores.f[c]));
        if r == 0 || f == 0 || r > k || f > k {
            continue;
        }
        customers[r - 1][f - 1] += 1;
        revenue[r - 1][f - 1] += i128::from(s.monetary[c]);
        buyers += 1;
        all_revenue += i128::from(s.monetary[c]);
    }
    let mean = |n: u64, total: i128| (n > 0).then(|| total as f64 / n as f64 / unit);
    let mean_revenue: Vec<Vec<Option<f64>>> = (0..k)
        .map(|r| {
            (0..k)
                .map(|f| mean(customers[r][f], revenue[r][f]))
                .collect()
        })
        .collect();
    let best_n = customers[k - 1][k - 1];
    let overall = mean(buyers, all_revenue);
    let reading = match (mean_revenue[k - 1][k - 1], overall) {
        (Some(m), Some(o)) if o > 0.0 => format!(
            "The most recent, most frequent cell (R{k} × F{k}) holds {} customers ({}) who spend {} on average, {:.1} times the mean customer's {}.",
            thousands(best_n),
            percent(share(best_n as f64, buyers as f64)),
            money_f64(m, s.currency_decimals),
            m / o,
            money_f64(o, s.currency_decimals)
        ),
        _ => format!(
            "The most recent, most frequent cell (R{k} × F{k}) holds {} customers.",
            thousands(best_n)
        ),
    };
    let svg = charts::rfm_heat_map(&RfmGrid {
        k,
        customers,
        mean_revenue,
    })?;
    let mut p = panel(
        "rfm-heat-map",
        "RFM heat map (recency × frequency)",
        reading,
        svg,
    );
    p.note = "Cell colour: customers in the cell; label: their mean revenue per customer (n = customers).".into();
    Ok(p)
}

/// "at_risk" → "At risk".
fn stage_title(name: &str) -> String {
    sentence(name.replace('_', " "))
}

fn lifecycle_panel(seg: &Segmentation) -> Result<Panel> {
    let counts = seg.stage_counts();
    let all = seg.summary.len() as u64;
    let stages: Vec<charts::Stage> = counts
        .iter()
        .map(|&(name, n, _)| charts::Stage {
            name: stage_title(name),
            customers: n,
            share: share(n as f64, all as f64),
        })
        .collect();
    let svg = charts::lifecycle_funnel(&stages)?;
    let count = |names: &[&str]| -> u64 {
        counts
            .iter()
            .filter(|(n, _, _)| names.contains(n))
            .map(|c| c.1)
            .sum()
    };
    let current = count(&["new", "active"]);
    let lost = count(&["lost"]);
    let reactivated: u64 = counts.iter().map(|c| c.2).sum();
    let reading = format!(
        "Of {} customers, {} ({}) are new or active and {} ({}) are lost; {} came back after a long silence.",
        thousands(all),
        thousands(current),
        percent(share(current as f64, all as f64)),
        thousands(lost),
        percent(share(lost as f64, all as f64)),
        thousands(reactivated)
    );
    let mut p = panel("lifecycle", "Lifecycle stages", reading, svg);
    let without = all - counts.iter().map(|c| c.1).sum::<u64>();
    p.note = if without > 0 {
        format!(
            "{} without a purchase (only returns) {} no stage.",
            customers(without),
            if without == 1 { "has" } else { "have" }
        )
    } else {
        "Stages by tenure and recency; bar width = customers.".into()
    };
    Ok(p)
}

fn segments_panel(seg: &Segmentation) -> Result<Panel> {
    let sizes = seg.segment_sizes();
    let all = seg.summary.len() as f64;
    let rows: Vec<PairedRow> = sizes
        .iter()
        .map(|s| PairedRow {
            name: s.segment.clone(),
            left: share(s.customers as f64, all),
            right: s.revenue_share.unwrap_or(0.0),
        })
        .collect();
    let svg = charts::segments(&rows, ("share of customers (%)", "share of revenue (%)"))?;
    // Ties go to the segment first in table order.
    let first_max = |key: &dyn Fn(&SegmentSize) -> f64| {
        sizes
            .iter()
            .fold(None, |best: Option<&SegmentSize>, s| match best {
                Some(b) if key(b) >= key(s) => Some(b),
                _ => Some(s),
            })
    };
    let richest = first_max(&|s| s.revenue_share.unwrap_or(0.0));
    let largest = first_max(&|s| s.customers as f64);
    let reading = match (richest, largest) {
        (Some(r), _) if r.revenue_share.is_none() => {
            "Total revenue is zero, so segment revenue shares are undefined.".into()
        }
        (Some(r), Some(l)) if r.segment != l.segment => format!(
            "{} bring the most revenue, {} of customers and {} of revenue; the largest segment, {}, has {} of customers and {} of revenue.",
            r.segment,
            percent(share(r.customers as f64, all)),
            r.revenue_share.map_or("n/a".into(), percent),
            l.segment,
            percent(share(l.customers as f64, all)),
            l.revenue_share.map_or("n/a".into(), percent)
        ),
        (Some(r), _) => format!(
            "{} is the largest segment and brings the most revenue: {} of customers, {} of revenue.",
            r.segment,
            percent(share(r.customers as f64, all)),
            r.revenue_share.map_or("n/a".into(), percent)
        ),
        _ => "There are no segments.".into(),
    };
    let mut p = panel("segments", "Segment sizes and revenue", reading, svg);
    p.wide = true;
    p.legend = vec![
        legend(colour::CUSTOMERS, "share of customers", "bar"),
        legend(colour::MONEY, "share of revenue", "bar"),
    ];
    p.note = "RFM segments from the segment table (first matching rule wins).".into();
    Ok(p)
}

/// Rows of the migration table.
pub(super) const TOP_MOVES: usize = 10;

/// The segments named in the migration, in segment-table order: those of this run's
/// table, then any other (a segment the previous run's table had) by name, then
/// "(no purchase)". Rows and columns share this order, so the stayed cells form the
/// diagonal.
fn migration_labels(seg: &Segmentation, moves: &[Migration]) -> Vec<String> {
    let named: std::collections::BTreeSet<&str> = moves
        .iter()
        .flat_map(|m| [m.from.as_str(), m.to.as_str()])
        .filter(|&l| l != NEW && l != VANISHED)
        .collect();
    let table = seg.rules.names();
    let known = table.iter().copied().filter(|l| named.contains(l));
    let other = named
        .iter()
        .copied()
        .filter(|l| !table.contains(l) && *l != NO_SEGMENT);
    let none = named.contains(NO_SEGMENT).then_some(NO_SEGMENT);
    known.chain(other).chain(none).map(String::from).collect()
}

/// What the migration adds up to: customers in both runs, of whom `moved` changed
/// segment, and customers new in this run or vanished from it.
struct MigrationTotals {
    both: u64,
    moved: u64,
    new: u64,
    vanished: u64,
}

impl MigrationTotals {
    fn of(moves: &[Migration]) -> MigrationTotals {
        let sum = |keep: &dyn Fn(&Migration) -> bool| -> u64 {
            moves.iter().filter(|m| keep(m)).map(|m| m.customers).sum()
        };
        MigrationTotals {
            both: sum(&|m| m.from != NEW && m.to != VANISHED),
            moved: moved_customers(moves),
            new: sum(&|m| m.from == NEW),
            vanished: sum(&|m| m.to == VANISHED),
        }
    }

    /// "15 of the 1,295 customers in both runs (1.2%) changed segment since the
    /// previous run; 3 are new and 4 vanished; the largest move is 7 from Loyal to At risk."
    fn reading(&self, largest: Option<&Migration>) -> String {
        let changed = match (self.both, self.moved) {
            (0, _) => "No customer is in both runs".to_string(),
            (both, 0) => format!(
                "None of the {} in both runs changed segment since the previous run",
                customers(both)
            ),
            (both, moved) => format!(
                "{} of the {} in both runs ({}) changed segment since the previous run",
                thousands(moved),
                customers(both),
                percent(share(moved as f64, both as f64))
            ),
        };
        let arrivals = match (self.new, self.vanished) {
            (0, 0) => "no customer is new or vanished".to_string(),
            (new, vanished) => format!(
                "{} {} new and {} vanished",
                thousands(new),
                if new == 1 { "is" } else { "are" },
                thousands(vanished)
            ),
        };
        match largest {
            Some(m) => format!(
                "{changed}; {arrivals}; the largest move is {} from {} to {}.",
                thousands(m.customers),
                m.from,
                m.to
            ),
            None => format!("{changed}; {arrivals}."),
        }
    }
}

fn migration_panel(seg: &Segmentation, moves: &[Migration]) -> Result<Panel> {
    let d = seg.summary.currency_decimals;
    let labels = migration_labels(seg, moves);
    let rows: Vec<String> = labels.iter().cloned().chain([NEW.into()]).collect();
    let columns: Vec<String> = labels.iter().cloned().chain([VANISHED.into()]).collect();
    let row_of = |l: &str| rows.iter().position(|r| r == l);
    let column_of = |l: &str| columns.iter().position(|c| c == l);
    let mut grid = vec![vec![0u64; columns.len()]; rows.len()];
    for m in moves {
        if let (Some(r), Some(c)) = (row_of(&m.from), column_of(&m.to)) {
            grid[r][c] += m.customers;
        }
    }
    let svg = charts::migration(&MigrationGrid {
        rows: rows.clone(),
        columns: columns.clone(),
        customers: grid.clone(),
        stayed: (0..labels.len()).map(|i| (i, i)).collect(),
    })?;

    // Moves between segments, as `run::moved_customers` counts them: the largest first,
    // ties in table order.
    let mut changed: Vec<&Migration> = moves
        .iter()
        .filter(|m| m.from != m.to && m.from != NEW && m.to != VANISHED)
        .collect();
    changed.sort_by_key(|m| {
        (
            std::cmp::Reverse(m.customers),
            row_of(&m.from),
            column_of(&m.to),
        )
    });
    let totals = MigrationTotals::of(moves);
    let reading = totals.reading(changed.first().copied());
    let previous_size = |from: &str| row_of(from).map_or(0, |r| grid[r].iter().sum::<u64>());
    let top: Vec<&Migration> = changed.iter().copied().take(TOP_MOVES).collect();
    let body = top
        .iter()
        .enumerate()
        .map(|(i, m)| {
            vec![
                cell((i + 1).to_string(), true),
                cell(m.from.as_str(), false),
                cell(m.to.as_str(), false),
                cell(thousands(m.customers), true),
                cell(
                    percent(share(m.customers as f64, previous_size(&m.from) as f64)),
                    true,
                ),
                cell(money_text(m.revenue, d), true),
            ]
        })
        .collect();
    let mut p = panel(
        "migration",
        "Segment migration since the previous run",
        reading,
        svg,
    );
    p.wide = true;
    p.legend = vec![
        legend(
            colour::MONEY,
            "customers from the row's segment to the column's (darker = more)",
            "bar",
        ),
        legend(colour::ACCENT, "stayed in their segment", "outline"),
    ];
    p.table = (!top.is_empty()).then(|| {
        table(
            &[
                ("#", true),
                ("from (previous run)", false),
                ("to (this run)", false),
                ("customers", true),
                ("share of from", true),
                ("revenue", true),
            ],
            body,
        )
    });
    p.note = format!(
        "{NEW}: not in the previous run; {VANISHED}: not in this run. The colour scale tops out at the largest move, so larger stayed cells are all dark. {}",
        if top.is_empty() {
            "No customer moved between segments.".to_string()
        } else {
            format!(
                "The table lists the top {} of {} moves between segments by customers; revenue is this run's revenue of those customers.",
                top.len(),
                thousands(changed.len() as u64)
            )
        }
    );
    Ok(p)
}

fn best_panel(seg: &Segmentation, settings: &AnalysisSettings) -> Result<Panel> {
    let s = &seg.summary;
    let d = s.currency_decimals;
    let best = &seg.best;
    let n = best.count() as u64;
    let all = s.len() as f64;
    let sum = |v: &[i64]| -> i128 {
        v.iter()
            .zip(&best.best)
            .filter(|(_, b)| **b)
            .map(|(&x, _)| i128::from(x))
            .sum()
    };
    let revenue_share = share(sum(&s.monetary) as f64, s.total_monetary() as f64);
    let profit_share = share(sum(&s.profit) as f64, s.total_profit() as f64);
    let svg = charts::share_bars(
        &[
            ("customers".into(), share(n as f64, all), colour::CUSTOMERS),
            ("revenue".into(), revenue_share, colour::MONEY),
            ("profit".into(), profit_share, colour::MONEY),
        ],
        "best customers' share (%)",
    )?;
    let rule = &settings.best;
    let reading = format!(
        "{} ({}) {} the best-customer rule and {} {} of revenue and {} of profit.",
        customers(n),
        percent(share(n as f64, all)),
        if n == 1 { "meets" } else { "meet" },
        if n == 1 { "brings" } else { "bring" },
        percent(revenue_share),
        percent(profit_share)
    );
    let mut top: Vec<usize> = (0..s.len()).filter(|&c| best.best[c]).collect();
    top.sort_by(|&a, &b| best.spend[b].cmp(&best.spend[a]).then(a.cmp(&b)));
    top.truncate(10);
    let rows = top
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            vec![
                cell((i + 1).to_string(), true),
                cell(s.ids.display(c), false),
                cell(money_text(best.spend[c], d), true),
                cell(thousands(u64::from(best.orders[c])), true),
                cell(thousands(u64::from(best.categories[c])), true),
                cell(money_text(s.monetary[c], d), true),
                cell(seg.segment_of(c).unwrap_or(""), false),
                cell(
                    seg.lifecycle.stage[c].map_or(String::new(), |st| stage_title(st.name())),
                    false,
                ),
            ]
        })
        .collect();
    let mut p = panel("best-customers", "Best customers", reading, svg);
    p.layout = "side";
    p.wide = true;
    p.table = (!top.is_empty()).then(|| {
        table(
            &[
                ("#", true),
                ("customer", false),
                ("window spend", true),
                ("orders", true),
                ("categories", true),
                ("revenue", true),
                ("segment", false),
                ("stage", false),
            ],
            rows,
        )
    });
    p.note = format!(
        "Rule: at least {} spent in the {} days before the as-of date, in {} or more categories and {} or more orders. {}",
        money_f64(rule.min_spend, d),
        rule.window_days,
        rule.min_categories,
        rule.min_orders,
        if top.is_empty() {
            "No customer meets it.".to_string()
        } else {
            format!(
                "The table lists the top {} by spend in that window.",
                top.len()
            )
        }
    );
    Ok(p)
}

/// Columns of the cube heat map: the categories with the most revenue.
pub(super) const CUBE_CATEGORIES: usize = 12;
/// Rows (latest cohorts) and columns (periods) of the retention triangle.
pub(super) const TRIANGLE_COHORTS: usize = 18;
pub(super) const TRIANGLE_PERIODS: usize = 18;
/// Rows of the affinity table.
pub(super) const TOP_PAIRS: usize = 10;

/// Where an index sits on the diverging scale: by log(index / 100), so 200/3 and 150
/// are equally far from 100, clamped to that range.
fn index_position(index: f64) -> f64 {
    if index <= 0.0 {
        return 0.0;
    }
    let reach = 1.5f64.ln();
    ((index / 100.0).ln().clamp(-reach, reach) / reach + 1.0) / 2.0
}

fn cube_panel(input: &ReportInput<'_>) -> Result<Panel> {
    let seg = input.segmentation;
    let c = cube::cube(input.transactions, &Groups::of(Dimension::Decile, seg))?;
    // The categories with the most revenue (ties by name), most revenue first.
    let mut shown: Vec<usize> = (0..c.categories.len())
        .filter(|&k| c.categories[k] != cube::NONE_CATEGORY)
        .collect();
    shown.sort_by(|&a, &b| {
        c.category_revenue[b]
            .cmp(&c.category_revenue[a])
            .then(a.cmp(&b))
    });
    shown.truncate(CUBE_CATEGORIES);
    let groups: Vec<usize> = (0..c.groups.len())
        .filter(|&g| c.group_customers[g] > 0)
        .collect();
    let mut index = vec![vec![None::<Option<f64>>; c.categories.len()]; c.groups.len()];
    for r in &c.rows {
        index[r.group][r.category] = Some(r.index);
    }
    let cells = groups
        .iter()
        .map(|&g| {
            shown
                .iter()
                .map(|&k| {
                    Some(match index[g][k] {
                        Some(Some(i)) => (charts::diverging(index_position(i)), format!("{i:.0}")),
                        Some(None) => (colour::PALE, "n/a".to_string()),
                        None => (colour::PALE, "–".to_string()),
                    })
                })
                .collect()
        })
        .collect();
    let svg = charts::matrix(
        "Category index by money decile",
        &Matrix {
            rows: groups.iter().map(|&g| c.groups[g].clone()).collect(),
            columns: shown.iter().map(|&k| c.categories[k].clone()).collect(),
            cells,
            titles: (
                "category (the most revenue first)".into(),
                "money decile (1 = the top 10%)".into(),
            ),
            scale: Scale {
                title: ("index".into(), "(100 = average)".into()),
                colour: charts::diverging,
                ticks: [200.0 / 3.0, 80.0, 100.0, 125.0, 150.0]
                    .iter()
                    .map(|&i| {
                        let text = if i < 70.0 {
                            format!("≤ {i:.0}")
                        } else if i >= 150.0 {
                            format!("≥ {i:.0}")
                        } else {
                            format!("{i:.0}")
                        };
                        (index_position(i), text)
                    })
                    .collect(),
            },
        },
        34,
        60,
    )?;
    let reading = sentence(c.headline()) + ".";
    let mut p = panel(
        "cube",
        "What each decile buys (customer × product)",
        reading,
        svg,
    );
    p.wide = true;
    p.legend = vec![
        legend(colour::MONEY, "over-buys: index above 100", "bar"),
        legend(colour::ACCENT, "under-buys: index below 100", "bar"),
    ];
    p.note = format!(
        "Index = 100 × the category's share of the decile's revenue ÷ its share of all revenue. {} of {} categories shown, by revenue.",
        shown.len(),
        c.categories.len()
    );
    Ok(p)
}

/// "42%", "7.5%": whole percents, one decimal below 10%.
fn short_percent(v: f64) -> String {
    let p = v * 100.0;
    if p >= 9.95 || p == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn cohorts_panel(input: &ReportInput<'_>) -> Result<Panel> {
    let seg = input.segmentation;
    let triangle = cohorts::cohorts(input.transactions, &seg.summary)?;
    let all: Vec<&[CohortRow]> = triangle
        .rows
        .chunk_by(|a, b| a.cohort == b.cohort)
        .collect();
    let shown = &all[all.len().saturating_sub(TRIANGLE_COHORTS)..];
    let periods = shown
        .iter()
        .map(|g| g.len())
        .max()
        .unwrap_or(0)
        .min(TRIANGLE_PERIODS);
    // The scale tops out at the best retention after the cohort month (period 0 is
    // always 100% and would wash the rest out).
    let top = shown
        .iter()
        .flat_map(|g| g.iter().skip(1).take(periods))
        .map(|r| r.retention)
        .fold(0.0, f64::max);
    let scale_max = if top > 0.0 {
        (top * 20.0).ceil() / 20.0
    } else {
        1.0
    };
    let cells = shown
        .iter()
        .map(|g| {
            (0..periods)
                .map(|k| {
                    g.get(k).map(|r| {
                        (
                            charts::sequential(r.retention / scale_max),
                            short_percent(r.retention),
                        )
                    })
                })
                .collect()
        })
        .collect();
    let svg = charts::matrix(
        "Cohort retention",
        &Matrix {
            rows: shown
                .iter()
                .map(|g| format!("{} · {}", g[0].cohort, thousands(g[0].cohort_size)))
                .collect(),
            columns: (0..periods).map(|k| k.to_string()).collect(),
            cells,
            titles: (
                "months after the first purchase".into(),
                "cohort · customers".into(),
            ),
            scale: Scale {
                title: ("customers".into(), "buying again".into()),
                colour: charts::sequential,
                ticks: (0..=4)
                    .map(|i| {
                        let t = f64::from(i) / 4.0;
                        let text = format!(
                            "{}%",
                            charts::number(t * scale_max * 100.0, scale_max * 25.0)
                        );
                        (t, if i == 4 { format!("≥ {text}") } else { text })
                    })
                    .collect(),
            },
        },
        30,
        130,
    )?;
    let reading = sentence(triangle.headline()) + ".";
    let mut p = panel("cohorts", "Cohort retention", reading, svg);
    p.wide = true;
    p.legend = vec![legend(
        colour::MONEY,
        "share of the cohort buying in the month (darker = more)",
        "bar",
    )];
    p.note = format!(
        "A cohort is the month of a customer's first purchase; month 0 is that month. {} of {} cohorts and months 0–{} shown, up to {}.",
        shown.len(),
        all.len(),
        periods.saturating_sub(1),
        triangle.last_month
    );
    Ok(p)
}

fn affinity_panel(input: &ReportInput<'_>) -> Result<Panel> {
    let seg = input.segmentation;
    let aff = affinity::affinity(input.transactions, &seg.summary);
    let top: Vec<&affinity::Pair> = aff.pairs.iter().take(TOP_PAIRS).collect();
    let name = |code: u32| aff.categories[code as usize].as_str();
    let bars: Vec<(String, f64)> = top
        .iter()
        .map(|p| (format!("{} → {}", name(p.a), name(p.b)), p.lift()))
        .collect();
    let svg = charts::reference_bars(
        "Top category pairs by lift",
        &bars,
        1.0,
        "lift (1 = independent)",
    )?;
    let rows = top
        .iter()
        .enumerate()
        .map(|(i, p)| {
            vec![
                cell((i + 1).to_string(), true),
                cell(name(p.a), false),
                cell(name(p.b), false),
                cell(thousands(p.both), true),
                cell(percent(p.support()), true),
                cell(percent(p.confidence()), true),
                cell(format!("{:.2}", p.lift()), true),
            ]
        })
        .collect();
    let reading = sentence(aff.headline()) + ".";
    let mut p = panel("affinity", "Categories bought together", reading, svg);
    p.layout = "side";
    p.wide = true;
    p.legend = vec![
        legend(colour::MONEY, "lift of the pair", "bar"),
        legend(
            colour::ACCENT,
            "lift 1: bought together as often as by chance",
            "dash",
        ),
    ];
    p.table = (!top.is_empty()).then(|| {
        table(
            &[
                ("#", true),
                ("bought A", false),
                ("also bought B", false),
                ("both", true),
                ("support", true),
                ("confidence", true),
                ("lift", true),
            ],
            rows,
        )
    });
    p.note = format!(
        "Over {} with a purchase: support = both ÷ all, confidence = both ÷ bought A, lift = confidence ÷ B's share. The top {} of {} pairs by lift.",
        customers(aff.customers),
        top.len(),
        thousands(aff.pairs.len() as u64)
    );
    Ok(p)
}

/// The next value of the 1-2-5 series: 0.2 → 0.5 → 1 → 2.
fn next_125(x: f64) -> f64 {
    let magnitude = 10f64.powf((x.log10() + 1e-9).floor());
    match (x / magnitude).round() as u32 {
        1 => 2.0 * magnitude,
        2 => 5.0 * magnitude,
        _ => 10.0 * magnitude,
    }
}

/// The largest value of the 1-2-5 series at most `x` (> 0).
fn floor_125(x: f64) -> f64 {
    let magnitude = 10f64.powf((x.log10() + 1e-9).floor());
    let f = x / magnitude;
    magnitude
        * if f >= 5.0 - 1e-9 {
            5.0
        } else if f >= 2.0 - 1e-9 {
            2.0
        } else {
            1.0
        }
}

/// A band edge: "0.2", "50", "2k", "1M".
fn edge_text(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else if v >= 1.0 {
        format!("{}", v.round())
    } else {
        let t = format!("{v:.3}");
        t.trim_end_matches('0').to_string()
    }
}

/// Customers per CLV band on a 1-2-5 scale, for values that span orders of magnitude:
/// "≤ 0" (when any), "< lo", then lo–2lo, 2lo–5lo, … past the largest value. `lo` is
/// chosen from the 5th percentile so the first bands are not nearly empty.
struct Bands {
    names: Vec<String>,
    /// Labels of the band boundaries (one more than the bands).
    edges: Vec<String>,
    counts: Vec<u64>,
    /// Where a value falls, in band units (0 = the left edge of the first band).
    position: Box<dyn Fn(f64) -> f64>,
}

fn clv_bands(sorted: &[f64]) -> Bands {
    let positive: Vec<f64> = sorted.iter().copied().filter(|&v| v > 0.0).collect();
    let zero_band = positive.len() < sorted.len();
    let max = positive.last().copied().unwrap_or(1.0);
    let p05 = positive.get(positive.len() / 20).copied().unwrap_or(1.0);
    let mut lo = floor_125(p05);
    let mut edges = Vec::new();
    loop {
        edges.clear();
        edges.push(lo);
        while edges.last().is_some_and(|&e| e <= max) {
            let next = next_125(edges[edges.len() - 1]);
            edges.push(next);
        }
        if edges.len() <= 11 {
            break;
        }
        lo = next_125(lo);
    }
    let below = positive.iter().any(|&v| v < lo);
    let (mut names, mut boundaries) = (Vec::new(), Vec::new());
    if zero_band {
        names.push("≤ 0".to_string());
        boundaries.push("≤ 0".to_string());
    }
    if below {
        names.push(format!("< {}", edge_text(lo)));
        boundaries.push("0".to_string());
    }
    boundaries.extend(edges.iter().map(|&e| edge_text(e)));
    let first_regular = names.len();
    names.extend(
        edges
            .windows(2)
            .map(|e| format!("{}–{}", edge_text(e[0]), edge_text(e[1]))),
    );
    let edges_at = edges.clone();
    let position = move |v: f64| -> f64 {
        if v <= 0.0 {
            return 0.5;
        }
        if v < edges_at[0] {
            return (first_regular - 1) as f64 + v / edges_at[0];
        }
        let i = edges_at
            .windows(2)
            .position(|e| v < e[1])
            .unwrap_or(edges_at.len().saturating_sub(2));
        let (a, b) = (edges_at[i], edges_at[i + 1]);
        (first_regular + i) as f64 + ((v / a).ln() / (b / a).ln()).clamp(0.0, 1.0)
    };
    let mut counts = vec![0u64; names.len()];
    for &v in sorted {
        let band = position(v).floor().max(0.0) as usize;
        counts[band.min(names.len() - 1)] += 1;
    }
    Bands {
        names,
        edges: boundaries,
        counts,
        position: Box::new(position),
    }
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

fn clv_panel(ltv: &Ltv) -> Result<Panel> {
    let d = ltv.currency_decimals;
    let mut values: Vec<f64> = ltv
        .clv
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let total: f64 = values.iter().sum();
    let middle = median(&values);
    let bands = clv_bands(&values);
    let cols: Vec<Column> = bands
        .names
        .iter()
        .zip(&bands.counts)
        .map(|(name, &count)| Column {
            name: name.clone(),
            value: count as f64,
            label: thousands(count),
            colour: colour::CUSTOMERS,
        })
        .collect();
    let marker = middle.map(|m| ((bands.position)(m), format!("median {}", money_f64(m, d))));
    let horizon = format!("{} {}", ltv.settings.horizon, ltv.settings.period.name());
    let svg = charts::columns(
        "CLV distribution",
        &cols,
        (
            &format!("predicted CLV over the next {horizon} (currency units)"),
            "customers",
        ),
        Some(&bands.edges),
        marker,
    )?;
    let top: f64 = values.iter().rev().take(n.div_ceil(10)).sum();
    let reading = match middle {
        Some(m) if total > 0.0 => format!(
            "The {} valued customers are worth {} over the next {horizon}; the top 10% of them hold {} of it and the median customer is worth {}.",
            thousands(n as u64),
            money_f64(total, d),
            percent(top / total),
            money_f64(m, d)
        ),
        _ => format!(
            "The {} valued customers are worth {} in total over the next {horizon}.",
            thousands(n as u64),
            money_f64(total, d)
        ),
    };
    let mut p = panel("clv", "Customer lifetime value", reading, svg);
    p.legend = vec![
        legend(
            colour::CUSTOMERS,
            "customers per CLV band (bands grow 1-2-5)",
            "bar",
        ),
        legend(colour::ACCENT, "median", "dash"),
    ];
    p.note = model_note(ltv);
    Ok(p)
}

/// "BG/NBD (r = 0.254, …; converged) with Gamma-Gamma spend, discounted at …".
fn model_note(ltv: &Ltv) -> String {
    let fit = ltv.report();
    let params: Vec<String> = fit
        .params
        .iter()
        .map(|(name, v)| format!("{name} = {v:.3}"))
        .collect();
    let converged = if fit.converged {
        "converged"
    } else {
        "NOT converged: read with care"
    };
    let spend = if ltv.spend.is_some() {
        " with Gamma-Gamma spend"
    } else {
        " with each customer's own mean spend"
    };
    let fitted = ltv.settings.calibration_end.map_or(String::new(), |e| {
        format!("; fitted on history up to {}", format_day(e))
    });
    format!(
        "{} ({}; {converged}){spend}, discounted at {:.1}% a year, margin {}{fitted}.",
        fit.model,
        params.join(", "),
        ltv.settings.annual_discount * 100.0,
        percent(ltv.margin),
    )
}

fn holdout_panel(ltv: &Ltv, h: &HoldoutCheck) -> Result<Panel> {
    let period = ltv.settings.period.name();
    let labels: Vec<String> = h.buckets.iter().map(|b| b.label.clone()).collect();
    let actual: Vec<f64> = h.buckets.iter().map(|b| b.actual_mean).collect();
    let predicted: Vec<f64> = h.buckets.iter().map(|b| b.predicted_mean).collect();
    let svg = charts::holdout(
        &labels,
        &actual,
        &predicted,
        "repeat purchases in the calibration period (x)",
        "mean purchases in the holdout",
    )?;
    let off = if h.total_actual > 0 {
        format!(
            " ({:+.1}%)",
            (h.total_predicted / h.total_actual as f64 - 1.0) * 100.0
        )
    } else {
        String::new()
    };
    let reading = format!(
        "Over the {:.0} {period} after {}, the model predicted {} purchases against {} actual{off}, off by {:.2} per customer on average.",
        h.length,
        format_day(h.calibration_end),
        thousands(h.total_predicted.round().max(0.0) as u64),
        thousands(h.total_actual),
        h.mae
    );
    // One column per bucket keeps the table as short as the chart beside it.
    let row = |name: &str, value: &dyn Fn(&Bucket) -> String| {
        std::iter::once(cell(name, false))
            .chain(h.buckets.iter().map(|b| cell(value(b), true)))
            .collect::<Vec<_>>()
    };
    let rows = vec![
        row("customers", &|b| thousands(b.customers)),
        row("actual", &|b| format!("{:.2}", b.actual_mean)),
        row("predicted", &|b| format!("{:.2}", b.predicted_mean)),
    ];
    let mut p = panel("holdout", "Calibration and holdout", reading, svg);
    p.legend = vec![
        legend(colour::MONEY, "actual", "bar"),
        legend(colour::ACCENT, "predicted", "bar"),
    ];
    let head: Vec<(&str, bool)> = std::iter::once(("x", false))
        .chain(h.buckets.iter().map(|b| (b.label.as_str(), true)))
        .collect();
    p.table = Some(table(&head, rows));
    p.note = format!(
        "Mean purchases per customer in the holdout, by repeat purchases in the calibration period; per-customer RMSE {:.2}.",
        h.rmse
    );
    Ok(p)
}

fn notes(input: &ReportInput<'_>) -> Vec<String> {
    let load = input.load;
    let mut notes = vec![load.headline() + "."];
    notes.push(
        "Money is summed exactly in minor units; revenue and profit include returns. Money deciles rank customers by revenue (ties by customer id); purchase deciles cut total revenue into ten equal slices, biggest spenders first.".into(),
    );
    notes.push(format!(
        "RFM scores are NTILE({}) groups over customers with a purchase; the whale curve ranks customers by profit.",
        input.segmentation.scores.k
    ));
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clv_bands_cover_every_value() {
        let mut v: Vec<f64> = (0..1000).map(|i| f64::from(i) / 10.0).collect();
        v.push(10_000.0);
        v.push(-3.0);
        v.sort_by(f64::total_cmp);
        let bands = clv_bands(&v);
        assert_eq!(bands.counts.iter().sum::<u64>(), 1002);
        assert_eq!(bands.names.len(), bands.counts.len());
        assert!(bands.names.len() <= 12, "{:?}", bands.names);
        assert_eq!(bands.names[0], "≤ 0");
        // 0 and -3 are ≤ 0; 10,000 is in the last band.
        assert_eq!(bands.counts[0], 2);
        assert_eq!(*bands.counts.last().unwrap(), 1);
        let one = clv_bands(&[5.0]);
        assert_eq!(one.counts, vec![1]);
        assert_eq!(one.names, vec!["5–10"]);
        assert_eq!(one.edges, vec!["5", "10"]);
        assert_eq!(bands.edges.len(), bands.names.len() + 1);
        assert_eq!(
            (next_125(0.2), next_125(5.0), floor_125(0.37)),
            (0.5, 10.0, 0.2)
        );
        assert_eq!(edge_text(2000.0), "2k");
        assert_eq!(edge_text(0.05), "0.05");
        assert_eq!(median(&[1.0, 2.0, 4.0, 8.0]), Some(3.0));
    }

    #[test]
    fn migration_reading_counts_one_customer_in_the_singular() {
        let totals = MigrationTotals {
            both: 1,
            moved: 1,
            new: 1,
            vanished: 0,
        };
        let largest = Migration {
            from: "Loyal".into(),
            to: "Lost".into(),
            customers: 1,
            revenue: 0,
        };
        assert_eq!(
            totals.reading(Some(&largest)),
            "1 of the 1 customer in both runs (100.0%) changed segment since the previous run; 1 is new and 0 vanished; the largest move is 1 from Loyal to Lost."
        );
    }

    #[test]
    fn sentences_and_money() {
        assert_eq!(sentence("total profit".into()), "Total profit");
        assert_eq!(stage_title("at_risk"), "At risk");
        assert_eq!(money_f64(1234.565, 2), "1,234.57");
        assert_eq!(money_f64(f64::NAN, 2), "n/a");
        assert_eq!(size_text(1_987_554), "1.9 MB");
    }
}
