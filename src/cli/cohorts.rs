//! `custvalue cohorts`: the monthly cohort retention triangle.

use std::path::PathBuf;

use clap::Args;

use custvalue::cohorts::cohorts;
use custvalue::output::{self, percent};
use custvalue::{Error, Result, summarize};

use super::table::Table;
use super::{Ctx, InputArgs, print};

const EXAMPLES: &str = "\
Examples:
  custvalue cohorts --input data-samples/transactions.csv
  custvalue cohorts --input tx.parquet --out cohorts.csv

A customer's cohort is the month of their first purchase. For every cohort and every
month k = 0, 1, ... after it, up to the month of the day before the as-of date: active
customers (a purchase line in that month), retention (active / cohort size) and revenue
(the cohort's lines in that month, returns included). Months where nobody bought have a
row of zeros. Customers without a purchase belong to no cohort; lines dated before a
customer's cohort month are left out.";

/// Period columns and cohort rows shown in the printed triangle (all are in the file).
const SHOWN_PERIODS: usize = 13;
const SHOWN_COHORTS: usize = 36;

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct CohortsArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Where to write the triangle (.csv, .parquet, .json, .jsonl, .arrow).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Print the triangle as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &CohortsArgs) -> Result<i32> {
    let (loaded, _) = args.input.load(ctx, &[&args.out])?;
    let tx = &loaded.transactions;
    let s = summarize(tx)?;
    let triangle = cohorts(tx, &s)?;
    let headline = triangle.headline();
    let mut frame = triangle.to_frame()?;
    if args.json {
        let mut rows = Vec::new();
        output::write_json(&frame, &mut rows, false).map_err(|e| Error::Data(e.to_string()))?;
        print(&format!(
            "{{\"last_month\":{:?},\"headline\":{},\"cohorts\":{}}}\n",
            triangle.last_month,
            serde_json::Value::String(headline.clone()),
            String::from_utf8_lossy(&rows).trim()
        ));
    } else {
        print(&format!(
            "Retention by cohort (share of the cohort buying in month k after the first; up to {}; \
             at most {SHOWN_COHORTS} cohorts and {SHOWN_PERIODS} months shown)\n{}\n{}\n",
            triangle.last_month,
            triangle_table(&triangle, SHOWN_PERIODS, SHOWN_COHORTS).render(),
            headline
        ));
    }
    if let Some(out) = &args.out {
        output::write_frame(&mut frame, out)?;
        ctx.note(&format!(
            "wrote {} rows to {}",
            output::thousands(triangle.rows.len() as u64),
            out.display()
        ));
    }
    Ok(0)
}

/// The triangle for a terminal: one line per cohort (its size, then retention per
/// period), at most `max_periods` period columns and the last `max_cohorts` cohorts.
fn triangle_table(
    triangle: &custvalue::cohorts::Cohorts,
    max_periods: usize,
    max_cohorts: usize,
) -> Table {
    let periods = triangle
        .rows
        .iter()
        .map(|r| r.period as usize + 1)
        .max()
        .unwrap_or(0)
        .min(max_periods);
    let mut header = vec!["cohort".to_string(), "customers".to_string()];
    header.extend((0..periods).map(|k| format!("m{k}")));
    let mut t = Table::new(header);
    let groups: Vec<&[custvalue::cohorts::CohortRow]> = triangle
        .rows
        .chunk_by(|a, b| a.cohort == b.cohort)
        .collect();
    let skip = groups.len().saturating_sub(max_cohorts);
    for g in &groups[skip..] {
        let mut cells = vec![
            g[0].cohort.clone(),
            custvalue::output::thousands(g[0].cohort_size),
        ];
        cells
            .extend((0..periods).map(|k| g.get(k).map_or(String::new(), |r| percent(r.retention))));
        t.row(cells);
    }
    t
}
