//! `custvalue segments`: the per-customer segment file for mailing and CRM systems.

use std::path::PathBuf;

use clap::Args;

use custvalue::output::{self, money_text, thousands};
use custvalue::terminal::{Table, percent};
use custvalue::{Result, segment};

use super::{Ctx, InputArgs};

const EXAMPLES: &str = "\
Examples:
  custvalue segments --input data-samples/transactions.csv --out segments.csv
  custvalue segments --input 'tx/*.parquet' --config nightly.toml --out segments.parquet

One row per customer, in customer-id order: the summary columns, r_score, f_score,
m_score, rfm_cell, rfm_score, segment, decile, best_customer, stage, reactivated
(and p_alive beside the stage with --model bgnbd|paretonbd|mbgnbd).
Thresholds come from the config file's [rfm], [deciles], [best] and [lifecycle] tables:
  [best]       min_spend = 1000.0, min_categories = 4, min_orders = 6, window_days = 365
  [lifecycle]  new_max_tenure = 90, active_max_recency = 180, at_risk_max_recency = 365,
               lapsed_max_recency = 730, reactivation_gap = 365";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct SegmentsArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// RFM score groups: 3, 4, 5 or 10 [default: 5].
    #[arg(long, value_name = "K")]
    pub k: Option<u8>,

    /// Segment rules (TOML) replacing the default table.
    #[arg(long, value_name = "FILE")]
    pub segments: Option<PathBuf>,

    /// Best-customer minimum spend in the window, currency units [default: 1000].
    #[arg(long, value_name = "AMOUNT")]
    pub best_min_spend: Option<f64>,

    /// Fit a lifetime-value model (bgnbd, paretonbd, mbgnbd) and add P(alive) beside the stage.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,

    /// Where to write the segment file (.parquet, .csv, .jsonl, .json, .arrow).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: &SegmentsArgs) -> Result<i32> {
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
    if let Some(m) = args.best_min_spend {
        settings.best.min_spend = m;
    }
    let seg = {
        let _step = ctx.step("scoring customers");
        segment(&loaded.transactions, &settings)?
    };
    let d = seg.summary.currency_decimals;
    let mut sizes = Table::new(["segment", "customers", "revenue", "share"]);
    for row in seg.segment_sizes() {
        sizes.row([
            row.segment,
            thousands(row.customers),
            money_text(row.revenue, d),
            row.revenue_share.map_or("n/a".into(), percent),
        ]);
    }
    let mut stages = Table::new(["stage", "customers", "reactivated"]);
    for (name, n, re) in seg.stage_counts() {
        stages.row([name.to_string(), thousands(n), thousands(re)]);
    }
    ctx.show(&format!(
        "{}\n{}\nbest customers: {} of {}\n",
        sizes.render(),
        stages.render(),
        thousands(seg.best.count() as u64),
        thousands(seg.summary.len() as u64)
    ));
    let p_alive = match &args.model {
        Some(model) => {
            let step = ctx.step(format!("fitting {model}"));
            let settings = custvalue::ltv::LtvSettings {
                model: model.parse().map_err(|e: custvalue::models::ModelError| {
                    custvalue::Error::Usage(e.to_string())
                })?,
                gamma_gamma: false,
                progress: step.fit_progress(),
                ..Default::default()
            };
            Some(custvalue::ltv::value(&loaded.transactions, &settings)?.p_alive)
        }
        None => None,
    };
    if let Some(out) = &args.out {
        let _step = ctx.step(format!("writing {}", out.display()));
        output::write_frame(&mut seg.to_frame_with_p_alive(p_alive.as_deref())?, out)?;
        ctx.note(&format!(
            "wrote {} customers to {}",
            thousands(seg.summary.len() as u64),
            out.display()
        ));
    }
    Ok(0)
}
