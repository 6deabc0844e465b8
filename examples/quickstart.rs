//! Library quick start: load the bundled sample, summarise, score and print the headline
//! figures. Run with `cargo run --release --example quickstart [FILE]`.

use custvalue::{AnalysisSettings, LoadOptions, load, segment};

fn main() -> Result<(), custvalue::Error> {
    let input = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/data-samples/transactions.csv").to_string()
    });
    let loaded = load(&LoadOptions::new([input]))?;
    println!("{}", loaded.report.headline());

    let seg = segment(&loaded.transactions, &AnalysisSettings::default())?;
    let frame = seg.to_frame()?;
    println!(
        "segment file: {} customers × {} columns",
        frame.height(),
        frame.width()
    );

    let money = custvalue::deciles::money_deciles(&seg.summary, &seg.decile);
    let purchase = custvalue::deciles::purchase_deciles(&seg.summary);
    println!(
        "{}",
        custvalue::deciles::headline(&money, &purchase, seg.decile_by)
    );

    let profit = custvalue::profit::profit_view(&seg.summary);
    println!("{}", profit.headline(seg.summary.currency_decimals));

    for size in seg.segment_sizes() {
        println!("{:<20} {:>6} customers", size.segment, size.customers);
    }
    Ok(())
}
