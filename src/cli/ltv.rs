//! `custvalue ltv`: lifetime value with probabilistic models, and the
//! calibration/holdout check.

use std::path::PathBuf;

use clap::Args;

use super::table::Table;
use custvalue::ltv::{Ltv, LtvSettings, value, value_summary};
use custvalue::model_summary::{Period, SummaryColumns, read_summary};
use custvalue::models::{FitReport, ModelKind};
use custvalue::output::{self, thousands};
use custvalue::{Error, Result};

use super::{Ctx, InputArgs, print};

const EXAMPLES: &str = "\
Examples:
  custvalue ltv --input data-samples/transactions.csv --out ltv.csv
  custvalue ltv --input data-samples/cdnow.csv --time-col date --period W \\
      --model paretonbd --calibration-end 1997-09-30 --out cdnow-ltv.csv
  custvalue ltv --input tx.parquet --model mbgnbd --horizon 730 --discount 0.08 --clv-margin 0.3

Models (maximum likelihood, parameters named as in the papers):
  bgnbd      BG/NBD, Fader, Hardie & Lee (2005)            r, alpha, a, b
  paretonbd  Pareto/NBD, Schmittlein, Morrison & Colombo (1987)  r, alpha, s, beta
  mbgnbd     MBG/NBD, Batislam, Denizel & Filiztekin (2007)  r, alpha, a, b
  spend      Gamma-Gamma, Fader & Hardie (2013)            p, q, gamma
  custvalue ltv --summary summary.csv --time-unit W --horizon 52 --json

With --summary the models are fitted on a model summary (CSV or Parquet, one customer
per row) instead of transactions. Columns are found by lifetimes' names (frequency,
recency, T, monetary_value; frequency_cal, ..., frequency_holdout, monetary_value_holdout,
duration_holdout) or the papers' (x, t_x, T, zbar or m_x, x_holdout, m_holdout), or named
with --frequency-col, --recency-col, --age-col, --spend-col, --id-col and the holdout
flags; --time-unit says what unit T and t_x are in (D or W).

Per customer: x (repeat purchase periods), t_x, T, m_x (mean spend per repeat period),
P(alive), expected purchases in the horizon, expected spend per purchase, and CLV = the
discounted sum of expected margin over the horizon. With --calibration-end the models are
fitted on the history before that date and checked against the rest: predicted against
actual purchases per calibration frequency (0..7+), totals, MAE and RMSE, and spend.";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct LtvArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// A model summary (CSV or Parquet) to fit and score instead of transactions.
    #[arg(long, value_name = "FILE", conflicts_with = "calibration_end")]
    pub summary: Option<PathBuf>,

    /// Summary column of customer ids [default: customer_id, ID, id, ...; else row numbers].
    #[arg(long, value_name = "NAME", help_heading = "Summary columns")]
    pub id_col: Option<String>,
    /// Summary column of repeat purchases x [default: frequency, frequency_cal or x].
    #[arg(long, value_name = "NAME", help_heading = "Summary columns")]
    pub frequency_col: Option<String>,
    /// Summary column of recency t_x [default: recency, recency_cal or t_x].
    #[arg(long, value_name = "NAME", help_heading = "Summary columns")]
    pub recency_col: Option<String>,
    /// Summary column of age T [default: T or T_cal].
    #[arg(long, value_name = "NAME", help_heading = "Summary columns")]
    pub age_col: Option<String>,
    /// Summary column of mean spend per repeat purchase [default: monetary_value, zbar, m_x].
    #[arg(long, value_name = "NAME", help_heading = "Summary columns")]
    pub spend_col: Option<String>,
    /// Summary column of holdout purchases [default: frequency_holdout or x_holdout].
    #[arg(long, value_name = "NAME", help_heading = "Summary columns")]
    pub holdout_frequency_col: Option<String>,
    /// Summary column of holdout mean spend [default: monetary_value_holdout or m_holdout].
    #[arg(long, value_name = "NAME", help_heading = "Summary columns")]
    pub holdout_spend_col: Option<String>,
    /// Summary column of the holdout length in T's unit [default: duration_holdout].
    #[arg(long, value_name = "NAME", help_heading = "Summary columns")]
    pub holdout_length_col: Option<String>,
    /// Holdout length in T's unit, for summaries without a length column.
    #[arg(long, value_name = "N", help_heading = "Summary columns")]
    pub holdout_length: Option<f64>,

    /// lifetimes' L2 penalizer on the model parameters (0 = none).
    #[arg(long, value_name = "C", default_value_t = 0.0)]
    pub penalizer: f64,

    /// Print the fits, totals and holdout check as JSON on stdout instead of tables.
    #[arg(long)]
    pub json: bool,

    /// Also report P(X(horizon) = n), n = 0..N, for a newly acquired customer.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub new_customer_counts: u32,

    /// Purchase model: bgnbd, paretonbd or mbgnbd.
    #[arg(long, default_value = "bgnbd")]
    pub model: String,

    /// Spend model: gammagamma, or none (each customer's own mean spend per period).
    #[arg(long, default_value = "gammagamma")]
    pub spend: String,

    /// Time unit of the model (and of a summary's T and t_x): D (days) or W (weeks).
    #[arg(long, visible_alias = "time-unit", default_value = "D")]
    pub period: String,

    /// Prediction horizon: periods, or with a unit: 365d, 52w, 1y [default: one year].
    #[arg(long, value_name = "N")]
    pub horizon: Option<String>,

    /// Horizon of the expected-purchases column when it differs from the CLV horizon
    /// (periods, or 39w, 273d, 1y).
    #[arg(long, value_name = "N")]
    pub purchases_horizon: Option<String>,

    /// Annual discount rate for CLV.
    #[arg(long, value_name = "RATE", default_value_t = 0.10)]
    pub discount: f64,

    /// Margin on spend for CLV [default: total profit / total revenue of the data].
    #[arg(long, value_name = "RATIO")]
    pub clv_margin: Option<f64>,

    /// Fit on history up to and including this date (YYYY-MM-DD); check predictions after it.
    #[arg(long, value_name = "DATE")]
    pub calibration_end: Option<String>,

    /// Where to write per-customer values (.csv, .json, .jsonl, .parquet, .arrow).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub(crate) fn fit_table(r: &FitReport) -> String {
    let mut t = Table::new(["parameter", "estimate", "std. error"]);
    for (i, (name, v)) in r.params.iter().enumerate() {
        let se = r.std_errors.get(i).copied().unwrap_or(f64::NAN);
        t.row([
            name.to_string(),
            format!("{v:.4}"),
            if se.is_finite() {
                format!("{se:.4}")
            } else {
                "n/a".into()
            },
        ]);
    }
    let mut text = format!(
        "{} (log-likelihood {:.2}, {} iterations, {} starts, {})\n{}",
        r.model,
        r.log_likelihood,
        r.iterations,
        r.starts,
        if r.converged {
            "converged"
        } else if r.boundary.is_some() {
            "at the boundary"
        } else {
            "NOT converged: treat with care"
        },
        t.render()
    );
    if let Some(b) = &r.boundary {
        text.push_str(b);
        text.push('\n');
    }
    text
}

/// A number for JSON: null when not finite.
pub(crate) fn num(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::Value::Null
    }
}

/// A fit as JSON: model, parameters and standard errors by name, log-likelihood,
/// iterations, starts, convergence, and the boundary (null, or the sentence).
pub(crate) fn fit_json(r: &FitReport, penalizer: f64) -> serde_json::Value {
    let named = |values: &mut dyn Iterator<Item = (&str, f64)>| {
        serde_json::Value::Object(values.map(|(n, v)| (n.to_string(), num(v))).collect())
    };
    serde_json::json!({
        "model": r.model,
        "params": named(&mut r.params.iter().map(|(n, v)| (*n, *v))),
        "std_errors": named(&mut r.params.iter().zip(&r.std_errors).map(|((n, _), s)| (*n, *s))),
        "log_likelihood": num(r.log_likelihood),
        "iterations": r.iterations,
        "starts": r.starts,
        "converged": r.converged,
        "at_boundary": r.boundary.is_some(),
        "boundary": r.boundary,
        "penalizer": penalizer,
    })
}

/// The run as JSON (see `--json`).
fn ltv_json(ltv: &Ltv, args: &LtvArgs, source: &str) -> serde_json::Value {
    let valued = ltv.clv.iter().flatten().count();
    let sum = |v: &[Option<f64>]| v.iter().flatten().sum::<f64>();
    let horizon = f64::from(ltv.settings.horizon);
    let new_customer: Vec<serde_json::Value> = (0..=args.new_customer_counts)
        .map(|n| num(ltv.purchase.probability_of_purchases(n, horizon)))
        .collect();
    let holdout = ltv.holdout.as_ref().map(|h| {
        serde_json::json!({
            "calibration_end": ltv.settings.calibration_end.map(custvalue::time::format_day),
            "length": num(h.length),
            "total_predicted": num(h.total_predicted),
            "total_actual": h.total_actual,
            "mae": num(h.mae),
            "rmse": num(h.rmse),
            "buckets": h.buckets.iter().map(|b| serde_json::json!({
                "x": b.label, "customers": b.customers,
                "predicted_mean": num(b.predicted_mean), "actual_mean": num(b.actual_mean),
            })).collect::<Vec<_>>(),
            "spend": h.spend.as_ref().map(|s| serde_json::json!({
                "customers": s.customers, "predicted_mean": num(s.predicted_mean),
                "actual_mean": num(s.actual_mean), "mae": num(s.mae), "rmse": num(s.rmse),
            })),
        })
    });
    serde_json::json!({
        "source": source,
        "purchase_model": fit_json(ltv.report(), ltv.settings.penalizer),
        "spend_model": ltv.spend.as_ref().map(|g| fit_json(g.report(), ltv.settings.penalizer)),
        "spend_frequency_correlation": ltv.spend_correlation.map(num),
        "spend_excluded": ltv.spend_excluded,
        "time_unit": ltv.settings.period.name(),
        "horizon": ltv.settings.horizon,
        "purchases_horizon": ltv.settings.purchases_horizon.unwrap_or(ltv.settings.horizon),
        "annual_discount": ltv.settings.annual_discount,
        "margin": num(ltv.margin),
        "customers": ltv.ids.len(),
        "valued": valued,
        "totals": {
            "p_alive": num(sum(&ltv.p_alive)),
            "expected_purchases": num(sum(&ltv.expected_purchases)),
            "clv": num(ltv.total_clv()),
            "mean_p_alive": num(sum(&ltv.p_alive) / valued.max(1) as f64),
        },
        "new_customer": {
            "expected_purchases": num(ltv.purchase.expected_purchases_new(horizon)),
            "p_purchases": new_customer,
        },
        "holdout": holdout,
    })
}

pub fn run(ctx: &Ctx, args: &LtvArgs) -> Result<i32> {
    let model: ModelKind = args
        .model
        .parse()
        .map_err(|e: custvalue::models::ModelError| Error::Usage(e.to_string()))?;
    let period: Period = args.period.parse().map_err(Error::Usage)?;
    let gamma_gamma = match args.spend.as_str() {
        "gammagamma" | "gg" => true,
        "none" => false,
        other => {
            return Err(Error::Usage(format!(
                "spend model must be gammagamma or none, not {other:?}"
            )));
        }
    };
    let calibration_end = args
        .calibration_end
        .as_deref()
        .map(custvalue::load::parse_as_of)
        .transpose()?;
    let mut settings = LtvSettings {
        model,
        gamma_gamma,
        period,
        horizon: match &args.horizon {
            Some(h) => period.horizon(h)?,
            None => match period {
                Period::Day => 365,
                Period::Week => 52,
            },
        },
        annual_discount: args.discount,
        margin: args.clv_margin,
        calibration_end,
        progress: Default::default(),
        penalizer: args.penalizer,
        purchases_horizon: args
            .purchases_horizon
            .as_deref()
            .map(|h| period.horizon(h))
            .transpose()?,
    };
    let (ltv, source) = match &args.summary {
        Some(path) => {
            if !args.input.input.is_empty() {
                return Err(Error::Usage(
                    "give either --summary or --input, not both".into(),
                ));
            }
            let columns = SummaryColumns {
                id: args.id_col.clone(),
                x: args.frequency_col.clone(),
                t_x: args.recency_col.clone(),
                t: args.age_col.clone(),
                spend: args.spend_col.clone(),
                x_holdout: args.holdout_frequency_col.clone(),
                spend_holdout: args.holdout_spend_col.clone(),
                holdout_length: args.holdout_length_col.clone(),
            };
            let summary = read_summary(path, &columns, args.holdout_length)?;
            if settings.gamma_gamma && summary.columns_used[3].is_empty() {
                return Err(Error::Usage(format!(
                    "{}: no spend column (monetary_value, zbar or m_x) for the Gamma-Gamma model; name one with --spend-col or use --spend none",
                    path.display()
                )));
            }
            let step = ctx.step(format!("fitting {} and valuing customers", settings.model));
            settings.progress = step.fit_progress();
            (
                value_summary(&summary, &settings)?,
                path.display().to_string(),
            )
        }
        None => {
            let (loaded, _) = args.input.load(ctx, &[&args.out])?;
            let step = ctx.step(format!("fitting {} and valuing customers", settings.model));
            settings.progress = step.fit_progress();
            (
                value(&loaded.transactions, &settings)?,
                args.input.input.join(", "),
            )
        }
    };
    if args.json {
        let mut text = serde_json::to_string_pretty(&ltv_json(&ltv, args, &source))
            .map_err(|e| Error::Data(format!("JSON output: {e}")))?;
        text.push('\n');
        print(&text);
        return write_output(ctx, args, &ltv);
    }
    let mut text = fit_table(ltv.report());
    if let Some(gg) = &ltv.spend {
        text.push('\n');
        text.push_str(&fit_table(gg.report()));
        text.push_str(&format!(
            "correlation of frequency and spend: {}{}\n",
            ltv.spend_correlation
                .map_or("n/a".into(), |r| format!("{r:.3}")),
            match ltv.spend_correlation {
                Some(r) if r.abs() > 0.3 =>
                    " (strong: Gamma-Gamma assumes independence; read spend with care)",
                _ => " (weak, as Gamma-Gamma assumes)",
            }
        ));
        if ltv.spend_excluded > 0 {
            text.push_str(&format!(
                "{} repeat customers with net spend <= 0 left out of the spend model\n",
                thousands(ltv.spend_excluded)
            ));
        }
    }
    let valued = ltv.clv.iter().flatten().count();
    let mean_alive = ltv.p_alive.iter().flatten().sum::<f64>() / valued.max(1) as f64;
    text.push_str(&format!(
        "\n{} customers valued over {} {} at {:.1}% a year, margin {:.1}%: total CLV {:.2}, mean P(alive) {:.3}\n",
        thousands(valued as u64),
        settings.horizon,
        period.name(),
        settings.annual_discount * 100.0,
        ltv.margin * 100.0,
        ltv.total_clv(),
        mean_alive
    ));
    if let Some(h) = &ltv.holdout {
        let mut t = Table::new(["calibration x", "customers", "predicted", "actual"]);
        for b in &h.buckets {
            t.row([
                b.label.clone(),
                thousands(b.customers),
                format!("{:.3}", b.predicted_mean),
                format!("{:.3}", b.actual_mean),
            ]);
        }
        text.push_str(&format!(
            "\nHoldout {} ({:.1} {}): mean purchases per customer\n{}total predicted {:.1}, actual {}; per customer MAE {:.3}, RMSE {:.3}\n",
            match ltv.settings.calibration_end {
                Some(day) => format!("from {}", custvalue::time::format_day(day)),
                None => "from the summary's holdout columns".to_string(),
            },
            h.length,
            period.name(),
            t.render(),
            h.total_predicted,
            thousands(h.total_actual),
            h.mae,
            h.rmse
        ));
        if let Some(s) = &h.spend {
            text.push_str(&format!(
                "spend per purchase ({} customers buying in both periods): predicted mean {:.2}, actual mean {:.2}, MAE {:.2}, RMSE {:.2}\n",
                thousands(s.customers),
                s.predicted_mean,
                s.actual_mean,
                s.mae,
                s.rmse
            ));
        }
    }
    let horizon = f64::from(settings.horizon);
    text.push_str(&format!(
        "a new customer: {:.3} expected purchases in {} {}; P(exactly n) for n = 0..{}: {}\n",
        ltv.purchase.expected_purchases_new(horizon),
        settings.horizon,
        period.name(),
        args.new_customer_counts,
        (0..=args.new_customer_counts)
            .map(|n| format!("{:.3}", ltv.purchase.probability_of_purchases(n, horizon)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    print(&text);
    write_output(ctx, args, &ltv)
}

fn write_output(ctx: &Ctx, args: &LtvArgs, ltv: &Ltv) -> Result<i32> {
    if let Some(out) = &args.out {
        output::write_frame(&mut ltv.to_frame()?, out)?;
        ctx.note(&format!(
            "wrote {} customers to {}",
            thousands(ltv.ids.len() as u64),
            out.display()
        ));
    }
    Ok(0)
}
