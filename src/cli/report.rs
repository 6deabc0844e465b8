//! `custvalue report`: the self-contained HTML report.

use std::path::PathBuf;

use clap::Args;

use custvalue::ltv::{LtvSettings, value};
use custvalue::models::ModelKind;
use custvalue::report::{self, DEFAULT_TITLE, ReportInput};
use custvalue::{Result, segment};

use super::{Ctx, InputArgs};

const EXAMPLES: &str = "\
Examples:
  custvalue report --input data-samples/transactions.csv --out report.html
  custvalue report --input tx.parquet --out report.html --model bgnbd --calibration-end 2024-06-30

One HTML file that opens anywhere, also from a mail attachment: no network, no scripts,
charts as inline SVG. It shows the headline figures, money and purchase deciles, the whale
curve (20/80/30), the RFM heat map, segments, lifecycle stages and best customers, what
each money decile buys (index by category), the cohort retention triangle and the
categories bought together, each with a sentence that reads the chart. With --model it
adds the distribution of predicted CLV (next 365 days), and with --calibration-end the
model's predictions against the holdout.";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct ReportArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Where to write the report (.html).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,

    /// Add lifetime value with this purchase model: bgnbd, paretonbd or mbgnbd.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<ModelKind>,

    /// Fit the model on history up to this date (YYYY-MM-DD) and chart its predictions
    /// against the rest.
    #[arg(long, value_name = "DATE", requires = "model")]
    pub calibration_end: Option<String>,

    /// Page title.
    #[arg(long, default_value = DEFAULT_TITLE)]
    pub title: String,
}

pub fn run(ctx: &Ctx, args: &ReportArgs) -> Result<i32> {
    let model = args.model;
    let calibration_end = args
        .calibration_end
        .as_deref()
        .map(custvalue::load::parse_as_of)
        .transpose()?;
    report::check_output(&args.out, &args.input.options()?.inputs)?;
    let (loaded, settings) = args.input.load(ctx, &[])?;
    let seg = segment(&loaded.transactions, &settings)?;
    let ltv = model
        .map(|model| {
            let step = ctx.step(format!("fitting {model}"));
            value(
                &loaded.transactions,
                &LtvSettings {
                    model,
                    calibration_end,
                    progress: step.fit_progress(),
                    ..LtvSettings::default()
                },
            )
        })
        .transpose()?;
    let html = report::render(&ReportInput {
        title: &args.title,
        load: &loaded.report,
        settings: &settings,
        segmentation: &seg,
        transactions: &loaded.transactions,
        ltv: ltv.as_ref(),
        migration: None,
    })?;
    custvalue::output::write_bytes(&args.out, html.as_bytes())?;
    ctx.note(&format!("wrote the report to {}", args.out.display()));
    Ok(0)
}
