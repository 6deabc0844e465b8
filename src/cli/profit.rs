//! `custvalue profit`: the 20/80/30 view, the whale curve and the Gini coefficient.

use std::path::PathBuf;

use clap::Args;

use super::table::Table;
use custvalue::output::percent;
use custvalue::output::{self, money_text, thousands};
use custvalue::profit::profit_view;
use custvalue::{Result, summarize};

use super::{Ctx, InputArgs, print};

const EXAMPLES: &str = "\
Examples:
  custvalue profit --input data-samples/transactions.csv
  custvalue profit --input tx.parquet --margin 0.3 --out whale.csv --json

Customers are ranked by profit descending (ties by customer id). Without a cost column,
profit = amount x --margin. The whale curve has 101 points: the cumulative profit share of
the first ceil(q N / 100) customers, q = 0..100.";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct ProfitArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Where to write the whale curve (101 rows).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Print the figures as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &ProfitArgs) -> Result<i32> {
    let (loaded, _) = args.input.load(ctx, &[&args.out])?;
    let s = summarize(&loaded.transactions)?;
    let d = s.currency_decimals;
    let v = profit_view(&s);
    let money = |m: i128| money_text(m, d);
    if v.top20_profit_share.is_none() {
        eprintln!(
            "warning: total profit is not positive; profit shares and the whale curve are undefined"
        );
    }
    if args.json {
        let json = v.to_json(d);
        print(&format!("{json}\n"));
    } else {
        let mut t = Table::new(["figure", "value"]);
        let opt = |x: Option<f64>| x.map_or("n/a".into(), percent);
        t.row(["customers".to_string(), thousands(v.customers)]);
        t.row(["total profit".to_string(), money(v.total_profit)]);
        t.row([
            format!(
                "top 20% ({} customers) profit",
                thousands(v.top20_customers)
            ),
            money(v.top20_profit),
        ]);
        t.row([
            "top 20% share of profit".to_string(),
            opt(v.top20_profit_share),
        ]);
        t.row([
            format!(
                "bottom 30% ({} customers) profit",
                thousands(v.bottom30_customers)
            ),
            money(v.bottom30_profit),
        ]);
        t.row([
            "profit without the bottom 30%".to_string(),
            money(v.profit_without_bottom30),
        ]);
        t.row(["whale curve peak".to_string(), opt(v.whale_peak)]);
        t.row([
            "reached at customer share".to_string(),
            opt(v.whale_peak_customer_share),
        ]);
        t.row([
            "Gini of monetary".to_string(),
            v.gini.map_or("n/a".into(), |g| format!("{g:.3}")),
        ]);
        ctx.show(&format!("{}\n{}\n", t.render(), v.headline(d)));
    }
    if let Some(out) = &args.out {
        output::write_frame(&mut v.whale_frame()?, out)?;
        ctx.note(&format!("wrote the whale curve to {}", out.display()));
    }
    Ok(0)
}
