//! `custvalue validate`: check inputs against the column mapping and report every
//! problem, computing nothing.

use clap::Args;

use super::table::Table;
use custvalue::load::BadRowPolicy;
use custvalue::output::thousands;
use custvalue::{Result, load};

use super::{Ctx, InputArgs, print};

const EXAMPLES: &str = "\
Examples:
  custvalue validate --input data-samples/transactions.csv
  custvalue validate --input 'exports/*.csv' --on-bad-rows quarantine=rejected.csv --examples 20

Every row is checked; the report gives rows read, used and rejected, counts by reason and
the first examples with file, line and column. Unless --on-bad-rows says otherwise, bad rows
are counted rather than stopping the check. Exit code 0 when every row is usable, 2 when a
row or a file is not.";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// How many rejected rows to show as examples.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub examples: usize,
}

pub fn run(_ctx: &Ctx, args: &ValidateArgs) -> Result<i32> {
    let mut opts = args.input.options()?;
    if args.input.on_bad_rows.is_none() && opts.on_bad_rows == BadRowPolicy::Error {
        opts.on_bad_rows = BadRowPolicy::Skip;
    }
    opts.max_examples = args.examples;
    let loaded = load(&opts)?;
    let r = &loaded.report;
    let mut files = Table::new(["file", "bytes", "rows read", "used", "rejected"]);
    for f in &r.files {
        files.row([
            f.path.clone(),
            thousands(f.bytes),
            thousands(f.rows_read),
            thousands(f.rows_used),
            thousands(f.rows_rejected),
        ]);
    }
    let mut text = files.render();
    text.push_str(&format!("{}\n", r.headline()));
    text.push_str(&format!(
        "{} customers, {} categories, as-of date {}{}\n",
        thousands(loaded.transactions.n_customers() as u64),
        thousands(loaded.transactions.categories.len() as u64),
        custvalue::time::format_day(r.as_of),
        if r.as_of_given {
            ""
        } else {
            " (the day after the latest transaction)"
        },
    ));
    if r.rows_rejected > 0 {
        let mut reasons = Table::new(["reason", "rows"]);
        for (reason, n) in &r.rejected_by_reason {
            reasons.row([reason.key().to_string(), thousands(*n)]);
        }
        text.push('\n');
        text.push_str(&reasons.render());
        let mut examples = Table::new(["file", "line", "column", "reason", "value", "expected"]);
        for e in &r.examples {
            let reason = if e.detail.is_empty() {
                e.reason.describe().to_string()
            } else {
                format!("{}: {}", e.reason.describe(), e.detail)
            };
            examples.row([
                e.file.clone(),
                format!("{} {}", e.place, e.line),
                e.column.clone(),
                reason,
                format!("{:?}", e.value),
                e.expected.clone(),
            ]);
        }
        text.push('\n');
        text.push_str(&examples.render());
        if let Some(q) = &r.quarantine {
            text.push_str(&format!("rejected rows written to {}\n", q.display()));
        }
    }
    print(&text);
    Ok(if r.rows_rejected == 0 { 0 } else { 2 })
}
