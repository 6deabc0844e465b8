//! `custvalue fit`: fit a model directly on a model summary (x, t_x, T per customer, as
//! the published CDNOW table), or BG/BB on weighted discrete-time patterns.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;

use custvalue::models::{self, BgBb, Customer, GammaGamma, ModelKind, Pattern};
use custvalue::{Error, Result};

use super::{Ctx, fit_table, print};

const EXAMPLES: &str = "\
Examples:
  custvalue fit --summary tests/fixtures/cdnow_summary.csv --model bgnbd
  custvalue fit --summary tests/fixtures/cdnow_summary.csv --model paretonbd --spend-col zbar
  custvalue fit --summary tests/fixtures/donations.csv --model bgbb

The summary is a CSV with a header. Continuous-time models (bgnbd, paretonbd, mbgnbd) read
columns x, t_x and T (any one time unit); with --spend-col the Gamma-Gamma spend model is
fitted too on customers with x > 0. bgbb reads frequency, recency, periods and weights
(one row per pattern, as in Fader, Hardie & Shang 2010).";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct FitArgs {
    /// The model summary CSV.
    #[arg(long, value_name = "FILE")]
    pub summary: PathBuf,

    /// bgnbd, paretonbd, mbgnbd or bgbb.
    #[arg(long, default_value = "bgnbd")]
    pub model: String,

    /// Column with each customer's mean spend per repeat purchase (fits Gamma-Gamma).
    #[arg(long, value_name = "NAME")]
    pub spend_col: Option<String>,
}

/// The CSV as columns of numbers, named by the header; errors name file, line and column.
fn read_columns(path: &PathBuf, wanted: &[&str]) -> Result<Vec<Vec<f64>>> {
    let file = path.display().to_string();
    let bad = |e: csv::Error| Error::input(file.clone(), format!("unreadable CSV: {e}"));
    let mut reader = csv::Reader::from_path(path).map_err(bad)?;
    let headers = reader.headers().map_err(bad)?.clone();
    let index: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    let positions = wanted
        .iter()
        .map(|w| {
            index.get(w).copied().ok_or_else(|| {
                Error::input(
                    file.clone(),
                    format!(
                        "no column '{w}'; the file has columns: {}",
                        headers
                            .iter()
                            .map(|h| format!("'{h}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut columns = vec![Vec::new(); wanted.len()];
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(bad)?;
        for (k, &p) in positions.iter().enumerate() {
            let text = record.get(p).unwrap_or("");
            let value: f64 = text
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| Error::BadRow {
                    file: file.clone(),
                    place: "line",
                    line: row as u64 + 2,
                    column: wanted[k].to_string(),
                    value: text.to_string(),
                    reason: "not a number".into(),
                    expected: "a finite number".into(),
                })?;
            columns[k].push(value);
        }
    }
    Ok(columns)
}

pub fn run(ctx: &Ctx, args: &FitArgs) -> Result<i32> {
    let model_error =
        |e: models::ModelError| Error::Data(format!("the model cannot be fitted: {e}"));
    if args.model == "bgbb" {
        let c = read_columns(
            &args.summary,
            &["frequency", "recency", "periods", "weights"],
        )?;
        let patterns: Vec<Pattern> = (0..c[0].len())
            .map(|i| Pattern {
                x: c[0][i] as u32,
                t_x: c[1][i] as u32,
                n: c[2][i] as u32,
                weight: c[3][i],
            })
            .collect();
        let fit = {
            let step = ctx.step(format!("fitting {}", args.summary.display()));
            BgBb::fit_observed(&patterns, &step.fit_progress()).map_err(model_error)?
        };
        print(&fit_table(fit.report()));
        return Ok(0);
    }
    let kind: ModelKind = args
        .model
        .parse()
        .map_err(|e: models::ModelError| Error::Usage(e.to_string()))?;
    let mut wanted = vec!["x", "t_x", "T"];
    if let Some(s) = &args.spend_col {
        wanted.push(s);
    }
    let c = read_columns(&args.summary, &wanted)?;
    let customers: Vec<Customer> = (0..c[0].len())
        .map(|i| Customer {
            x: c[0][i],
            t_x: c[1][i],
            t: c[2][i],
        })
        .collect();
    let fit = {
        let step = ctx.step(format!("fitting {}", args.summary.display()));
        models::fit_purchase_model_observed(kind, &customers, &step.fit_progress())
            .map_err(model_error)?
    };
    let mut text = fit_table(fit.report());
    if args.spend_col.is_some() {
        let (x, m): (Vec<f64>, Vec<f64>) = (0..c[0].len())
            .filter(|&i| c[0][i] > 0.0 && c[3][i] > 0.0)
            .map(|i| (c[0][i], c[3][i]))
            .unzip();
        let gg = {
            let step = ctx.step(format!("fitting {}", args.summary.display()));
            GammaGamma::fit_observed(&x, &m, &step.fit_progress()).map_err(model_error)?
        };
        text.push('\n');
        text.push_str(&fit_table(gg.report()));
        text.push_str(&format!(
            "correlation of frequency and spend: {:.3} over {} customers with x > 0\n",
            models::spend_frequency_correlation(&x, &m),
            x.len()
        ));
    }
    print(&text);
    Ok(0)
}
