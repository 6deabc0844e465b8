//! `custvalue summary`: the per-customer summary of JOB.md.

use std::path::PathBuf;

use clap::Args;

use custvalue::output::{self, money_text, thousands};
use custvalue::{Result, summarize};

use super::{Ctx, InputArgs, print};

const EXAMPLES: &str = "\
Examples:
  custvalue summary --input data-samples/transactions.csv --out customers.parquet
  custvalue summary --input data-samples/cdnow.csv --time-col date --out cdnow.csv
  custvalue summary --input 'exports/2024-*.csv.gz' --as-of 2025-01-01 --on-bad-rows skip --out c.jsonl

Columns: customer_id, first_purchase, last_purchase, recency_days, tenure_days, frequency,
monetary, profit, avg_order_value, n_categories (money in currency units, one row per
customer in customer-id order). The output format follows the extension: .csv, .json,
.jsonl, .parquet, .arrow.";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Where to write the summary (.csv, .json, .jsonl, .parquet, .arrow).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: &SummaryArgs) -> Result<i32> {
    let (loaded, _) = args.input.load(ctx, &[&args.out])?;
    let summary = summarize(&loaded.transactions)?;
    let d = summary.currency_decimals;
    let buyers = summary.frequency.iter().filter(|&&f| f > 0).count();
    let revenue = summary.total_monetary();
    let profit = summary.total_profit();
    let mut frame = summary.to_frame()?;
    match &args.out {
        Some(out) => {
            output::write_frame(&mut frame, out)?;
            ctx.note(&format!(
                "wrote {} customers to {}",
                thousands(summary.len() as u64),
                out.display()
            ));
        }
        None => print(&format!("{frame}\n")),
    }
    if !ctx.quiet {
        print(&format!(
            "{} customers ({} with a purchase), revenue {}, profit {}\n",
            thousands(summary.len() as u64),
            thousands(buyers as u64),
            money_text(revenue, d),
            money_text(profit, d),
        ));
    }
    Ok(0)
}
