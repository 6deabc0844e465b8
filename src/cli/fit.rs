//! `custvalue fit`: fit a model directly on a model summary (x, t_x, T per customer, as
//! the published CDNOW table), or BG/BB on weighted discrete-time patterns.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;

use custvalue::models::{self, BgBb, Customer, FitOptions, GammaGamma, ModelKind, Pattern};
use custvalue::{Error, Result};

use super::ltv::{fit_json, num};
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

    /// lifetimes' L2 penalizer on the model parameters (0 = none).
    #[arg(long, value_name = "C", default_value_t = 0.0)]
    pub penalizer: f64,

    /// Print the fits as JSON on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
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
        let names = ["frequency", "recency", "periods"];
        let count = |k: usize, i: usize| -> Result<u32> {
            let v = c[k][i];
            if v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) {
                Ok(v as u32)
            } else {
                Err(Error::BadRow {
                    file: args.summary.display().to_string(),
                    place: "line",
                    line: i as u64 + 2,
                    column: names[k].to_string(),
                    value: v.to_string(),
                    reason: "not a count".into(),
                    expected: "a whole number >= 0".into(),
                })
            }
        };
        let patterns: Vec<Pattern> = (0..c[0].len())
            .map(|i| {
                Ok(Pattern {
                    x: count(0, i)?,
                    t_x: count(1, i)?,
                    n: count(2, i)?,
                    weight: c[3][i],
                })
            })
            .collect::<Result<_>>()?;
        let fit = {
            let step = ctx.step(format!("fitting {}", args.summary.display()));
            BgBb::fit_observed(&patterns, &step.fit_progress()).map_err(model_error)?
        };
        if args.json {
            print_json(&serde_json::json!({ "purchase_model": fit_json(fit.report(), 0.0) }))?;
        } else {
            print(&fit_table(fit.report()));
        }
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
    let options = FitOptions {
        penalizer: args.penalizer,
    };
    let fit = {
        let step = ctx.step(format!("fitting {}", args.summary.display()));
        models::fit_purchase_model_with(kind, &customers, &options, &step.fit_progress())
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
            GammaGamma::fit_with(&x, &m, &options, &step.fit_progress()).map_err(model_error)?
        };
        if args.json {
            return print_json(&serde_json::json!({
                "purchase_model": fit_json(fit.report(), args.penalizer),
                "spend_model": fit_json(gg.report(), args.penalizer),
                "spend_frequency_correlation": num(models::spend_frequency_correlation(&x, &m)),
            }));
        }
        text.push('\n');
        text.push_str(&fit_table(gg.report()));
        text.push_str(&format!(
            "correlation of frequency and spend: {:.3} over {} customers with x > 0\n",
            models::spend_frequency_correlation(&x, &m),
            x.len()
        ));
    }
    if args.json {
        return print_json(&serde_json::json!({
            "purchase_model": fit_json(fit.report(), args.penalizer),
        }));
    }
    print(&text);
    Ok(0)
}

fn print_json(value: &serde_json::Value) -> Result<i32> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Data(format!("JSON output: {e}")))?;
    text.push('\n');
    print(&text);
    Ok(0)
}
