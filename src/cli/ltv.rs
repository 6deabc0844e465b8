//! `custvalue ltv`: lifetime value with probabilistic models, and the
//! calibration/holdout check.

use std::path::PathBuf;

use clap::Args;

use custvalue::ltv::{LtvSettings, value};
use custvalue::model_summary::Period;
use custvalue::models::{FitReport, ModelKind};
use custvalue::output::{self, thousands};
use super::table::Table;
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

    /// Purchase model: bgnbd, paretonbd or mbgnbd.
    #[arg(long, default_value = "bgnbd")]
    pub model: String,

    /// Spend model: gammagamma, or none (each customer's own mean spend per period).
    #[arg(long, default_value = "gammagamma")]
    pub spend: String,

    /// Time unit of the model: D (days) or W (weeks).
    #[arg(long, default_value = "D")]
    pub period: String,

    /// Prediction horizon: periods, or with a unit: 365d, 52w, 1y [default: one year].
    #[arg(long, value_name = "N")]
    pub horizon: Option<String>,

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

/// "52w", "365d", "1y" or a bare number of periods → periods of the model.
fn parse_horizon(text: &str, period: Period) -> Result<u32> {
    let bad = || {
        Error::Usage(format!(
            "horizon {text:?}: write a number of periods, or 365d, 52w, 1y"
        ))
    };
    let t = text.trim();
    let (number, unit_days) = match t.char_indices().last() {
        Some((i, 'd')) => (&t[..i], Some(1.0)),
        Some((i, 'w')) => (&t[..i], Some(7.0)),
        Some((i, 'y')) => (&t[..i], Some(365.0)),
        _ => (t, None),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let periods = match unit_days {
        Some(days) => n * days / f64::from(period.days()),
        None => n,
    };
    if !(periods >= 1.0 && periods < 1e6) {
        return Err(bad());
    }
    Ok(periods.round() as u32)
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
    format!(
        "{} (log-likelihood {:.2}, {} iterations, {} starts, {})\n{}",
        r.model,
        r.log_likelihood,
        r.iterations,
        r.starts,
        if r.converged {
            "converged"
        } else {
            "NOT converged: treat with care"
        },
        t.render()
    )
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
    let (loaded, _) = args.input.load(ctx, &[&args.out])?;
    let mut settings = LtvSettings {
        model,
        gamma_gamma,
        period,
        horizon: match &args.horizon {
            Some(h) => parse_horizon(h, period)?,
            None => match period {
                Period::Day => 365,
                Period::Week => 52,
            },
        },
        annual_discount: args.discount,
        margin: args.clv_margin,
        calibration_end,
        progress: Default::default(),
    };
    let ltv = {
        let step = ctx.step(format!("fitting {} and valuing customers", settings.model));
        settings.progress = step.fit_progress();
        value(&loaded.transactions, &settings)?
    };
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
            "\nHoldout from {} ({:.1} {}): mean purchases per customer\n{}total predicted {:.1}, actual {}; per customer MAE {:.3}, RMSE {:.3}\n",
            custvalue::time::format_day(h.calibration_end),
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
    print(&text);
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
