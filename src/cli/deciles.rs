//! `custvalue deciles`: money deciles and purchase deciles.

use std::path::PathBuf;

use clap::Args;

use super::table::Table;
use custvalue::deciles::{self, DecileBy};
use custvalue::output::percent;
use custvalue::output::{self, money_text, thousands};
use custvalue::{Error, Result, summarize};

use super::{Ctx, InputArgs, print};

const EXAMPLES: &str = "\
Examples:
  custvalue deciles --input data-samples/transactions.csv
  custvalue deciles --input tx.parquet --by profit --out money-deciles.csv --purchase-out purchase-deciles.csv

Money deciles: customers ranked by revenue (or profit) descending, ties by customer id,
in ten NTILE groups; decile 1 is the top. Purchase deciles: total revenue cut into ten
equal slices, and how many customers make each (customers with revenue <= 0 on their
own row).";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct DecilesArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Rank customers by revenue or profit [default: revenue, or [deciles] by].
    #[arg(long, value_name = "WHAT")]
    pub by: Option<DecileBy>,

    /// Where to write the money-decile table.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Where to write the purchase-decile table.
    #[arg(long, value_name = "FILE")]
    pub purchase_out: Option<PathBuf>,

    /// Print the tables as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, args: &DecilesArgs) -> Result<i32> {
    let (loaded, settings) = args.input.load(ctx, &[&args.out, &args.purchase_out])?;
    let by = match args.by {
        Some(b) => b,
        None => settings.decile_by()?,
    };
    let s = summarize(&loaded.transactions)?;
    let d = s.currency_decimals;
    let money = deciles::money_deciles(&s, &deciles::assign(&s, by));
    let purchase = deciles::purchase_deciles(&s);
    let headline = deciles::headline(&money, &purchase, by);
    let mut money_frame = deciles::money_frame(&money, d)?;
    let mut purchase_frame = deciles::purchase_frame(&purchase, d)?;
    if args.json {
        let mut m = Vec::new();
        output::write_json(&money_frame, &mut m, false).map_err(|e| Error::Data(e.to_string()))?;
        let mut p = Vec::new();
        output::write_json(&purchase_frame, &mut p, false)
            .map_err(|e| Error::Data(e.to_string()))?;
        print(&format!(
            "{{\"by\":{:?},\"headline\":{},\"money_deciles\":{},\"purchase_deciles\":{}}}\n",
            if by == DecileBy::Profit {
                "profit"
            } else {
                "revenue"
            },
            serde_json::Value::String(headline.clone()),
            String::from_utf8_lossy(&m).trim(),
            String::from_utf8_lossy(&p).trim()
        ));
    } else {
        let mut t = Table::new([
            "decile",
            "customers",
            "revenue",
            "share",
            "profit",
            "share",
            "cum revenue",
            "cum profit",
            "min",
            "max",
        ]);
        let opt_money = |v: Option<i64>| v.map_or(String::new(), |m| money_text(m, d));
        let opt_pct = |v: Option<f64>| v.map_or("n/a".into(), percent);
        for r in &money {
            t.row([
                r.decile.to_string(),
                thousands(r.customers),
                money_text(r.revenue, d),
                opt_pct(r.revenue_share),
                money_text(r.profit, d),
                opt_pct(r.profit_share),
                opt_pct(r.cum_revenue_share),
                opt_pct(r.cum_profit_share),
                opt_money(r.min_monetary),
                opt_money(r.max_monetary),
            ]);
        }
        let mut p = Table::new([
            "revenue slice",
            "customers",
            "share of customers",
            "revenue",
        ]);
        for r in &purchase {
            p.row([
                r.slice.map_or("monetary <= 0".into(), |k| {
                    format!("{}-{}%", (k - 1) * 10, k * 10)
                }),
                thousands(r.customers),
                percent(r.customer_share),
                money_text(r.revenue, d),
            ]);
        }
        ctx.show(&format!(
            "Money deciles (by {})\n{}\nPurchase deciles\n{}\n{}\n",
            if by == DecileBy::Profit {
                "profit"
            } else {
                "revenue"
            },
            t.render(),
            p.render(),
            headline
        ));
    }
    if let Some(out) = &args.out {
        output::write_frame(&mut money_frame, out)?;
        ctx.note(&format!("wrote the money deciles to {}", out.display()));
    }
    if let Some(out) = &args.purchase_out {
        output::write_frame(&mut purchase_frame, out)?;
        ctx.note(&format!("wrote the purchase deciles to {}", out.display()));
    }
    Ok(0)
}
