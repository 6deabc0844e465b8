//! The report's charts, drawn with plotters' SVG backend. Each function takes figures
//! the report has already computed and returns one `<svg>` element as text.
//!
//! Text is SVG `<text>` that the browser sets in the page's font: no font file is read
//! or embedded, so plotters only estimates text widths, and layouts leave room for that.
//! Elements are drawn in data order (never from a hash map), so the same figures give
//! the same bytes.
//!
//! Not for: computing the figures (see the parent module) or the page around the charts
//! (see `templates/report.html`).

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::output::thousands;

/// The report's colours. `templates/report.html` uses the same values in its CSS.
pub mod colour {
    use plotters::style::RGBColor;

    /// Money: revenue, profit, value, actual figures.
    pub const MONEY: RGBColor = RGBColor(0x1f, 0x4e, 0x79);
    /// Head counts of customers.
    pub const CUSTOMERS: RGBColor = RGBColor(0x5b, 0x8d, 0xb8);
    /// Cumulative lines, marked points and model predictions.
    pub const ACCENT: RGBColor = RGBColor(0xe0, 0x7a, 0x1f);
    /// Negative amounts (returns, losses).
    pub const NEGATIVE: RGBColor = RGBColor(0xb9, 0x3a, 0x32);
    /// Body text.
    pub const INK: RGBColor = RGBColor(0x1f, 0x29, 0x37);
    /// Axis labels and notes.
    pub const MUTED: RGBColor = RGBColor(0x5f, 0x67, 0x74);
    /// Axis lines.
    pub const AXIS: RGBColor = RGBColor(0x9c, 0xa3, 0xaf);
    /// Grid lines.
    pub const GRID: RGBColor = RGBColor(0xe5, 0xe7, 0xeb);
    /// Empty cells and reference marks.
    pub const PALE: RGBColor = RGBColor(0xf3, 0xf4, 0xf6);
    /// The light end of the heat-map scale (its dark end is `MONEY`).
    pub const HEAT_LOW: RGBColor = RGBColor(0xea, 0xf1, 0xf8);
    /// Text on dark fills.
    pub const PAPER: RGBColor = RGBColor(0xff, 0xff, 0xff);

    /// `#1F4E79`, for CSS and legends.
    pub fn hex(c: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
    }
}

use colour::*;

/// Width of a chart that spans the page, and of one in a half-width column.
pub const FULL: u32 = 1080;
pub const HALF: u32 = 530;
/// Width of a chart beside a table in a full-width panel.
pub const SIDE: u32 = 460;

type Failure = Box<dyn std::error::Error>;
type Drawn = std::result::Result<(), Failure>;
type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;
type Plane<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Ticked, Ticked>>;

/// A linear f64 axis whose ticks (and grid lines) are exactly the given values: round
/// numbers on numeric axes, slot middles on category axes.
#[derive(Clone)]
struct Ticked {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let t = if span > 0.0 {
            (v - self.range.start) / span
        } else {
            0.5
        };
        limit.0 + (f64::from(limit.1 - limit.0) * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Draws one chart into a string and returns the `<svg>` element, labelled for screen
/// readers. The namespace attribute is dropped: inline SVG in HTML needs none, and the
/// report holds no `http://` reference at all.
fn svg(name: &str, size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Drawn) -> Result<String> {
    let mut buf = String::new();
    {
        // Drawing into a string fails only on a bug here: an internal failure (exit 1).
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        draw(&root)
            .and_then(|_| root.present().map_err(Failure::from))
            .map_err(|e| {
                Error::io(
                    format!("report chart '{name}'"),
                    std::io::Error::other(e.to_string()),
                )
            })?;
    }
    let label = name
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    Ok(buf.replacen(
        " xmlns=\"http://www.w3.org/2000/svg\"",
        &format!(" role=\"img\" aria-label=\"{label}\""),
        1,
    ))
}

/// A text style of `px` pixels (plotters writes font-size = size / 1.24).
fn font(px: f64, colour: RGBColor) -> TextStyle<'static> {
    ("sans-serif", px * 1.24).into_font().color(&colour)
}

fn anchored(px: f64, colour: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    font(px, colour).pos(Pos::new(h, v))
}

fn bold(px: f64, colour: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    ("sans-serif", px * 1.24)
        .into_font()
        .style(FontStyle::Bold)
        .color(&colour)
        .pos(Pos::new(h, v))
}

/// Writes `text` `offset` pixels away from the data point `at`.
fn label(
    chart: &Plane<'_, '_>,
    at: (f64, f64),
    offset: (i32, i32),
    text: &str,
    style: &TextStyle<'_>,
) -> Drawn {
    let area = chart.plotting_area();
    let (x, y) = area.map_coordinate(&at);
    let (x0, y0) = area.get_base_pixel();
    area.strip_coord_spec().draw(&Text::new(
        text,
        (x - x0 + offset.0, y - y0 + offset.1),
        style.clone(),
    ))?;
    Ok(())
}

/// One axis: the data range, the tick positions and how a tick is written.
pub struct Axis {
    range: Range<f64>,
    ticks: Vec<f64>,
    text: Box<dyn Fn(f64) -> String>,
    title: String,
}

impl Axis {
    /// A numeric axis over [lo, hi] (widened to include 0) with about `n` round ticks;
    /// `headroom` extends the range above the last tick (room for labels on bars).
    fn numeric(
        lo: f64,
        hi: f64,
        n: usize,
        headroom: f64,
        text: impl Fn(f64, f64) -> String + 'static,
        title: impl Into<String>,
    ) -> Axis {
        Axis::stepped(lo, hi, n, 0.0, headroom, text, title)
    }

    /// A numeric axis of counts: ticks are whole numbers.
    fn counts(hi: f64, n: usize, headroom: f64, title: impl Into<String>) -> Axis {
        Axis::stepped(0.0, hi, n, 1.0, headroom, number, title)
    }

    /// A numeric axis whose tick step is at least `min_step`.
    fn stepped(
        lo: f64,
        hi: f64,
        n: usize,
        min_step: f64,
        headroom: f64,
        text: impl Fn(f64, f64) -> String + 'static,
        title: impl Into<String>,
    ) -> Axis {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let hi = if hi - lo > 0.0 { hi } else { lo + 1.0 };
        let step = nice_step(hi - lo, n).max(min_step);
        let first = (lo / step).floor() * step;
        let last = (hi / step).ceil() * step;
        let ticks: Vec<f64> = (0..)
            .map(|i| first + f64::from(i) * step)
            .take_while(|t| *t <= last + step * 1e-9)
            .collect();
        let span = last - first;
        Axis {
            range: first..last + span * headroom,
            ticks,
            text: Box::new(move |v| text(v, step)),
            title: title.into(),
        }
    }

    /// Categories 0..n, each a slot one unit wide, labelled at its middle.
    fn categories(names: Vec<String>, title: impl Into<String>) -> Axis {
        let n = names.len().max(1);
        Axis {
            range: 0.0..n as f64,
            ticks: (0..names.len()).map(|i| i as f64 + 0.5).collect(),
            text: Box::new(move |v| {
                names
                    .get(v.max(0.0).floor() as usize)
                    .cloned()
                    .unwrap_or_default()
            }),
            title: title.into(),
        }
    }

    fn coord(&self) -> Ticked {
        Ticked {
            range: self.range.clone(),
            ticks: self.ticks.clone(),
        }
    }
}

/// 1, 2, 2.5 or 5 × 10^k: the smallest such step that cuts `span` into at most `n` parts.
pub(super) fn nice_step(span: f64, n: usize) -> f64 {
    let raw = span / n.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|&f| fraction <= f + 1e-9)
        .unwrap_or(10.0);
    nice * magnitude
}

/// A tick value with as many decimals as the step needs and thousands separators.
pub fn number(v: f64, step: f64) -> String {
    let decimals = (0..4)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6
        })
        .unwrap_or(4) as usize;
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    let sign = if v < 0.0 { "-" } else { "" };
    let text = format!("{:.decimals$}", v.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let whole = thousands(whole.parse().unwrap_or(0));
    if fraction.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction}")
    }
}

/// Large money amounts as "12.3k", "4.5M"; smaller ones whole with separators.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    let sign = if v < 0.0 { "-" } else { "" };
    let short = |x: f64, unit: &str| {
        let t = format!("{x:.1}");
        format!("{sign}{}{unit}", t.strip_suffix(".0").unwrap_or(&t))
    };
    if a >= 1e6 {
        short(a / 1e6, "M")
    } else if a >= 1e4 {
        short(a / 1e3, "k")
    } else if a >= 10.0 {
        format!("{sign}{}", thousands(a.round() as u64))
    } else {
        format!("{sign}{a:.2}")
    }
}

fn percent_tick(v: f64, step: f64) -> String {
    format!("{}%", number(v, step))
}

/// Which grid lines a plane draws: at the x ticks (vertical), at the y ticks
/// (horizontal), or none and no x axis either (a funnel has no scale).
#[derive(Clone, Copy)]
enum Grid {
    Vertical,
    Horizontal,
    None,
}

/// The plotting plane with its axes and grid lines.
fn plane<'a, 'b>(
    area: &'a Area<'b>,
    x: &Axis,
    y: &Axis,
    (x_area, y_area): (u32, u32),
    grid: Grid,
) -> std::result::Result<Plane<'a, 'b>, Failure> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(14)
        .margin_right(16)
        .margin_left(6)
        .margin_bottom(4)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(x.coord(), y.coord())?;
    let x_text = |v: &f64| (x.text)(*v);
    let y_text = |v: &f64| (y.text)(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&x_text)
        .y_label_formatter(&y_text)
        .x_desc(x.title.as_str())
        .y_desc(y.title.as_str())
        .label_style(font(12.0, MUTED))
        .axis_desc_style(font(12.5, INK))
        .axis_style(AXIS.stroke_width(1))
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .set_all_tick_mark_size(3);
    match grid {
        Grid::Vertical => mesh.disable_y_mesh(),
        Grid::Horizontal => mesh.disable_x_mesh(),
        Grid::None => mesh.disable_mesh().disable_x_axis(),
    };
    mesh.draw()?;
    Ok(chart)
}

/// A bar from `base` to `value` filling `width` of category slot `slot`, centred.
fn bar(slot: f64, offset: f64, width: f64, value: f64, colour: RGBColor) -> Rectangle<(f64, f64)> {
    let left = slot + offset + (1.0 - width) / 2.0;
    let fill = if value < 0.0 { NEGATIVE } else { colour };
    Rectangle::new([(left, 0.0), (left + width, value)], fill.filled())
}

/// The same bar lying along the x axis, for horizontal bar charts.
fn hbar(slot: f64, width: f64, value: f64, colour: RGBColor) -> Rectangle<(f64, f64)> {
    let low = slot + (1.0 - width) / 2.0;
    let fill = if value < 0.0 { NEGATIVE } else { colour };
    Rectangle::new([(0.0, low), (value, low + width)], fill.filled())
}

/// A value label at the end of a vertical bar: inside it, light on the fill, when the
/// bar is `inside`; else just beyond it.
fn bar_label(chart: &Plane<'_, '_>, x: f64, value: f64, text: &str, inside: bool) -> Drawn {
    // Pixels grow downwards: beyond the end is up for a positive bar, down for a negative.
    let (v, dy, ink) = match (value >= 0.0, inside) {
        (true, false) => (VPos::Bottom, -3, INK),
        (true, true) => (VPos::Top, 4, PAPER),
        (false, false) => (VPos::Top, 3, INK),
        (false, true) => (VPos::Bottom, -4, PAPER),
    };
    label(
        chart,
        (x, value),
        (0, dy),
        text,
        &anchored(11.0, ink, HPos::Center, v),
    )
}

/// Money deciles: revenue (or profit) share per decile as bars, the cumulative share
/// as a line. Shares in 0..1 (`None` when the total is zero).
pub fn money_deciles(
    share: &[Option<f64>],
    cumulative: &[Option<f64>],
    what: &str,
) -> Result<String> {
    let bars: Vec<f64> = share.iter().map(|s| s.unwrap_or(0.0) * 100.0).collect();
    let line: Vec<f64> = cumulative
        .iter()
        .map(|s| s.unwrap_or(0.0) * 100.0)
        .collect();
    let lo = bars.iter().chain(&line).copied().fold(0.0, f64::min);
    let hi = bars.iter().chain(&line).copied().fold(100.0, f64::max);
    svg("Money deciles", (FULL, 360), |root| {
        let x = Axis::categories(
            (1..=bars.len()).map(|d| d.to_string()).collect(),
            format!("money decile (customers ranked by {what}; 1 = the top 10%)"),
        );
        let y = Axis::numeric(
            lo,
            hi,
            5,
            0.06,
            percent_tick,
            format!("share of {what} (%)"),
        );
        let mut chart = plane(root, &x, &y, (44, 60), Grid::Horizontal)?;
        chart.draw_series(
            bars.iter()
                .enumerate()
                .map(|(i, &v)| bar(i as f64, 0.0, 0.62, v, MONEY)),
        )?;
        let tall = (y.range.end - y.range.start) * 0.12;
        for (i, &v) in bars.iter().enumerate() {
            bar_label(
                &chart,
                i as f64 + 0.5,
                v,
                &format!("{v:.1}%"),
                v.abs() > tall,
            )?;
        }
        let points: Vec<(f64, f64)> = line
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as f64 + 0.5, v))
            .collect();
        chart.draw_series(LineSeries::new(points.clone(), ACCENT.stroke_width(3)))?;
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, ACCENT.filled())))?;
        let style = anchored(11.0, ACCENT, HPos::Right, VPos::Bottom);
        // The first point is the first bar's own share, labelled on the bar.
        for &(px, py) in points.iter().skip(1) {
            label(&chart, (px, py), (-8, -6), &format!("{py:.0}%"), &style)?;
        }
        Ok(())
    })
}

/// One column of a column chart.
pub struct Column {
    pub name: String,
    pub value: f64,
    /// Written above the column.
    pub label: String,
    pub colour: RGBColor,
}

/// Columns over named categories, each labelled with its value. With `edges` (one
/// more than the columns) the x axis is labelled at the column boundaries instead, as
/// a histogram's is. `marker` draws a dashed reference line at a position in column
/// units (0 = the left edge of the first column) with its label.
pub fn columns(
    name: &str,
    cols: &[Column],
    (x_title, y_title): (&str, &str),
    edges: Option<&[String]>,
    marker: Option<(f64, String)>,
) -> Result<String> {
    let hi = cols.iter().map(|c| c.value).fold(0.0, f64::max);
    let lo = cols.iter().map(|c| c.value).fold(0.0, f64::min);
    svg(name, (HALF, 360), |root| {
        let x = match edges {
            Some(edges) => {
                let edges = edges.to_vec();
                Axis {
                    range: 0.0..cols.len().max(1) as f64,
                    ticks: (0..edges.len()).map(|i| i as f64).collect(),
                    text: Box::new(move |v| {
                        edges
                            .get(v.round().max(0.0) as usize)
                            .cloned()
                            .unwrap_or_default()
                    }),
                    title: x_title.to_string(),
                }
            }
            None => Axis::categories(cols.iter().map(|c| c.name.clone()).collect(), x_title),
        };
        let headroom = if marker.is_some() { 0.16 } else { 0.1 };
        let y = if lo >= 0.0 && cols.iter().all(|c| c.value.fract() == 0.0) {
            Axis::counts(hi, 5, headroom, y_title)
        } else {
            Axis::numeric(lo, hi, 5, headroom, number, y_title)
        };
        let mut chart = plane(root, &x, &y, (44, 60), Grid::Horizontal)?;
        chart.draw_series(
            cols.iter()
                .enumerate()
                .map(|(i, c)| bar(i as f64, 0.0, 0.72, c.value, c.colour)),
        )?;
        for (i, c) in cols.iter().enumerate() {
            bar_label(&chart, i as f64 + 0.5, c.value, &c.label, false)?;
        }
        if let Some((at, text)) = &marker {
            // Up to the top of the plot, above the column labels.
            let top = y.range.end;
            chart.draw_series(DashedLineSeries::new(
                vec![(*at, 0.0), (*at, top)],
                6,
                4,
                ACCENT.stroke_width(2),
            ))?;
            let style = bold(12.0, ACCENT, HPos::Left, VPos::Top);
            label(&chart, (*at, top), (6, 1), text, &style)?;
        }
        Ok(())
    })
}

/// A marked point of the whale curve.
pub struct Mark {
    /// Customer share 0..1 and cumulative profit share.
    pub at: (f64, f64),
    pub text: String,
    /// Where the label goes relative to the point.
    pub place: (HPos, VPos),
}

/// The whale curve: cumulative profit share against the share of customers ranked by
/// profit, with marked points. `curve` holds the 101 points q = 0..100.
pub fn whale_curve(curve: &[f64], marks: &[Mark]) -> Result<String> {
    let points: Vec<(f64, f64)> = curve
        .iter()
        .enumerate()
        .map(|(q, &v)| {
            (
                q as f64 * 100.0 / (curve.len().max(2) - 1) as f64,
                v * 100.0,
            )
        })
        .collect();
    let lo = points.iter().map(|p| p.1).fold(0.0, f64::min);
    let hi = points.iter().map(|p| p.1).fold(100.0, f64::max);
    svg("Whale curve", (HALF, 360), |root| {
        let x = Axis::numeric(
            0.0,
            100.0,
            5,
            0.0,
            percent_tick,
            "customers, most profitable first (%)",
        );
        let y = Axis::numeric(
            lo,
            hi,
            6,
            0.06,
            percent_tick,
            "cumulative share of profit (%)",
        );
        let mut chart = plane(root, &x, &y, (44, 60), Grid::Vertical)?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 100.0), (100.0, 100.0)],
            AXIS.stroke_width(1),
        )))?;
        chart.draw_series(
            AreaSeries::new(points.clone(), 0.0, MONEY.mix(0.10))
                .border_style(MONEY.stroke_width(3)),
        )?;
        for m in marks {
            let at = (m.at.0 * 100.0, m.at.1 * 100.0);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(at.0, 0.0f64.max(y.range.start)), at],
                ACCENT.mix(0.6).stroke_width(1),
            )))?;
            chart.draw_series(std::iter::once(Circle::new(at, 5, ACCENT.filled())))?;
            let dx = match m.place.0 {
                HPos::Left => 9,
                HPos::Right => -9,
                HPos::Center => 0,
            };
            let dy = match m.place.1 {
                VPos::Top => 8,
                VPos::Bottom => -8,
                VPos::Center => 0,
            };
            label(
                &chart,
                at,
                (dx, dy),
                &m.text,
                &bold(12.0, INK, m.place.0, m.place.1),
            )?;
        }
        Ok(())
    })
}

/// The R × F grid: customers per cell and their mean revenue (currency units).
pub struct RfmGrid {
    pub k: usize,
    /// `customers[r - 1][f - 1]`.
    pub customers: Vec<Vec<u64>>,
    pub mean_revenue: Vec<Vec<Option<f64>>>,
}

/// Where a count sits on the heat scale: square-root, so that the many small cells
/// next to one crowded cell still differ.
fn heat(count: u64, max: u64) -> RGBColor {
    let t = if max == 0 {
        0.0
    } else {
        (count as f64 / max as f64).sqrt()
    };
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    RGBColor(
        mix(HEAT_LOW.0, MONEY.0),
        mix(HEAT_LOW.1, MONEY.1),
        mix(HEAT_LOW.2, MONEY.2),
    )
}

/// Light text on dark cells, dark text on light ones.
fn ink_on(c: RGBColor) -> RGBColor {
    let luminance = 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
    if luminance < 150.0 { PAPER } else { INK }
}

/// The RFM heat map: recency score up, frequency score right; colour = customers,
/// label = mean revenue per customer (and the count below it).
pub fn rfm_heat_map(grid: &RfmGrid) -> Result<String> {
    let k = grid.k.max(1);
    let max = grid.customers.iter().flatten().copied().max().unwrap_or(0);
    let small = k > 5;
    svg("RFM heat map", (HALF, 400), |root| {
        let (left, legend) = root.split_horizontally(HALF - 78);
        let scores: Vec<String> = (1..=k).map(|s| s.to_string()).collect();
        let x = Axis::categories(
            scores.clone(),
            format!("F: frequency score ({k} = most orders)"),
        );
        let y = Axis::categories(scores, format!("R: recency score ({k} = most recent)"));
        let mut chart = plane(&left, &x, &y, (44, 52), Grid::Horizontal)?;
        for r in 0..k {
            for f in 0..k {
                let n = grid
                    .customers
                    .get(r)
                    .and_then(|v| v.get(f))
                    .copied()
                    .unwrap_or(0);
                let mean = grid
                    .mean_revenue
                    .get(r)
                    .and_then(|v| v.get(f))
                    .copied()
                    .flatten();
                let fill = if n == 0 { PALE } else { heat(n, max) };
                let mut cell = Rectangle::new(
                    [(f as f64, r as f64), (f as f64 + 1.0, r as f64 + 1.0)],
                    fill.filled(),
                );
                cell.set_margin(1, 1, 1, 1);
                chart.draw_series(std::iter::once(cell))?;
                let centre = (f as f64 + 0.5, r as f64 + 0.5);
                let ink = ink_on(fill);
                let main = mean.map_or("–".to_string(), compact);
                let size = if small { 9.5 } else { 13.0 };
                let dy = if small { 0 } else { -7 };
                label(
                    &chart,
                    centre,
                    (0, dy),
                    &main,
                    &bold(size, ink, HPos::Center, VPos::Center),
                )?;
                if !small {
                    label(
                        &chart,
                        centre,
                        (0, 9),
                        &format!("n={}", thousands(n)),
                        &anchored(10.5, ink, HPos::Center, VPos::Center),
                    )?;
                }
            }
        }
        draw_heat_legend(&legend, max)
    })
}

/// The colour scale beside the heat map, labelled in customers per cell.
fn draw_heat_legend(area: &Area<'_>, max: u64) -> Drawn {
    let (top, height, x0, width) = (52, 250, 8, 16);
    area.draw(&Text::new("customers", (x0 - 2, 8), font(11.5, MUTED)))?;
    area.draw(&Text::new("per cell", (x0 - 2, 23), font(11.5, MUTED)))?;
    let steps = 50;
    for i in 0..steps {
        // Top of the scale = the largest count.
        let t = 1.0 - f64::from(i) / f64::from(steps);
        let count = (t * t * max as f64).round() as u64;
        let y0 = top + height * i / steps;
        let y1 = top + height * (i + 1) / steps + 1;
        area.draw(&Rectangle::new(
            [(x0, y0), (x0 + width, y1)],
            heat(count, max).filled(),
        ))?;
    }
    let mut last_written = None;
    for t in [1.0, 0.75, 0.5, 0.25, 0.0f64] {
        let count = (t * t * max as f64).round() as u64;
        // Small maxima round several marks to the same count: write each count once.
        if last_written == Some(count) {
            continue;
        }
        last_written = Some(count);
        let y = top + (f64::from(height) * (1.0 - t)).round() as i32;
        area.draw(&PathElement::new(
            vec![(x0 + width, y), (x0 + width + 4, y)],
            AXIS.stroke_width(1),
        ))?;
        area.draw(&Text::new(
            thousands(count),
            (x0 + width + 7, y),
            anchored(11.0, MUTED, HPos::Left, VPos::Center),
        ))?;
    }
    Ok(())
}

/// A matrix of coloured cells, rows top to bottom and columns left to right, with a
/// colour scale beside it. `cells[row][column]`: the fill and the label, or `None` for
/// a cell that is not drawn (the empty corner of a triangle).
pub struct Matrix {
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    pub cells: Vec<Vec<Option<(RGBColor, String)>>>,
    /// The x and y axis titles.
    pub titles: (String, String),
    pub scale: Scale,
}

/// The colour scale of a matrix: `colour(t)` for t from 0 (bottom) to 1 (top), the
/// tick labels at positions t, and a two-line title.
pub struct Scale {
    pub title: (String, String),
    pub colour: fn(f64) -> RGBColor,
    pub ticks: Vec<(f64, String)>,
}

fn mix(a: RGBColor, b: RGBColor, t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let m = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    RGBColor(m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

/// The neutral middle of the diverging scale.
const NEUTRAL: RGBColor = RGBColor(0xf7, 0xf7, 0xf5);

/// Diverging: 0 = `ACCENT` (under), 0.5 = neutral, 1 = `MONEY` (over).
pub fn diverging(t: f64) -> RGBColor {
    if t >= 0.5 {
        mix(NEUTRAL, MONEY, (t - 0.5) * 2.0)
    } else {
        mix(NEUTRAL, ACCENT, (0.5 - t) * 2.0)
    }
}

/// Sequential: 0 = `HEAT_LOW`, 1 = `MONEY`.
pub fn sequential(t: f64) -> RGBColor {
    mix(HEAT_LOW, MONEY, t)
}

/// A heat matrix drawn `FULL` wide, `row_height` pixels per row.
pub fn matrix(name: &str, m: &Matrix, row_height: u32, y_area: u32) -> Result<String> {
    let n = m.rows.len();
    let height = (70 + row_height * n as u32).max(200);
    svg(name, (FULL, height), |root| {
        let (left, legend) = root.split_horizontally(FULL - 96);
        let x = Axis::categories(m.columns.clone(), m.titles.0.as_str());
        let y = Axis::categories(m.rows.iter().rev().cloned().collect(), m.titles.1.as_str());
        let mut chart = plane(&left, &x, &y, (44, y_area), Grid::Horizontal)?;
        let size = if m.columns.len() > 14 { 10.5 } else { 12.0 };
        for (i, row) in m.cells.iter().enumerate() {
            let slot = (n - 1 - i) as f64;
            for (j, cell) in row.iter().enumerate() {
                let Some((fill, text)) = cell else { continue };
                let mut rect = Rectangle::new(
                    [(j as f64, slot), (j as f64 + 1.0, slot + 1.0)],
                    fill.filled(),
                );
                rect.set_margin(1, 1, 1, 1);
                chart.draw_series(std::iter::once(rect))?;
                label(
                    &chart,
                    (j as f64 + 0.5, slot + 0.5),
                    (0, 0),
                    text,
                    &anchored(size, ink_on(*fill), HPos::Center, VPos::Center),
                )?;
            }
        }
        draw_scale(&legend, &m.scale, height)
    })
}

/// The colour scale beside a matrix.
fn draw_scale(area: &Area<'_>, scale: &Scale, chart_height: u32) -> Drawn {
    let (top, x0, width) = (52, 12, 16);
    let height = (chart_height as i32 - top - 60).clamp(80, 250);
    area.draw(&Text::new(
        scale.title.0.as_str(),
        (x0 - 2, 8),
        font(11.5, MUTED),
    ))?;
    area.draw(&Text::new(
        scale.title.1.as_str(),
        (x0 - 2, 23),
        font(11.5, MUTED),
    ))?;
    let steps = 50;
    for i in 0..steps {
        let t = 1.0 - f64::from(i) / f64::from(steps - 1);
        let y0 = top + height * i / steps;
        let y1 = top + height * (i + 1) / steps + 1;
        area.draw(&Rectangle::new(
            [(x0, y0), (x0 + width, y1)],
            (scale.colour)(t).filled(),
        ))?;
    }
    for (t, text) in &scale.ticks {
        let y = top + (f64::from(height) * (1.0 - t)).round() as i32;
        area.draw(&PathElement::new(
            vec![(x0 + width, y), (x0 + width + 4, y)],
            AXIS.stroke_width(1),
        ))?;
        area.draw(&Text::new(
            text.as_str(),
            (x0 + width + 7, y),
            anchored(11.0, MUTED, HPos::Left, VPos::Center),
        ))?;
    }
    Ok(())
}

/// Customers per (previous segment, this run's segment) cell of the migration matrix.
pub struct MigrationGrid {
    /// The previous run's segments, top to bottom.
    pub rows: Vec<String>,
    /// This run's segments, left to right.
    pub columns: Vec<String>,
    /// `customers[row][column]`; 0 = nobody made that move (the cell is left pale).
    pub customers: Vec<Vec<u64>>,
    /// The (row, column) cells of customers who stayed in their segment: outlined.
    pub stayed: Vec<(usize, usize)>,
}

/// The migration matrix drawn `FULL` wide: previous segment down, this run's segment
/// across, each cell labelled with its customers. The colour scale is square-root, like
/// the RFM heat map's, and tops out at the largest move: the stayed cells are usually
/// far larger and would otherwise wash every move out.
pub fn migration(grid: &MigrationGrid) -> Result<String> {
    let (n, m) = (grid.rows.len(), grid.columns.len());
    let count = |r: usize, c: usize| {
        grid.customers
            .get(r)
            .and_then(|row| row.get(c))
            .copied()
            .unwrap_or(0)
    };
    let largest = |moves_only: bool| {
        (0..n)
            .flat_map(|r| (0..m).map(move |c| (r, c)))
            .filter(|cell| !moves_only || !grid.stayed.contains(cell))
            .map(|(r, c)| count(r, c))
            .max()
            .unwrap_or(0)
    };
    let top = match largest(true) {
        0 => largest(false).max(1),
        most => most,
    };
    let position = |customers: u64| (customers.min(top) as f64 / top as f64).sqrt();
    let mut ticks: Vec<(f64, String)> = Vec::new();
    for t in [0.0, 0.25, 0.5, 0.75, 1.0f64] {
        let customers = (t * t * top as f64).round() as u64;
        if ticks
            .last()
            .is_some_and(|(at, _)| *at == position(customers))
        {
            continue;
        }
        ticks.push((position(customers), thousands(customers)));
    }
    if largest(false) > top
        && let Some((_, text)) = ticks.last_mut()
    {
        *text = format!("≥ {text}");
    }
    let scale = Scale {
        title: ("customers".into(), "per cell".into()),
        colour: sequential,
        ticks,
    };
    let height = (110 + 30 * n as u32).max(220);
    svg("Segment migration", (FULL, height), |root| {
        let (left, legend) = root.split_horizontally(FULL - 96);
        // Column names are written below the cells by hand, on two lines when long.
        let x = Axis::categories(vec![String::new(); m], "this run's segment");
        let y = Axis::categories(
            grid.rows.iter().rev().cloned().collect(),
            "previous run's segment",
        );
        let mut chart = plane(&left, &x, &y, (58, 130), Grid::Horizontal)?;
        let size = if m > 14 { 10.5 } else { 12.0 };
        for (c, name) in grid.columns.iter().enumerate() {
            // On `left` itself: the plotting area clamps what is drawn to its edges.
            let (x, y) = chart.plotting_area().map_coordinate(&(c as f64 + 0.5, 0.0));
            for (k, line) in two_lines(name).into_iter().enumerate() {
                left.draw(&Text::new(
                    line,
                    (x, y + 7 + 14 * k as i32),
                    anchored(size, MUTED, HPos::Center, VPos::Top),
                ))?;
            }
        }
        for r in 0..n {
            let slot = (n - 1 - r) as f64;
            for c in 0..m {
                let customers = count(r, c);
                let fill = if customers == 0 {
                    PALE
                } else {
                    sequential(position(customers))
                };
                let mut cell = Rectangle::new(
                    [(c as f64, slot), (c as f64 + 1.0, slot + 1.0)],
                    fill.filled(),
                );
                cell.set_margin(1, 1, 1, 1);
                chart.draw_series(std::iter::once(cell))?;
                if customers > 0 {
                    label(
                        &chart,
                        (c as f64 + 0.5, slot + 0.5),
                        (0, 0),
                        &thousands(customers),
                        &anchored(size, ink_on(fill), HPos::Center, VPos::Center),
                    )?;
                }
            }
        }
        // A path, not an unfilled rectangle: plotters writes no stroke width for those.
        // It starts and ends mid-edge so the ends meet without a notch at a corner.
        for &(r, c) in grid.stayed.iter().filter(|&&(r, c)| r < n && c < m) {
            let slot = (n - 1 - r) as f64;
            let area = chart.plotting_area();
            let (x0, y0) = area.map_coordinate(&(c as f64, slot + 1.0));
            let (x1, y1) = area.map_coordinate(&(c as f64 + 1.0, slot));
            let (x0, y0, x1, y1) = (x0 + 3, y0 + 3, x1 - 3, y1 - 3);
            let middle = (x0 + x1) / 2;
            left.draw(&PathElement::new(
                vec![
                    (middle, y0),
                    (x1, y0),
                    (x1, y1),
                    (x0, y1),
                    (x0, y0),
                    (middle, y0),
                ],
                ACCENT.stroke_width(3),
            ))?;
        }
        draw_scale(&legend, &scale, height)
    })
}

/// A long name on two lines, split at the space nearest its middle: segment names such
/// as "Potential loyalist" are wider than a column of a 14-column matrix.
fn two_lines(name: &str) -> Vec<&str> {
    if name.chars().count() <= 10 {
        return vec![name];
    }
    let middle = name.len() / 2;
    match name
        .match_indices(' ')
        .map(|(i, _)| i)
        .min_by_key(|i| i.abs_diff(middle))
    {
        Some(i) => vec![&name[..i], &name[i + 1..]],
        None => vec![name],
    }
}

/// Horizontal bars of positive values (e.g. lift) with a dashed reference line at
/// `reference`, rows top to bottom, each labelled with `text`.
pub fn reference_bars(
    name: &str,
    rows: &[(String, f64)],
    reference: f64,
    title: &str,
) -> Result<String> {
    let n = rows.len();
    let height = (70 + 30 * n as u32).max(170);
    let hi = rows.iter().map(|r| r.1).fold(reference, f64::max);
    svg(name, (SIDE, height), |root| {
        let names: Vec<String> = rows.iter().rev().map(|r| r.0.clone()).collect();
        let x = Axis::numeric(0.0, hi, 5, 0.1, number, title);
        let y = Axis::categories(names, "");
        let mut chart = plane(root, &x, &y, (40, 150), Grid::Vertical)?;
        for (i, (_, v)) in rows.iter().enumerate() {
            let slot = (n - 1 - i) as f64;
            chart.draw_series(std::iter::once(hbar(slot, 0.62, *v, MONEY)))?;
            label(
                &chart,
                (*v, slot + 0.5),
                (5, 0),
                &format!("{v:.2}"),
                &anchored(11.0, INK, HPos::Left, VPos::Center),
            )?;
        }
        chart.draw_series(DashedLineSeries::new(
            vec![(reference, y.range.start), (reference, y.range.end)],
            5,
            4,
            ACCENT.stroke_width(2),
        ))?;
        Ok(())
    })
}

/// One row of a two-panel horizontal bar chart.
pub struct PairedRow {
    pub name: String,
    /// Shares 0..1.
    pub left: f64,
    pub right: f64,
}

/// Segments: share of customers (left panel) and of revenue (right panel), rows top
/// to bottom in the given order.
pub fn segments(rows: &[PairedRow], titles: (&str, &str)) -> Result<String> {
    let n = rows.len();
    let height = (60 + 30 * n as u32).max(200);
    svg("Segment sizes and revenue", (FULL, height), |root| {
        let (l, r) = root.split_horizontally(FULL / 2 + 70);
        // Row i is drawn in slot n - 1 - i so the first row is on top.
        let names: Vec<String> = rows.iter().rev().map(|r| r.name.clone()).collect();
        let panel = |area: &Area<'_>,
                     value: &dyn Fn(&PairedRow) -> f64,
                     colour: RGBColor,
                     title: &str,
                     with_names: bool|
         -> Drawn {
            let values: Vec<f64> = rows.iter().map(|r| value(r) * 100.0).collect();
            let lo = values.iter().copied().fold(0.0, f64::min);
            let hi = values.iter().copied().fold(0.0, f64::max);
            let x = Axis::numeric(lo, hi, 5, 0.14, percent_tick, title);
            let y = Axis::categories(
                if with_names {
                    names.clone()
                } else {
                    vec![String::new(); n]
                },
                "",
            );
            let mut chart = plane(
                area,
                &x,
                &y,
                (40, if with_names { 150 } else { 8 }),
                Grid::Vertical,
            )?;
            for (i, &v) in values.iter().enumerate() {
                let slot = (n - 1 - i) as f64;
                chart.draw_series(std::iter::once(hbar(slot, 0.66, v, colour)))?;
                let (h, dx) = if v < 0.0 {
                    (HPos::Right, -4)
                } else {
                    (HPos::Left, 4)
                };
                label(
                    &chart,
                    (v, slot + 0.5),
                    (dx, 0),
                    &format!("{v:.1}%"),
                    &anchored(11.0, INK, h, VPos::Center),
                )?;
            }
            Ok(())
        };
        panel(&l, &|r| r.left, CUSTOMERS, titles.0, true)?;
        panel(&r, &|r| r.right, MONEY, titles.1, false)
    })
}

/// One stage of the lifecycle funnel.
pub struct Stage {
    pub name: String,
    pub customers: u64,
    /// Customers / all customers.
    pub share: f64,
}

/// The lifecycle funnel: one centred bar per stage, width = customers.
pub fn lifecycle_funnel(stages: &[Stage]) -> Result<String> {
    let n = stages.len();
    let max = stages.iter().map(|s| s.customers).max().unwrap_or(0).max(1) as f64;
    svg("Lifecycle stages", (HALF, 400), |root| {
        let names: Vec<String> = stages.iter().rev().map(|s| s.name.clone()).collect();
        let x = Axis {
            range: -max / 2.0 * 1.02..max / 2.0 * 1.02,
            ticks: Vec::new(),
            text: Box::new(|_| String::new()),
            title: String::new(),
        };
        let y = Axis::categories(names, "");
        let mut chart = plane(root, &x, &y, (8, 70), Grid::None)?;
        let band = 0.62;
        let half_width = |s: &Stage| s.customers as f64 / 2.0;
        for (i, s) in stages.iter().enumerate() {
            let slot = (n - 1 - i) as f64;
            let low = slot + (1.0 - band) / 2.0;
            let w = half_width(s);
            if let Some(next) = stages.get(i + 1) {
                // The neck joining this stage to the next one.
                let nw = half_width(next);
                let below = slot - 1.0 + (1.0 - band) / 2.0 + band;
                chart.draw_series(std::iter::once(Polygon::new(
                    vec![(-w, low), (w, low), (nw, below), (-nw, below)],
                    CUSTOMERS.mix(0.16).filled(),
                )))?;
            }
            chart.draw_series(std::iter::once(Rectangle::new(
                [(-w, low), (w, low + band)],
                CUSTOMERS.filled(),
            )))?;
            let text = format!("{} · {:.1}%", thousands(s.customers), s.share * 100.0);
            // Inside the bar when it is wide enough for the text, else beside it.
            let fits = (w * 2.0) / max > 0.42;
            let (at, dx, h, ink) = if fits {
                ((0.0, slot + 0.5), 0, HPos::Center, PAPER)
            } else {
                ((w, slot + 0.5), 6, HPos::Left, INK)
            };
            label(
                &chart,
                at,
                (dx, 0),
                &text,
                &bold(12.0, ink, h, VPos::Center),
            )?;
        }
        Ok(())
    })
}

/// Horizontal bars of shares 0..1, one per row, each in its own colour.
pub fn share_bars(rows: &[(String, f64, RGBColor)], title: &str) -> Result<String> {
    let n = rows.len();
    let height = (70 + 44 * n as u32).max(170);
    svg(title, (SIDE, height), |root| {
        let names: Vec<String> = rows.iter().rev().map(|r| r.0.clone()).collect();
        let lo = rows.iter().map(|r| r.1 * 100.0).fold(0.0, f64::min);
        let x = Axis::numeric(lo, 100.0, 5, 0.0, percent_tick, title);
        let y = Axis::categories(names, "");
        let mut chart = plane(root, &x, &y, (40, 110), Grid::Vertical)?;
        for (i, (_, share, colour)) in rows.iter().enumerate() {
            let slot = (n - 1 - i) as f64;
            let v = share * 100.0;
            chart.draw_series(std::iter::once(hbar(slot, 0.56, v, *colour)))?;
            let inside = v > 18.0;
            let (at, dx, h, ink) = if inside {
                (v, -6, HPos::Right, PAPER)
            } else {
                (v.max(0.0), 6, HPos::Left, INK)
            };
            label(
                &chart,
                (at, slot + 0.5),
                (dx, 0),
                &format!("{v:.1}%"),
                &bold(12.0, ink, h, VPos::Center),
            )?;
        }
        Ok(())
    })
}

/// Calibration/holdout: actual against predicted mean holdout purchases per
/// calibration-frequency bucket, as pairs of bars.
pub fn holdout(
    labels: &[String],
    actual: &[f64],
    predicted: &[f64],
    x_title: &str,
    y_title: &str,
) -> Result<String> {
    let hi = actual.iter().chain(predicted).copied().fold(0.0, f64::max);
    svg("Calibration and holdout", (HALF, 360), |root| {
        let x = Axis::categories(labels.to_vec(), x_title);
        let y = Axis::numeric(0.0, hi, 5, 0.08, number, y_title);
        let mut chart = plane(root, &x, &y, (44, 60), Grid::Horizontal)?;
        for (i, (&a, &p)) in actual.iter().zip(predicted).enumerate() {
            let slot = i as f64;
            chart.draw_series([
                bar(slot, -0.17, 0.34, a, MONEY),
                bar(slot, 0.17, 0.34, p, ACCENT),
            ])?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(100.0, 5), 20.0);
        assert_eq!(nice_step(7.3, 5), 2.0);
        assert_eq!(nice_step(0.9, 4), 0.25);
        let a = Axis::numeric(-3.0, 97.0, 5, 0.0, number, "");
        assert_eq!(a.ticks, vec![-20.0, 0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(number(1234.0, 250.0), "1,234");
        assert_eq!(number(0.25, 0.25), "0.25");
        assert_eq!(number(-1500.0, 500.0), "-1,500");
        assert_eq!(compact(12_345.0), "12.3k");
        assert_eq!(compact(2_000_000.0), "2M");
        assert_eq!(compact(123.4), "123");
        assert_eq!(compact(-4.5), "-4.50");
    }

    #[test]
    fn long_column_names_go_on_two_lines() {
        assert_eq!(two_lines("Champions"), ["Champions"]);
        assert_eq!(two_lines("Potential loyalist"), ["Potential", "loyalist"]);
        assert_eq!(two_lines("Can't lose them"), ["Can't", "lose them"]);
        assert_eq!(two_lines("(no purchase)"), ["(no", "purchase)"]);
        assert_eq!(two_lines("Unsplittable"), ["Unsplittable"]);
    }

    #[test]
    fn charts_are_inline_svg_without_namespace_urls() {
        let svg = money_deciles(&[Some(0.5); 10], &[Some(1.0); 10], "revenue").unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("aria-label=\"Money deciles\""));
        assert!(!svg.contains("http"));
        // A single category and all-zero data still draw.
        let one = segments(
            &[PairedRow {
                name: "Only".into(),
                left: 0.0,
                right: 0.0,
            }],
            ("a", "b"),
        )
        .unwrap();
        assert!(one.contains("Only"));
        let grid = RfmGrid {
            k: 3,
            customers: vec![vec![0; 3]; 3],
            mean_revenue: vec![vec![None; 3]; 3],
        };
        assert!(rfm_heat_map(&grid).unwrap().contains("<rect"));
    }
}
