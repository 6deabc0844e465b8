//! The HTML report: one self-contained page of headline figures, charts and tables
//! that an analyst can open from a mail attachment — no network, no scripts, no font
//! files; the charts are inline SVG.
//!
//! [`render`] builds the page from results that are already computed (the load report,
//! the [`Segmentation`], the transactions and, optionally, the [`Ltv`] values and the
//! segment migration since the previous nightly run); it
//! derives the decile tables, the 20/80/30 view, the cube of money deciles ×
//! categories, the cohort retention triangle and the category pairs itself, which are
//! cheap (one pass over the lines each). Every chart carries a
//! one-sentence reading computed from the same figures. The page is an askama template
//! (`templates/report.html`, escaped by default); the same inputs give the same bytes.
//!
//! Not for: loading, scoring or fitting (see the modules named after those stages), or
//! writing the file (the caller does, e.g. with [`crate::output::AtomicFile`]).

mod charts;
mod panels;

use std::path::Path;

use askama::Template;

use crate::error::{Error, Result};
use crate::load::LoadReport;
use crate::ltv::Ltv;
use crate::segments::{AnalysisSettings, Segmentation};
use crate::transactions::Transactions;

/// What the report is made from.
pub struct ReportInput<'a> {
    /// The page title, e.g. "Customer value report".
    pub title: &'a str,
    /// How the input was read (rows read, used, rejected; the as-of date).
    pub load: &'a LoadReport,
    /// The thresholds the segmentation used (shown next to the best-customer rule).
    pub settings: &'a AnalysisSettings,
    pub segmentation: &'a Segmentation,
    /// The lines the segmentation was computed from: the cube of money deciles ×
    /// categories, the cohort retention triangle and the category pairs come from them.
    pub transactions: &'a Transactions,
    /// Lifetime values: adds the CLV distribution and, when the values were fitted with
    /// a calibration cut-off, the calibration/holdout chart.
    pub ltv: Option<&'a Ltv>,
    /// Segment migration since the previous nightly run (`custvalue run`): adds the
    /// migration matrix and the table of the largest moves.
    pub migration: Option<&'a [crate::migration::Migration]>,
}

/// The default page title.
pub const DEFAULT_TITLE: &str = "Customer value report";

/// Renders the report as one HTML document.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("tx.csv");
/// # std::fs::write(&path, "customer_id,ts,amount\nA,2024-01-01,10\nB,2024-01-05,20\nB,2024-02-05,5\n").unwrap();
/// let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// let settings = custvalue::AnalysisSettings::default();
/// let seg = custvalue::segment(&loaded.transactions, &settings).unwrap();
/// let html = custvalue::report::render(&custvalue::report::ReportInput {
///     title: custvalue::report::DEFAULT_TITLE,
///     load: &loaded.report,
///     settings: &settings,
///     segmentation: &seg,
///     transactions: &loaded.transactions,
///     ltv: None,
///     migration: None,
/// })
/// .unwrap();
/// assert!(html.starts_with("<!DOCTYPE html>"));
/// assert!(html.contains("<svg"));
/// ```
pub fn render(input: &ReportInput<'_>) -> Result<String> {
    let page = panels::page(input)?;
    page.render()
        .map_err(|e| Error::io("report template", std::io::Error::other(e.to_string())))
}

/// Checks an output path for the report before any work is done: an `.html` or `.htm`
/// name in an existing directory that is not one of the inputs.
pub fn check_output(path: &Path, inputs: &[String]) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("html" | "htm")) {
        return Err(Error::Usage(format!(
            "the report is HTML: name the output file .html, not {}",
            path.display()
        )));
    }
    crate::output::check_target(path, inputs)
}

/// The page the template fills.
#[derive(Template)]
#[template(path = "report.html")]
struct Page {
    title: String,
    subtitle: String,
    figures: Vec<Figure>,
    rows: Vec<Vec<Panel>>,
    notes: Vec<String>,
    version: &'static str,
}

/// A headline figure.
struct Figure {
    label: &'static str,
    value: String,
    note: String,
}

/// One chart (or table) with its reading.
struct Panel {
    id: &'static str,
    title: String,
    reading: String,
    /// The chart's `<svg>` element (inserted unescaped; drawn by `charts`).
    svg: String,
    legend: Vec<Legend>,
    table: Option<Table>,
    /// "stack" (table under the chart) or "side" (table beside it).
    layout: &'static str,
    /// Spans the whole row (charts drawn `charts::FULL` wide).
    wide: bool,
    note: String,
}

struct Legend {
    colour: String,
    label: String,
    /// "bar", "line", "dash", "dot" or "outline".
    mark: &'static str,
}

struct Table {
    head: Vec<Cell>,
    rows: Vec<Vec<Cell>>,
}

struct Cell {
    text: String,
    numeric: bool,
}
