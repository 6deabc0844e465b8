//! `custvalue affinity`: category pairs bought by the same customers, for cross-selling.

use std::path::PathBuf;

use clap::Args;

use custvalue::affinity::{affinity, next_category_codes};
use custvalue::output::{self, percent, thousands};
use custvalue::{Error, Result, summarize};

use super::table::Table;
use super::{Ctx, InputArgs, print};

const EXAMPLES: &str = "\
Examples:
  custvalue affinity --input data-samples/transactions.csv
  custvalue affinity --input tx.parquet --out affinity.csv --top 20

Over customers with a purchase (N), a customer bought a category when they have a line
of amount > 0 in it (lines without a category do not count). For every ordered pair
(A, B) bought together: both (customers who bought A and B), support = both / N,
confidence = both / customers of A, lift = confidence / (customers of B / N). Sorted by
lift (compared exactly), then both descending, then A, then B. The output file has every
pair; --top sets how many are printed. A customer's next category (the segment file's
next_category column) is the B of the first pair whose A they bought and B they did not.";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct AffinityArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Where to write every pair (.csv, .parquet, .json, .jsonl, .arrow).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Pairs printed (or in the JSON summary).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,

    /// Print the top pairs as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &AffinityArgs) -> Result<i32> {
    let (loaded, _) = args.input.load(ctx, &[&args.out])?;
    let tx = &loaded.transactions;
    let s = summarize(tx)?;
    let aff = affinity(tx, &s);
    let headline = aff.headline();
    let offers = next_category_codes(tx, &s, &aff.pairs);
    let offered = offers.iter().flatten().count() as u64;
    let offers_line = format!(
        "next category: an offer for {} of {} customers with a purchase",
        thousands(offered),
        thousands(aff.customers)
    );
    if args.json {
        let mut rows = Vec::new();
        output::write_json(&aff.to_frame(Some(args.top))?, &mut rows, false)
            .map_err(|e| Error::Data(e.to_string()))?;
        print(&format!(
            "{{\"customers\":{},\"pairs\":{},\"customers_with_next_category\":{offered},\"headline\":{},\"top\":{}}}\n",
            aff.customers,
            aff.pairs.len(),
            serde_json::Value::String(headline.clone()),
            String::from_utf8_lossy(&rows).trim()
        ));
    } else {
        print(&format!(
            "Top {} of {} category pairs, by lift\n{}\n{}\n{}\n",
            args.top.min(aff.pairs.len()),
            thousands(aff.pairs.len() as u64),
            top_table(&aff, args.top).render(),
            headline,
            offers_line
        ));
    }
    if let Some(out) = &args.out {
        output::write_frame(&mut aff.to_frame(None)?, out)?;
        ctx.note(&format!(
            "wrote {} pairs to {}",
            thousands(aff.pairs.len() as u64),
            out.display()
        ));
    }
    Ok(0)
}

/// The first `top` pairs for a terminal.
fn top_table(aff: &custvalue::affinity::Affinity, top: usize) -> Table {
    let mut t = Table::new([
        "bought A",
        "also bought B",
        "customers",
        "support",
        "confidence",
        "lift",
    ]);
    for p in aff.pairs.iter().take(top) {
        t.row([
            aff.categories[p.a as usize].clone(),
            aff.categories[p.b as usize].clone(),
            custvalue::output::thousands(p.both),
            percent(p.support()),
            percent(p.confidence()),
            format!("{:.2}", p.lift()),
        ]);
    }
    t
}
