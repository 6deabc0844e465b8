//! `custvalue synth`: seeded synthetic transactions for samples, tests and benchmarks.

use std::path::{Path, PathBuf};

use clap::Args;
use polars::prelude::*;

use custvalue::output::{AtomicFile, OutputFormat, thousands};
use custvalue::synth::{self, SynthLine, SynthParams, SynthStats};
use custvalue::{Error, Result};

use super::Ctx;

const EXAMPLES: &str = "\
Examples:
  custvalue synth --rows 30000 --seed 42 --out data-samples/transactions.csv
  custvalue synth --rows 10000000 --seed 1 --out /tmp/tx10m.parquet

Customers follow a BG/NBD purchase process and Gamma-Gamma spend with parameters near the
published CDNOW estimates; orders have 1-6 lines over 20 categories, about 2% of lines are
returns. The same --rows and --seed always give the same file.";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct SynthArgs {
    /// Approximate number of lines (exact customer count chosen to match).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub rows: u64,

    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Output file: .csv or .parquet.
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
}

pub fn run(ctx: &Ctx, args: &SynthArgs) -> Result<i32> {
    let params = SynthParams::for_rows(args.rows, args.seed);
    let stats = match OutputFormat::from_path(&args.out)? {
        OutputFormat::Csv => {
            let mut file = AtomicFile::create(&args.out)?;
            let stats =
                synth::write_csv(&params, file.writer()).map_err(|e| Error::io(&args.out, e))?;
            file.commit()?;
            stats
        }
        OutputFormat::Parquet => write_parquet(&params, &args.out)?,
        _ => {
            return Err(Error::Usage(format!(
                "synth writes .csv or .parquet, not {}",
                args.out.display()
            )));
        }
    };
    ctx.note(&format!(
        "wrote {} lines ({} customers, {} orders, {} returns) to {}",
        thousands(stats.lines),
        thousands(stats.customers),
        thousands(stats.orders),
        thousands(stats.returns),
        args.out.display()
    ));
    Ok(0)
}

/// Column buffers for one Parquet row group.
#[derive(Default)]
struct Batch {
    order_id: Vec<String>,
    customer_id: Vec<String>,
    ts: Vec<i64>,
    category: Vec<&'static str>,
    quantity: Vec<i64>,
    unit_price: Vec<f64>,
    amount: Vec<f64>,
    cost: Vec<f64>,
}

const BATCH_ROWS: usize = 1 << 20;

impl Batch {
    fn push(&mut self, line: &SynthLine, id_width: usize) {
        let category = synth::CATEGORIES
            .iter()
            .find(|c| **c == line.category)
            .copied()
            .unwrap_or("other");
        self.order_id.push(synth::format_order_id(line.order_id));
        self.customer_id
            .push(synth::format_customer_id(line.customer, id_width));
        self.ts.push(
            i64::from(line.day) * custvalue::time::MICROS_PER_DAY
                + i64::from(line.seconds) * 1_000_000,
        );
        self.category.push(category);
        self.quantity.push(line.quantity);
        self.unit_price.push(line.unit_price_cents as f64 / 100.0);
        self.amount.push(line.amount_cents as f64 / 100.0);
        self.cost.push(line.cost_cents as f64 / 100.0);
    }

    fn take_frame(&mut self) -> PolarsResult<DataFrame> {
        let b = std::mem::take(self);
        let n = b.ts.len();
        DataFrame::new(
            n,
            vec![
                Column::new("order_id".into(), b.order_id),
                Column::new("customer_id".into(), b.customer_id),
                Column::new("ts".into(), b.ts)
                    .cast(&DataType::Datetime(TimeUnit::Microseconds, None))?,
                Column::new("category".into(), b.category),
                Column::new("quantity".into(), b.quantity),
                Column::new("unit_price".into(), b.unit_price),
                Column::new("amount".into(), b.amount),
                Column::new("cost".into(), b.cost),
            ],
        )
    }
}

fn write_parquet(params: &SynthParams, out: &Path) -> Result<SynthStats> {
    params.validate().map_err(|e| Error::Usage(e.to_string()))?;
    let id_width = synth::customer_id_width(params.customers);
    let mut file = AtomicFile::create(out)?;
    let mut batch = Batch::default();
    let schema = batch.take_frame()?.schema().clone();
    let mut writer = ParquetWriter::new(file.writer())
        .with_compression(ParquetCompression::Zstd(None))
        .batched(&schema)?;
    let mut failure: Option<PolarsError> = None;
    let stats = synth::generate(params, |line| {
        if failure.is_some() {
            return;
        }
        batch.push(line, id_width);
        if batch.ts.len() >= BATCH_ROWS
            && let Err(e) = batch.take_frame().and_then(|df| writer.write_batch(&df))
        {
            failure = Some(e);
        }
    });
    if let Some(e) = failure {
        return Err(e.into());
    }
    writer.write_batch(&batch.take_frame()?)?;
    writer.finish()?;
    drop(writer);
    file.commit()?;
    Ok(stats)
}
