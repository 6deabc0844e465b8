//! The segment file: every customer's summary, RFM scores and segment, money decile,
//! best-customer flag and lifecycle stage in one table — what a nightly job hands to a
//! mailing or CRM system. Also the analysis settings shared by the scoring commands.
//!
//! Not for: computing any single score (each lives in its own module).

use std::path::PathBuf;

use polars::prelude::*;
use serde::Deserialize;

use crate::best::{BestCustomers, BestRule, best_customers};
use crate::deciles::{self, DecileBy};
use crate::error::{Error, Result};
use crate::lifecycle::{Lifecycle, LifecycleRules, lifecycle};
use crate::output::{ColumnTask, column_task as task};
use crate::rfm::{self, RfmScores, SegmentRules};
use crate::summary::{Summary, summarize};
use crate::transactions::Transactions;

/// `[rfm]` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RfmSettings {
    /// Score groups: 3, 4, 5 or 10.
    pub k: u8,
    /// A TOML segment table replacing the default.
    pub segments: Option<PathBuf>,
}

impl Default for RfmSettings {
    fn default() -> Self {
        RfmSettings {
            k: 5,
            segments: None,
        }
    }
}

/// `[deciles]` settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecileSettings {
    /// Revenue (the default) or profit.
    pub by: Option<DecileBy>,
}

/// The analysis sections of a config file (`[rfm]`, `[deciles]`, `[best]`,
/// `[lifecycle]`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnalysisSettings {
    pub rfm: RfmSettings,
    pub deciles: DecileSettings,
    pub best: BestRule,
    pub lifecycle: LifecycleRules,
}

impl AnalysisSettings {
    /// Checks the settings before any data is read, so a bad setting fails fast.
    pub fn check(&self) -> Result<()> {
        rfm::check_k(self.rfm.k)?;
        self.decile_by()?;
        self.segment_rules()?;
        let l = &self.lifecycle;
        if l.new_max_tenure < 0
            || l.active_max_recency < 0
            || l.at_risk_max_recency < l.active_max_recency
            || l.lapsed_max_recency < l.at_risk_max_recency
            || l.reactivation_gap < 0
        {
            return Err(Error::Usage(
                "[lifecycle] thresholds must be ≥ 0 and active ≤ at_risk ≤ lapsed".into(),
            ));
        }
        Ok(())
    }

    pub fn decile_by(&self) -> Result<DecileBy> {
        Ok(self.deciles.by.unwrap_or_default())
    }

    pub fn segment_rules(&self) -> Result<SegmentRules> {
        match &self.rfm.segments {
            Some(path) => SegmentRules::read(path),
            None => Ok(SegmentRules::default()),
        }
    }
}

/// Every per-customer result of the scoring stage.
#[derive(Debug, Clone)]
pub struct Segmentation {
    pub summary: Summary,
    pub scores: RfmScores,
    pub rules: SegmentRules,
    pub decile_by: DecileBy,
    pub decile: Vec<u8>,
    pub best: BestCustomers,
    pub lifecycle: Lifecycle,
    /// The category to offer next (JOB.md, "Category affinity"); None when no pair
    /// qualifies.
    pub next_category: Vec<Option<u32>>,
    /// Category names, indexed by `next_category`.
    pub categories: Vec<String>,
}

/// Runs summary, RFM, deciles, best customers and lifecycle.
pub fn segment(tx: &Transactions, settings: &AnalysisSettings) -> Result<Segmentation> {
    // Independent passes over the lines run side by side, so that one's serial steps
    // leave the other threads work to do.
    let (summary, best) = rayon::join(|| summarize(tx), || best_customers(tx, &settings.best));
    let (summary, best) = (summary?, best?);
    let (reactivated, next_category) = rayon::join(
        || lifecycle(tx, &summary, &settings.lifecycle).reactivated,
        || {
            let pairs = crate::affinity::affinity(tx, &summary).pairs;
            crate::affinity::next_category_codes(tx, &summary, &pairs)
        },
    );
    score_summary(
        summary,
        settings,
        best,
        reactivated,
        (next_category, tx.categories.clone()),
    )
}

/// The global steps of [`segment`] over per-customer results computed elsewhere (e.g.
/// partition by partition, see `stream`): RFM scores, segments, deciles and stages.
pub fn score_summary(
    summary: Summary,
    settings: &AnalysisSettings,
    best: BestCustomers,
    reactivated: Vec<bool>,
    (next_category, categories): (Vec<Option<u32>>, Vec<String>),
) -> Result<Segmentation> {
    let rules = settings.segment_rules()?;
    let decile_by = settings.decile_by()?;
    // The scores, deciles and stages are independent: each one's serial steps leave
    // the other threads work to do.
    let (scores, (decile, stage)) = rayon::join(
        || rfm::score(&summary, settings.rfm.k),
        || {
            rayon::join(
                || deciles::assign(&summary, decile_by),
                || crate::lifecycle::stages(&summary, &settings.lifecycle),
            )
        },
    );
    let scores = scores?;
    let lifecycle = Lifecycle { stage, reactivated };
    Ok(Segmentation {
        summary,
        scores,
        rules,
        decile_by,
        decile,
        best,
        lifecycle,
        next_category,
        categories,
    })
}

/// One row of the segment-size table.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSize {
    pub segment: String,
    pub customers: u64,
    pub revenue: i128,
    /// Revenue / total revenue of all customers (None when the total is 0).
    pub revenue_share: Option<f64>,
}

impl Segmentation {
    pub fn segment_of(&self, c: usize) -> Option<&str> {
        self.rules.segment(&self.scores, c)
    }

    /// Where customer `c`'s segment is in `names` (the rules'
    /// [`names`](crate::rfm::SegmentRules::names)); `names.len()` for a customer without
    /// a purchase.
    pub(crate) fn segment_index(&self, names: &[&str], c: usize) -> usize {
        match self.segment_of(c) {
            Some(name) => names.iter().position(|n| *n == name).unwrap_or(names.len()),
            None => names.len(),
        }
    }

    /// Customers and revenue per segment in table order (segments with nobody left out),
    /// then customers without a purchase as "(no purchase)".
    pub fn segment_sizes(&self) -> Vec<SegmentSize> {
        let names = self.rules.names();
        let tally = crate::parallel::tally(self.summary.len(), names.len() + 1, |c| {
            let k = self.segment_index(&names, c);
            Some((k, i128::from(self.summary.monetary[c])))
        });
        let (customers, revenue): (Vec<u64>, Vec<i128>) = tally.into_iter().unzip();
        let total = self.summary.total_monetary();
        let mut out = Vec::new();
        for k in 0..=names.len() {
            if customers[k] == 0 {
                continue;
            }
            out.push(SegmentSize {
                segment: names.get(k).map_or("(no purchase)", |n| n).to_string(),
                customers: customers[k],
                revenue: revenue[k],
                revenue_share: (total != 0).then(|| revenue[k] as f64 / total as f64),
            });
        }
        out
    }

    /// Customers per lifecycle stage, and how many of them are reactivated.
    pub fn stage_counts(&self) -> Vec<(&'static str, u64, u64)> {
        use crate::lifecycle::Stage;
        let counts = crate::parallel::tally(self.summary.len(), Stage::ALL.len(), |c| {
            let stage = self.lifecycle.stage[c]?;
            let k = Stage::ALL.iter().position(|&s| s == stage);
            let reactivated = u64::from(self.lifecycle.reactivated[c]);
            Some((k.expect("every stage is listed"), reactivated))
        });
        Stage::ALL
            .iter()
            .zip(counts)
            .map(|(stage, (n, re))| (stage.name(), n, re))
            .collect()
    }

    /// The RFM table (`custvalue rfm --out`): customer id, recency_days, frequency,
    /// monetary, then the [`rfm_columns`](Self::rfm_columns).
    pub fn rfm_frame(&self) -> Result<DataFrame> {
        let s = &self.summary;
        let mut columns = vec![
            s.ids.to_column(None),
            Column::new(
                "recency_days".into(),
                (0..s.len()).map(|c| s.recency_days(c)).collect::<Vec<_>>(),
            ),
            Column::new(
                "frequency".into(),
                s.frequency
                    .iter()
                    .map(|&f| i64::from(f))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "monetary".into(),
                s.monetary.iter().map(|&m| s.money(m)).collect::<Vec<_>>(),
            ),
        ];
        columns.extend(self.rfm_columns());
        Ok(DataFrame::new(s.len(), columns)?)
    }

    /// The RFM columns: r_score, f_score, m_score, rfm_cell, rfm_score, segment.
    pub fn rfm_columns(&self) -> Vec<Column> {
        crate::output::par_columns(self.rfm_column_tasks()).expect("plain columns build")
    }

    fn rfm_column_tasks(&self) -> Vec<ColumnTask<'_>> {
        let n = self.summary.len();
        let scores = &self.scores;
        vec![
            score_task("r_score", &scores.r),
            score_task("f_score", &scores.f),
            score_task("m_score", &scores.m),
            Box::new(move || {
                // One text per cell, not one allocation per customer.
                let k = usize::from(scores.k) + 1;
                let slot = |c: usize| {
                    (usize::from(scores.r[c]) * k + usize::from(scores.f[c])) * k
                        + usize::from(scores.m[c])
                };
                let mut texts = vec![None; k * k * k];
                for c in 0..n {
                    if texts[slot(c)].is_none() {
                        texts[slot(c)] = scores.cell(c);
                    }
                }
                let cells = (0..n).map(|c| texts[slot(c)].as_deref());
                Ok(Column::new("rfm_cell".into(), cells.collect::<Vec<_>>()))
            }),
            task("rfm_score", n, |c| scores.total(c).map(i64::from)),
            task("segment", n, |c| self.segment_of(c)),
        ]
    }

    /// The segment file: the summary's columns, then the RFM columns, `decile`,
    /// `best_customer`, `stage`, `reactivated`, `next_category`. One row per customer in id order.
    pub fn to_frame(&self) -> Result<DataFrame> {
        self.to_frame_with_p_alive(None)
    }

    /// The segment file with a `p_alive` column after `stage` when a lifetime-value
    /// model was fitted (JOB.md: P(alive) is reported beside the stage).
    /// Customers `r` only. Scores, deciles and segments stay those of the whole set.
    pub fn slice(&self, r: std::ops::Range<usize>) -> Segmentation {
        Segmentation {
            summary: self.summary.slice(r.clone()),
            scores: RfmScores {
                k: self.scores.k,
                r: self.scores.r[r.clone()].to_vec(),
                f: self.scores.f[r.clone()].to_vec(),
                m: self.scores.m[r.clone()].to_vec(),
            },
            rules: self.rules.clone(),
            decile_by: self.decile_by,
            decile: self.decile[r.clone()].to_vec(),
            best: BestCustomers {
                spend: self.best.spend[r.clone()].to_vec(),
                categories: self.best.categories[r.clone()].to_vec(),
                orders: self.best.orders[r.clone()].to_vec(),
                best: self.best.best[r.clone()].to_vec(),
            },
            lifecycle: Lifecycle {
                stage: self.lifecycle.stage[r.clone()].to_vec(),
                reactivated: self.lifecycle.reactivated[r.clone()].to_vec(),
            },
            next_category: self.next_category[r].to_vec(),
            categories: self.categories.clone(),
        }
    }

    /// Writes the segment file ([`to_frame_with_p_alive`](Self::to_frame_with_p_alive))
    /// to `path` in chunks of customers, so memory holds one chunk's frame per thread at a
    /// time.
    /// CSV is rendered straight from the per-customer vectors instead (`write_csv`):
    /// the same text without a frame per chunk.
    pub fn write(&self, path: &std::path::Path, p_alive: Option<&[Option<f64>]>) -> Result<()> {
        if crate::output::OutputFormat::from_path(path)? == crate::output::OutputFormat::Csv {
            return self.write_csv(path, p_alive);
        }
        let n = self.summary.len();
        let size = crate::output::CHUNK_ROWS;
        crate::output::write_chunked(path, n.div_ceil(size), |i| {
            let r = i * size..n.min((i + 1) * size);
            self.slice(r.clone())
                .to_frame_with_p_alive(p_alive.map(|p| &p[r]))
        })
    }

    /// The segment file as CSV, written from the per-customer vectors in small chunks of
    /// customers rendered in parallel: byte for byte what `output::write_csv` gives for
    /// [`to_frame_with_p_alive`](Self::to_frame_with_p_alive) (the tests compare the two),
    /// at a fraction of the cost.
    fn write_csv(&self, path: &std::path::Path, p_alive: Option<&[Option<f64>]>) -> Result<()> {
        self.write_csv_in_chunks(path, p_alive, crate::output::TEXT_CHUNK_ROWS)
    }

    fn write_csv_in_chunks(
        &self,
        path: &std::path::Path,
        p_alive: Option<&[Option<f64>]>,
        size: usize,
    ) -> Result<()> {
        let n = self.summary.len();
        crate::output::write_text(path, n.div_ceil(size).max(1), |i| {
            let rows = i * size..n.min((i + 1) * size);
            let mut out = String::with_capacity(rows.len() * 128);
            if i == 0 {
                out.push_str(&Self::csv_header(p_alive.is_some()));
            }
            for c in rows {
                self.push_csv_row(c, p_alive.map(|p| p[c]), &mut out);
            }
            Ok(out.into_bytes())
        })
    }

    fn csv_header(p_alive: bool) -> String {
        let mut names = vec![
            "customer_id",
            "first_purchase",
            "last_purchase",
            "recency_days",
            "tenure_days",
            "frequency",
            "monetary",
            "profit",
            "avg_order_value",
            "n_categories",
            "r_score",
            "f_score",
            "m_score",
            "rfm_cell",
            "rfm_score",
            "segment",
            "decile",
            "best_customer",
            "stage",
        ];
        if p_alive {
            names.push("p_alive");
        }
        names.extend(["reactivated", "next_category"]);
        names.join(",") + "\n"
    }

    /// Customer `c`'s line of the CSV segment file, columns as in
    /// [`to_frame_with_p_alive`](Self::to_frame_with_p_alive); nulls are empty fields.
    fn push_csv_row(&self, c: usize, p_alive: Option<Option<f64>>, out: &mut String) {
        use crate::output::{push_csv_field, push_float, push_int, push_money};
        use crate::transactions::CustomerIds;
        let s = &self.summary;
        let d = s.currency_decimals;
        let int = |out: &mut String, v: Option<i64>| {
            if let Some(v) = v {
                push_int(out, v);
            }
            out.push(',');
        };
        let text = |out: &mut String, v: Option<&str>| {
            if let Some(v) = v {
                push_csv_field(out, v);
            }
        };
        let day = |out: &mut String, v: Option<i32>| {
            if let Some(v) = v {
                crate::time::push_day(v, out);
            }
            out.push(',');
        };
        let money = |out: &mut String, v: Option<i64>| {
            if let Some(v) = v {
                push_money(out, v, d);
            }
            out.push(',');
        };
        let flag = |out: &mut String, v: bool| out.push_str(if v { "true," } else { "false," });
        match &s.ids {
            CustomerIds::Text(ids) => push_csv_field(out, &ids[c]),
            CustomerIds::Int(ids) => push_int(out, ids[c]),
        }
        out.push(',');
        day(out, s.first_purchase[c]);
        day(out, s.last_purchase[c]);
        int(out, s.recency_days(c).map(i64::from));
        int(out, s.tenure_days(c).map(i64::from));
        int(out, Some(i64::from(s.frequency[c])));
        money(out, Some(s.monetary[c]));
        money(out, Some(s.profit[c]));
        money(out, s.avg_order_value(c));
        int(out, Some(i64::from(s.n_categories[c])));
        let scores = &self.scores;
        for v in [scores.r[c], scores.f[c], scores.m[c]] {
            int(out, (v > 0).then_some(i64::from(v)));
        }
        if scores.r[c] > 0 {
            let sep = if scores.k >= 10 { "-" } else { "" };
            push_int(out, i64::from(scores.r[c]));
            out.push_str(sep);
            push_int(out, i64::from(scores.f[c]));
            out.push_str(sep);
            push_int(out, i64::from(scores.m[c]));
        }
        out.push(',');
        int(out, scores.total(c).map(i64::from));
        text(out, self.segment_of(c));
        out.push(',');
        int(out, Some(i64::from(self.decile[c])));
        flag(out, self.best.best[c]);
        text(out, self.lifecycle.stage[c].map(|s| s.name()));
        out.push(',');
        if let Some(p) = p_alive {
            if let Some(p) = p {
                push_float(out, p);
            }
            out.push(',');
        }
        flag(out, self.lifecycle.reactivated[c]);
        let next = self.next_category[c].map(|k| self.categories[k as usize].as_str());
        text(out, next);
        out.push('\n');
    }

    pub fn to_frame_with_p_alive(&self, p_alive: Option<&[Option<f64>]>) -> Result<DataFrame> {
        let n = self.summary.len();
        let mut tasks = self.summary.column_tasks();
        tasks.extend(self.rfm_column_tasks());
        tasks.push(task("decile", n, |c| i64::from(self.decile[c])));
        tasks.push(task("best_customer", n, |c| self.best.best[c]));
        tasks.push(task("stage", n, |c| {
            self.lifecycle.stage[c].map(|s| s.name())
        }));
        if let Some(p) = p_alive {
            tasks.push(task("p_alive", n, |c| p[c]));
        }
        tasks.push(task("reactivated", n, |c| self.lifecycle.reactivated[c]));
        tasks.push(task("next_category", n, |c| {
            self.next_category[c].map(|k| self.categories[k as usize].as_str())
        }));
        Ok(DataFrame::new(n, crate::output::par_columns(tasks)?)?)
    }
}

/// An RFM score column: null without a purchase (score 0).
fn score_task<'a>(name: &'static str, v: &'a [u8]) -> ColumnTask<'a> {
    task(name, v.len(), |c| (v[c] > 0).then_some(i64::from(v[c])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transactions::CustomerIds;

    /// Customers whose ids, segments and categories need CSV quoting, with returns,
    /// customers without a purchase and money like 0.1 + 0.2.
    fn tricky() -> Segmentation {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tx.csv");
        std::fs::write(
            &path,
            "customer_id,ts,order_id,amount,cost,category\n\
             \"a,1\",2024-01-01,1,10.10,2,\"x,y\"\n\
             \"a,1\",2024-03-02,2,0.2,0.1,\"q\"\"uote\"\n\
             \"b\"\"2\",2024-01-03,3,-5.00,,plain\n\
             c,2023-01-01,4,0.1,0.3,plain\n\
             c,2023-02-01,5,0.2,,\"x,y\"\n\
             c,2024-02-01,6,1234567.891,,\"q\"\"uote\"\n\
             d,2022-05-05,7,-0.01,0.5,\n\
             e,2024-04-01,8,3,1,plain\n\
             f,2024-04-02,9,99.99,100,\"x,y\"\n\
             f,2024-04-02,9,0.01,,plain\n",
        )
        .unwrap();
        let loaded = crate::load(&crate::LoadOptions::new([path.to_str().unwrap()])).unwrap();
        let mut settings = AnalysisSettings::default();
        settings.rfm.k = 3;
        let mut seg = segment(&loaded.transactions, &settings).unwrap();
        seg.rules.otherwise = "other, \"misc\"\nsecond line".into();
        if let Some(rule) = seg.rules.rules.first_mut() {
            rule.name = "top,\"best\"".into();
        }
        seg
    }

    #[test]
    fn stage_counts_equal_a_count_of_the_written_stage_column() {
        let seg = tricky();
        let frame = seg.to_frame().unwrap();
        let stage = frame.column("stage").unwrap().str().unwrap().clone();
        let reactivated = frame.column("reactivated").unwrap().bool().unwrap().clone();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let counts = pool.install(|| seg.stage_counts());
            assert_eq!(counts.len(), crate::lifecycle::Stage::ALL.len());
            let mut staged = 0;
            for (name, n, re) in counts {
                let rows = (0..frame.height()).filter(|&i| stage.get(i) == Some(name));
                assert_eq!(n, rows.clone().count() as u64, "{name}");
                let back = rows.filter(|&i| reactivated.get(i) == Some(true)).count();
                assert_eq!(re, back as u64, "{name}");
                staged += n;
            }
            // Customers b and d have only returns: no stage.
            assert_eq!(staged, seg.summary.len() as u64 - 2);
        }
    }

    /// The fast CSV path against the generic one (the frame written by `write_csv`), in
    /// chunks of 1, 2 and many customers, at 1 and 3 threads.
    fn assert_csv_as_frame(seg: &Segmentation, p_alive: Option<&[Option<f64>]>) {
        let dir = tempfile::tempdir().unwrap();
        let generic = dir.path().join("generic.csv");
        crate::output::write_frame(&mut seg.to_frame_with_p_alive(p_alive).unwrap(), &generic)
            .unwrap();
        let expected = std::fs::read(&generic).unwrap();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for size in [1, 2, crate::output::TEXT_CHUNK_ROWS] {
                let fast = dir.path().join(format!("fast-{threads}-{size}.csv"));
                pool.install(|| seg.write_csv_in_chunks(&fast, p_alive, size))
                    .unwrap();
                assert_eq!(
                    String::from_utf8(std::fs::read(&fast).unwrap()).unwrap(),
                    String::from_utf8(expected.clone()).unwrap(),
                    "{threads} threads, chunks of {size}"
                );
            }
        }
        let whole = dir.path().join("whole.csv");
        seg.write(&whole, p_alive).unwrap();
        assert_eq!(std::fs::read(&whole).unwrap(), expected);
    }

    #[test]
    fn csv_segment_file_equals_the_written_frame() {
        let seg = tricky();
        assert!(
            seg.summary.frequency.contains(&0),
            "a customer without purchase"
        );
        let n = seg.summary.len();
        assert_csv_as_frame(&seg, None);
        let odd = [
            Some(0.1 + 0.2),
            None,
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(-0.0),
            Some(1e-7),
            Some(1e21),
            Some(0.5),
        ];
        let p_alive: Vec<Option<f64>> = (0..n).map(|c| odd[c % odd.len()]).collect();
        assert_csv_as_frame(&seg, Some(&p_alive));
    }

    #[test]
    fn csv_segment_file_equals_the_written_frame_at_the_edges() {
        let mut seg = tricky();
        let n = seg.summary.len();
        let ids = [i64::MIN, -3, 0, 7, i64::MAX, 42];
        seg.summary.ids = CustomerIds::Int((0..n).map(|c| ids[c % ids.len()]).collect());
        let money = [
            i64::MIN,
            i64::MAX,
            -1,
            0,
            999_999_999_999_999,
            1_000_000_000_000_000,
            -1_000_000_000_000_001,
            30,
            123_456_789,
            -100_000,
        ];
        seg.summary.monetary = (0..n).map(|c| money[c % money.len()]).collect();
        seg.summary.profit = (0..n).map(|c| money[(c + 3) % money.len()]).collect();
        seg.summary.first_purchase[0] = Some(-800_000);
        seg.summary.last_purchase[0] = Some(3_000_000);
        seg.categories[0] = "line\r\nbreak".into();
        seg.next_category = (0..n).map(|c| (c % 3 != 1).then_some(0)).collect();
        for d in 0..=6 {
            seg.summary.currency_decimals = d;
            assert_csv_as_frame(&seg, None);
        }
        // Ten score groups: cells like "10-3-7".
        seg.scores.k = 10;
        for c in 0..n {
            if seg.scores.r[c] > 0 {
                seg.scores.r[c] = 10;
                seg.scores.m[c] = 7;
            }
        }
        assert_csv_as_frame(&seg, None);
    }
}
