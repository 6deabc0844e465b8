//! `custvalue rfm`: R, F, M scores, cells and named segments.

use std::path::PathBuf;

use clap::Args;

use super::table::Table;
use custvalue::output::percent;
use custvalue::output::{self, money_text, thousands};
use custvalue::{Result, segment};

use super::{Ctx, InputArgs};

const EXAMPLES: &str = "\
Examples:
  custvalue rfm --input data-samples/transactions.csv --out rfm.csv
  custvalue rfm --input tx.parquet --k 10 --segments my-segments.toml --out rfm.parquet

Scores are NTILE(k) over customers with a purchase: R by recency descending, F by
frequency and M by monetary ascending, ties by customer id; k is the best score.
The default segments (on the 1-5 scale; other k are rescaled as s' = ceil(5s/k)):
  Champions R4-5 F4-5 M4-5 | Loyal R3-5 F4-5 | Can't lose them R1-2 F4-5 M4-5
  At risk R1-2 F3-5 | Potential loyalist R4-5 F2-3 | New R5 F1 | Promising R4 F1
  Need attention R3 F2-3 | About to sleep R3 F1 | Hibernating R2 F1-2 | Lost R1 F1-2
A segment table of your own (first match wins):
  scale = 5
  [[segment]]
  name = \"VIP\"
  r = [4, 5]
  f = [4, 5]
  m = [3, 5]   # optional";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct RfmArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Score groups: 3, 4, 5 or 10 [default: 5, or [rfm] k].
    #[arg(long, value_name = "K")]
    pub k: Option<u8>,

    /// Segment rules (TOML) replacing the default table.
    #[arg(long, value_name = "FILE")]
    pub segments: Option<PathBuf>,

    /// Where to write per-customer scores (.csv, .json, .jsonl, .parquet, .arrow).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: &RfmArgs) -> Result<i32> {
    if let Some(k) = args.k {
        custvalue::rfm::check_k(k)?;
    }
    if let Some(path) = &args.segments {
        custvalue::rfm::SegmentRules::read(path)?;
    }
    let (loaded, mut settings) = args.input.load(ctx, &[&args.out])?;
    if let Some(k) = args.k {
        settings.rfm.k = k;
    }
    if let Some(s) = &args.segments {
        settings.rfm.segments = Some(s.clone());
    }
    let seg = segment(&loaded.transactions, &settings)?;
    let d = seg.summary.currency_decimals;
    let mut table = Table::new(["segment", "customers", "revenue", "share"]);
    for row in seg.segment_sizes() {
        table.row([
            row.segment,
            thousands(row.customers),
            money_text(row.revenue, d),
            row.revenue_share.map_or("n/a".into(), percent),
        ]);
    }
    ctx.show(&table.render());
    if let Some(out) = &args.out {
        let mut frame = seg.rfm_frame()?;
        output::write_frame(&mut frame, out)?;
        ctx.note(&format!(
            "wrote {} customers to {}",
            thousands(frame.height() as u64),
            out.display()
        ));
    }
    Ok(0)
}
