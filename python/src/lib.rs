//! `custvalue._native`: the Rust side of the Python package. The public functions, their
//! keyword arguments and docstrings live in `custvalue/__init__.py`; this module loads
//! (a path, a glob or a frame), runs one analysis of the library with the GIL released,
//! and hands back polars DataFrames through the Arrow C stream interface.
//!
//! Not for: anything the library does not do already; every number comes from it.

use std::path::PathBuf;

use custvalue::cube::{self, Dimension, Groups};
use custvalue::deciles::{self, DecileBy};
use custvalue::ltv::LtvSettings;
use custvalue::model_summary::Period;
use custvalue::models::{
    self, BgBb, Customer, FitOptions, FitReport, GammaGamma, ModelKind, Pattern,
};
use custvalue::polars::prelude::*;
use custvalue::{AnalysisSettings, Error, LoadOptions, LoadReport};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use serde_json::{Value, json};

mod arrow;
mod options;

use arrow::{ArrowFrame, import_frame};
use options::{Args, load_options};

create_exception!(
    _native,
    CustvalueError,
    PyException,
    "A failure inside custvalue (the command line's exit code 1)."
);
create_exception!(
    _native,
    InputError,
    CustvalueError,
    "Bad input or arguments (the command line's exit code 2): the message names the \
     file or frame, the line or row, the column and the value."
);

/// The library's error as a Python exception, with the library's message.
fn to_py(e: Error) -> PyErr {
    if e.exit_code() == 2 {
        InputError::new_err(e.to_string())
    } else {
        CustvalueError::new_err(e.to_string())
    }
}

fn usage(message: String) -> PyErr {
    to_py(Error::Usage(message))
}

/// Where the lines come from.
enum Input {
    Paths,
    Frame(DataFrame),
}

/// One analysis and its settings, read from the keyword arguments before the GIL is
/// released.
enum Command {
    Summary,
    Rfm,
    Deciles(Option<DecileBy>),
    Profit,
    Segments(Option<ModelKind>),
    /// The segment file, both decile tables and the profit figures from one load (what
    /// `custvalue run` writes).
    Job,
    Cube(Dimension),
    Cohorts,
    Affinity,
    Ltv(Box<LtvSettings>),
    Report {
        out: PathBuf,
        model: Option<ModelKind>,
        calibration_end: Option<i32>,
        title: String,
    },
}

/// What an analysis hands back: frames by name and plain values.
#[derive(Default)]
struct Output {
    frames: Vec<(&'static str, DataFrame)>,
    values: serde_json::Map<String, Value>,
}

impl Output {
    fn frame(mut self, name: &'static str, df: DataFrame) -> Output {
        self.frames.push((name, df));
        self
    }

    fn value(mut self, name: &str, v: Value) -> Output {
        self.values.insert(name.to_string(), v);
        self
    }
}

fn parse<T: std::str::FromStr>(what: &str, text: Option<String>) -> PyResult<Option<T>>
where
    T::Err: std::fmt::Display,
{
    text.map(|t| {
        t.parse::<T>()
            .map_err(|e| usage(format!("{what} {t:?}: {e}")))
    })
    .transpose()
}

fn model_kind(text: Option<String>) -> PyResult<Option<ModelKind>> {
    parse("model", text)
}

/// Reads a command's own arguments and applies the analysis settings among them.
fn command(name: &str, a: &Args, settings: &mut AnalysisSettings) -> PyResult<Command> {
    if let Some(k) = a.u64("k")? {
        let k = u8::try_from(k).unwrap_or(0);
        custvalue::rfm::check_k(k).map_err(to_py)?;
        settings.rfm.k = k;
    }
    if let Some(path) = a.str("segment_rules")? {
        custvalue::rfm::SegmentRules::read(path.as_ref()).map_err(to_py)?;
        settings.rfm.segments = Some(path.into());
    }
    if let Some(m) = a.f64("best_min_spend")? {
        settings.best.min_spend = m;
    }
    Ok(match name {
        "summary" => Command::Summary,
        "rfm" => Command::Rfm,
        "deciles" => Command::Deciles(parse("by", a.str("by")?)?),
        "profit" => Command::Profit,
        "segments" => Command::Segments(model_kind(a.str("model")?)?),
        "job" => Command::Job,
        "cube" => Command::Cube(parse("by", a.str("by")?)?.unwrap_or(Dimension::Decile)),
        "cohorts" => Command::Cohorts,
        "affinity" => Command::Affinity,
        "ltv" => Command::Ltv(Box::new(ltv_settings(a)?)),
        "report" => Command::Report {
            out: a
                .str("out")?
                .ok_or_else(|| usage("report needs out, the HTML file to write".into()))?
                .into(),
            model: model_kind(a.str("model")?)?,
            calibration_end: date(a.str("calibration_end")?)?,
            title: a
                .str("title")?
                .unwrap_or_else(|| custvalue::report::DEFAULT_TITLE.to_string()),
        },
        other => return Err(usage(format!("unknown analysis {other:?}"))),
    })
}

fn date(text: Option<String>) -> PyResult<Option<i32>> {
    text.map(|t| custvalue::load::parse_as_of(&t).map_err(to_py))
        .transpose()
}

fn ltv_settings(a: &Args) -> PyResult<LtvSettings> {
    let model = model_kind(a.str("model")?)?.unwrap_or(ModelKind::BgNbd);
    let period: Period = parse("period", a.str("period")?)?.unwrap_or(Period::Day);
    let gamma_gamma = match a.str("spend")?.as_deref() {
        None | Some("gammagamma") | Some("gg") => true,
        Some("none") => false,
        Some(other) => {
            return Err(usage(format!(
                "spend model must be gammagamma or none, not {other:?}"
            )));
        }
    };
    let horizon = |key: &str| -> PyResult<Option<u32>> {
        a.str(key)?
            .map(|h| period.horizon(&h).map_err(to_py))
            .transpose()
    };
    Ok(LtvSettings {
        model,
        gamma_gamma,
        period,
        horizon: horizon("horizon")?.unwrap_or(match period {
            Period::Day => 365,
            Period::Week => 52,
        }),
        annual_discount: a.f64("discount")?.unwrap_or(0.10),
        margin: a.f64("clv_margin")?,
        calibration_end: date(a.str("calibration_end")?)?,
        progress: Default::default(),
        penalizer: a.f64("penalizer")?.unwrap_or(0.0),
        purchases_horizon: horizon("purchases_horizon")?,
    })
}

/// Loads and runs one analysis (no Python objects: the GIL is released around it).
fn work(
    input: Input,
    opts: &LoadOptions,
    settings: &AnalysisSettings,
    cmd: &Command,
) -> Result<(Output, LoadReport), Error> {
    settings.check()?;
    if let Command::Report { out, .. } = cmd {
        custvalue::report::check_output(out, &opts.inputs)?;
    }
    let loaded = match input {
        Input::Paths => custvalue::load(opts)?,
        Input::Frame(df) => custvalue::load_frame(&df, opts)?,
    };
    let tx = &loaded.transactions;
    let out = Output::default();
    let out = match cmd {
        Command::Summary => out.frame("summary", custvalue::summarize(tx)?.to_frame()?),
        Command::Rfm => out.frame("rfm", custvalue::segment(tx, settings)?.rfm_frame()?),
        Command::Deciles(by) => {
            let by = match by {
                Some(b) => *b,
                None => settings.decile_by()?,
            };
            let s = custvalue::summarize(tx)?;
            let d = s.currency_decimals;
            let money = deciles::money_deciles(&s, &deciles::assign(&s, by));
            let purchase = deciles::purchase_deciles(&s);
            let headline = deciles::headline(&money, &purchase, by);
            out.frame("money", deciles::money_frame(&money, d)?)
                .frame("purchase", deciles::purchase_frame(&purchase, d)?)
                .value("headline", json!(headline))
        }
        Command::Profit => {
            let s = custvalue::summarize(tx)?;
            let v = custvalue::profit::profit_view(&s);
            let mut figures = v.to_json(s.currency_decimals);
            if let Some(map) = figures.as_object_mut() {
                map.remove("whale_curve");
            }
            out.frame("whale", v.whale_frame()?)
                .value("figures", figures)
                .value("headline", json!(v.headline(s.currency_decimals)))
        }
        Command::Segments(model) => {
            let seg = custvalue::segment(tx, settings)?;
            let p_alive = match model {
                Some(model) => {
                    let ltv = custvalue::ltv::value(
                        tx,
                        &LtvSettings {
                            model: *model,
                            gamma_gamma: false,
                            ..Default::default()
                        },
                    )?;
                    Some(ltv.p_alive)
                }
                None => None,
            };
            out.frame("segments", seg.to_frame_with_p_alive(p_alive.as_deref())?)
        }
        Command::Job => {
            let seg = custvalue::segment(tx, settings)?;
            let s = &seg.summary;
            let d = s.currency_decimals;
            let money = deciles::money_deciles(s, &seg.decile);
            let purchase = deciles::purchase_deciles(s);
            let headline = deciles::headline(&money, &purchase, seg.decile_by);
            let v = custvalue::profit::profit_view(s);
            let mut figures = v.to_json(d);
            if let Some(map) = figures.as_object_mut() {
                map.remove("whale_curve");
            }
            out.frame("segments", seg.to_frame()?)
                .frame("money", deciles::money_frame(&money, d)?)
                .frame("purchase", deciles::purchase_frame(&purchase, d)?)
                .frame("whale", v.whale_frame()?)
                .value("deciles_headline", json!(headline))
                .value("figures", figures)
                .value("profit_headline", json!(v.headline(d)))
        }
        Command::Cube(by) => {
            let s = custvalue::summarize(tx)?;
            let groups = match by {
                Dimension::Decile => Groups::deciles(&deciles::assign(&s, settings.decile_by()?)),
                Dimension::Segment => Groups::segments(
                    &custvalue::rfm::score(&s, settings.rfm.k)?,
                    &settings.segment_rules()?,
                ),
                Dimension::Stage => Groups::stages(&custvalue::lifecycle::lifecycle(
                    tx,
                    &s,
                    &settings.lifecycle,
                )),
                Dimension::Cohort => Groups::cohorts(&s),
            };
            let c = cube::cube(tx, &groups)?;
            out.frame("cube", c.to_frame()?)
                .value("headline", json!(c.headline()))
        }
        Command::Cohorts => {
            let s = custvalue::summarize(tx)?;
            let triangle = custvalue::cohorts::cohorts(tx, &s)?;
            out.frame("cohorts", triangle.to_frame()?)
                .value("headline", json!(triangle.headline()))
        }
        Command::Affinity => {
            let s = custvalue::summarize(tx)?;
            let aff = custvalue::affinity::affinity(tx, &s);
            out.frame("pairs", aff.to_frame(None)?)
                .value("headline", json!(aff.headline()))
        }
        Command::Ltv(settings) => {
            let ltv = custvalue::ltv::value(tx, settings)?;
            out.frame("customers", ltv.to_frame()?)
                .value("purchase_model", fit_json(ltv.report()))
                .value(
                    "spend_model",
                    ltv.spend
                        .as_ref()
                        .map_or(Value::Null, |g| fit_json(g.report())),
                )
                .value("margin", json!(ltv.margin))
                .value("total_clv", json!(ltv.total_clv()))
        }
        Command::Report {
            out: path,
            model,
            calibration_end,
            title,
        } => {
            let seg = custvalue::segment(tx, settings)?;
            let ltv = model
                .map(|model| {
                    custvalue::ltv::value(
                        tx,
                        &LtvSettings {
                            model,
                            calibration_end: *calibration_end,
                            ..LtvSettings::default()
                        },
                    )
                })
                .transpose()?;
            let html = custvalue::report::render(&custvalue::report::ReportInput {
                title,
                load: &loaded.report,
                settings,
                segmentation: &seg,
                transactions: tx,
                ltv: ltv.as_ref(),
                migration: None,
            })?;
            custvalue::output::write_bytes(path, html.as_bytes())?;
            out.value("path", json!(path.display().to_string()))
        }
    };
    Ok((out, loaded.report))
}

/// A number for JSON: null when not finite.
fn num(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// A fit as plain values: model, parameters and standard errors by name,
/// log-likelihood, iterations, starts, convergence and the boundary sentence.
fn fit_json(r: &FitReport) -> Value {
    // Pairs in the paper's order (r, alpha, a, b): the Python layer makes dicts of them.
    let named = |values: &mut dyn Iterator<Item = (&str, f64)>| {
        Value::Array(values.map(|(n, v)| json!([n, num(v)])).collect())
    };
    json!({
        "model": r.model,
        "params": named(&mut r.params.iter().map(|(n, v)| (*n, *v))),
        "std_errors": named(&mut r.params.iter().zip(&r.std_errors).map(|((n, _), s)| (*n, *s))),
        "log_likelihood": num(r.log_likelihood),
        "iterations": r.iterations,
        "starts": r.starts,
        "converged": r.converged,
        "boundary": r.boundary,
    })
}

fn report_json(r: &LoadReport) -> Value {
    json!({
        "rows_read": r.rows_read,
        "rows_used": r.rows_used,
        "rows_rejected": r.rows_rejected,
        "rejected_by_reason": r.rejected_by_reason.iter()
            .map(|(k, n)| (k.key().to_string(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "examples": r.examples.iter().map(|e| json!({
            "file": e.file, "place": e.place, "line": e.line, "column": e.column,
            "value": e.value, "reason": e.reason.key(), "detail": e.detail,
        })).collect::<Vec<_>>(),
        "quarantine": r.quarantine.as_ref().map(|p| p.display().to_string()),
        "as_of": custvalue::time::format_day(r.as_of),
        "as_of_given": r.as_of_given,
        "headline": r.headline(),
    })
}

/// Plain values into Python objects.
fn to_python<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    let json = py.import("json")?;
    json.call_method1("loads", (v.to_string(),))
}

/// Runs `threads` workers when given (a pool of this call's own), else the default pool.
fn with_threads<T: Send>(threads: Option<u64>, f: impl FnOnce() -> T + Send) -> PyResult<T> {
    match threads {
        None => Ok(f()),
        Some(0) => Err(usage("threads must be at least 1".into())),
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n as usize)
                .build()
                .map_err(|e| usage(format!("cannot start {n} threads: {e}")))?;
            Ok(pool.install(f))
        }
    }
}

/// Loads `source` (a path, a list of paths or globs, or an object with
/// `__arrow_c_stream__`) with the load arguments `load` and runs the analysis `name`
/// with its arguments `args`. Returns a dict of frames (`ArrowFrame`s), values, and the
/// load report under "load_report".
#[pyfunction]
#[pyo3(signature = (name, source, load, args))]
fn run<'py>(
    py: Python<'py>,
    name: &str,
    source: &Bound<'py, PyAny>,
    load: &Bound<'py, PyDict>,
    args: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let (paths, input) = if let Ok(path) = source.cast::<PyString>() {
        (vec![path.to_string()], Input::Paths)
    } else if let Ok(list) = source.cast::<PyList>() {
        let paths = list
            .iter()
            .map(|p| p.extract::<String>().map_err(PyErr::from))
            .collect::<PyResult<Vec<_>>>()?;
        (paths, Input::Paths)
    } else {
        (Vec::new(), Input::Frame(import_frame(source)?))
    };
    let load = Args(load);
    let (opts, mut settings) = load_options(&load, paths)?.map_err(to_py)?;
    if matches!(input, Input::Paths) && opts.inputs.is_empty() {
        return Err(usage(
            "no input given: pass a path, a glob or a DataFrame".into(),
        ));
    }
    let cmd = command(name, &Args(args), &mut settings)?;
    let threads = load.u64("threads")?;
    let result = py.detach(|| with_threads(threads, || work(input, &opts, &settings, &cmd)))?;
    let (output, report) = result.map_err(to_py)?;
    let out = PyDict::new(py);
    for (name, df) in output.frames {
        out.set_item(name, Bound::new(py, ArrowFrame::new(df))?)?;
    }
    for (name, v) in &output.values {
        out.set_item(name, to_python(py, v)?)?;
    }
    out.set_item("load_report", to_python(py, &report_json(&report))?)?;
    Ok(out)
}

/// Fits a model on a model summary frame: columns x, t_x and T (bgnbd, paretonbd,
/// mbgnbd; with `spend_col` Gamma-Gamma too, on customers with x > 0), or frequency,
/// recency, periods and weights (bgbb). Returns plain values.
#[pyfunction]
#[pyo3(signature = (summary, model, spend_col = None, penalizer = 0.0))]
fn fit<'py>(
    py: Python<'py>,
    summary: &Bound<'py, PyAny>,
    model: &str,
    spend_col: Option<String>,
    penalizer: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let df = import_frame(summary)?;
    let model = model.to_string();
    let result = py.detach(move || fit_frame(&df, &model, spend_col.as_deref(), penalizer));
    to_python(py, &result.map_err(to_py)?)
}

/// The columns `wanted` of a model summary as numbers; errors name the row and column.
fn number_columns(df: &DataFrame, wanted: &[&str]) -> Result<Vec<Vec<f64>>, Error> {
    wanted
        .iter()
        .map(|&name| {
            let column = df.column(name).map_err(|_| {
                Error::input(
                    custvalue::load::FRAME_NAME,
                    format!(
                        "no column '{name}'; the frame has columns: {}",
                        df.get_column_names()
                            .iter()
                            .map(|n| format!("'{n}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            let values = column.cast(&DataType::Float64).map_err(|_| {
                Error::input(
                    custvalue::load::FRAME_NAME,
                    format!("column '{name}' ({}) does not hold numbers", column.dtype()),
                )
            })?;
            let values = values.as_materialized_series().f64()?.clone();
            values
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    v.filter(|v| v.is_finite()).ok_or_else(|| Error::BadRow {
                        file: custvalue::load::FRAME_NAME.into(),
                        place: "row",
                        line: row as u64,
                        column: name.to_string(),
                        value: column.get(row).map(|v| v.to_string()).unwrap_or_default(),
                        reason: "not a number".into(),
                        expected: "a finite number".into(),
                    })
                })
                .collect()
        })
        .collect()
}

fn fit_frame(
    df: &DataFrame,
    model: &str,
    spend_col: Option<&str>,
    penalizer: f64,
) -> Result<Value, Error> {
    let model_error =
        |e: models::ModelError| Error::Data(format!("the model cannot be fitted: {e}"));
    let none = models::FitObserver::default();
    if model == "bgbb" {
        let c = number_columns(df, &["frequency", "recency", "periods", "weights"])?;
        let count = |k: usize, i: usize| -> Result<u32, Error> {
            let v = c[k][i];
            if v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) {
                Ok(v as u32)
            } else {
                Err(Error::BadRow {
                    file: custvalue::load::FRAME_NAME.into(),
                    place: "row",
                    line: i as u64,
                    column: ["frequency", "recency", "periods"][k].to_string(),
                    value: v.to_string(),
                    reason: "not a count".into(),
                    expected: "a whole number >= 0".into(),
                })
            }
        };
        let patterns = (0..c[0].len())
            .map(|i| {
                Ok(Pattern {
                    x: count(0, i)?,
                    t_x: count(1, i)?,
                    n: count(2, i)?,
                    weight: c[3][i],
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let fit = BgBb::fit_observed(&patterns, &none).map_err(model_error)?;
        return Ok(json!({ "purchase_model": fit_json(fit.report()), "spend_model": null }));
    }
    let kind: ModelKind = model
        .parse()
        .map_err(|e: models::ModelError| Error::Usage(e.to_string()))?;
    let mut wanted = vec!["x", "t_x", "T"];
    wanted.extend(spend_col);
    let c = number_columns(df, &wanted)?;
    let customers: Vec<Customer> = (0..c[0].len())
        .map(|i| Customer {
            x: c[0][i],
            t_x: c[1][i],
            t: c[2][i],
        })
        .collect();
    let options = FitOptions { penalizer };
    let fit =
        models::fit_purchase_model_with(kind, &customers, &options, &none).map_err(model_error)?;
    let mut out = json!({ "purchase_model": fit_json(fit.report()), "spend_model": null });
    if spend_col.is_some() {
        let (x, m): (Vec<f64>, Vec<f64>) = (0..c[0].len())
            .filter(|&i| c[0][i] > 0.0 && c[3][i] > 0.0)
            .map(|i| (c[0][i], c[3][i]))
            .unzip();
        let gg = GammaGamma::fit_with(&x, &m, &options, &none).map_err(model_error)?;
        out["spend_model"] = fit_json(gg.report());
        out["spend_frequency_correlation"] = num(models::spend_frequency_correlation(&x, &m));
    }
    Ok(out)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_class::<ArrowFrame>()?;
    m.add("CustvalueError", m.py().get_type::<CustvalueError>())?;
    m.add("InputError", m.py().get_type::<InputError>())?;
    Ok(())
}
