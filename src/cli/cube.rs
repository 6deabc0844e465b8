//! `custvalue cube`: the three-dimensional view — a customer dimension × category with
//! customers, orders, revenue, penetration, share and the marketing index per cell.

use std::path::PathBuf;

use clap::Args;

use custvalue::cube::{self, Dimension, Groups};
use custvalue::lifecycle::lifecycle;
use custvalue::output;
use custvalue::{Error, Result, deciles, rfm, summarize};

use super::table::Table;
use super::{Ctx, InputArgs, print};

const EXAMPLES: &str = "\
Examples:
  custvalue cube --input data-samples/transactions.csv
  custvalue cube --input tx.parquet --by segment --out cube.csv
  custvalue cube --input tx.parquet --by cohort --out cube.parquet --json

One row per (group, category) with a line, by group then category: customers and
orders with a purchase line in the category, revenue (returns included), penetration
(customers / the group's customers), share (of the group's revenue) and index
(100 x share / the category's share of all revenue; above 100 the group over-buys).
Groups: deciles 1..10, segments in the segment table's order, stages new..lost, cohorts
by month. Customers without a purchase have no segment, stage or cohort and are left
out of those views. Lines without a category are in '(none)'. The heat table marks
an index >= 120 with + and <= 80 with -.";

/// Category columns shown in the heat table (all are in the output file).
const HEAT_CATEGORIES: usize = 12;

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct CubeArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// The customer dimension: decile, segment, stage or cohort [default: decile].
    #[arg(long, value_name = "DIMENSION")]
    pub by: Option<Dimension>,

    /// Where to write the cube (.csv, .parquet, .json, .jsonl, .arrow).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Print the cube as JSON on stdout instead of the heat table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &CubeArgs) -> Result<i32> {
    let by = args.by.unwrap_or(Dimension::Decile);
    let (loaded, settings) = args.input.load(ctx, &[&args.out])?;
    let tx = &loaded.transactions;
    let s = summarize(tx)?;
    // Only what the dimension needs.
    let groups = match by {
        Dimension::Decile => Groups::deciles(&deciles::assign(&s, settings.decile_by()?)),
        Dimension::Segment => {
            Groups::segments(&rfm::score(&s, settings.rfm.k)?, &settings.segment_rules()?)
        }
        Dimension::Stage => Groups::stages(&lifecycle(tx, &s, &settings.lifecycle)),
        Dimension::Cohort => Groups::cohorts(&s),
    };
    let c = cube::cube(tx, &groups)?;
    let headline = c.headline();
    let mut frame = c.to_frame()?;
    if args.json {
        let mut rows = Vec::new();
        output::write_json(&frame, &mut rows, false).map_err(|e| Error::Data(e.to_string()))?;
        print(&format!(
            "{{\"by\":{:?},\"headline\":{},\"cube\":{}}}\n",
            by.name(),
            serde_json::Value::String(headline.clone()),
            String::from_utf8_lossy(&rows).trim()
        ));
    } else {
        let shown = c.categories.len().min(HEAT_CATEGORIES);
        let note = if shown < c.categories.len() {
            format!(
                " ({} of {} categories, by revenue; all are in the output file)",
                shown,
                c.categories.len()
            )
        } else {
            String::new()
        };
        print(&format!(
            "Index by {} and category{note}: 100 = average; + over-buys (>= {}), - under-buys (<= {})\n{}\n{}\n",
            by.name(),
            cube::OVER_INDEX,
            cube::UNDER_INDEX,
            heat_table(&c, HEAT_CATEGORIES).render(),
            headline
        ));
    }
    if let Some(out) = &args.out {
        output::write_frame(&mut frame, out)?;
        ctx.note(&format!(
            "wrote {} rows to {}",
            output::thousands(c.rows.len() as u64),
            out.display()
        ));
    }
    Ok(0)
}

/// The heat table for a terminal: groups with customers as rows, categories as
/// columns (the `max_categories` with the largest revenue, in name order), cells the
/// index rounded, marked `+` (over-buys, ≥ 120) or `-` (under-buys, ≤ 80); blank
/// where the group has no line in the category or the index is undefined.
fn heat_table(c: &custvalue::cube::Cube, max_categories: usize) -> Table {
    let shown = c.shown_categories(max_categories);
    let mut header = vec![c.dimension.name().to_string(), "customers".to_string()];
    header.extend(shown.iter().map(|&k| c.categories[k].clone()));
    let mut t = Table::new(header);
    let mut at = 0;
    for g in 0..c.groups.len() {
        if c.group_customers[g] == 0 {
            continue;
        }
        let mut cells = vec![String::new(); shown.len()];
        while at < c.rows.len() && c.rows[at].group == g {
            let row = &c.rows[at];
            if let Ok(col) = shown.binary_search(&row.category)
                && let Some(i) = row.index
            {
                cells[col] = format!("{i:.0}{}", cube::index_mark(row.index));
            }
            at += 1;
        }
        let mut line = vec![
            c.groups[g].clone(),
            custvalue::output::thousands(c.group_customers[g]),
        ];
        line.extend(cells);
        t.row(line);
    }
    t
}
