//! Per-stage benchmarks on generated data of stated size: load (CSV), summary, scoring
//! (RFM + deciles + best + lifecycle), profit view, and writing the segment file (with
//! polars' writer, and chunked as the command line does).
//!
//! Run: `cargo bench --bench stages` (sizes: 200k lines by default; set
//! CUSTVALUE_BENCH_ROWS to change).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use custvalue::synth::{self, SynthParams};
use custvalue::{AnalysisSettings, LoadOptions};

fn rows() -> u64 {
    std::env::var("CUSTVALUE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

fn stages(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("tx.csv");
    let params = SynthParams::for_rows(rows(), 1);
    let file = std::fs::File::create(&csv).expect("create");
    synth::write_csv(&params, std::io::BufWriter::new(file)).expect("write");
    let opts = LoadOptions::new([csv.to_str().expect("utf-8 path")]);
    let loaded = custvalue::load(&opts).expect("load");
    let n = loaded.report.rows_used;
    let summary = custvalue::summarize(&loaded.transactions).expect("summary");
    let settings = AnalysisSettings::default();

    let mut g = c.benchmark_group(format!("stages_{n}_lines"));
    g.sample_size(10);
    g.bench_function("load_csv", |b| {
        b.iter(|| custvalue::load(black_box(&opts)).expect("load"))
    });
    g.bench_function("summary", |b| {
        b.iter(|| custvalue::summarize(black_box(&loaded.transactions)).expect("summary"))
    });
    g.bench_function("rfm_scores", |b| {
        b.iter(|| custvalue::rfm::score(black_box(&summary), 5).expect("rfm"))
    });
    g.bench_function("deciles", |b| {
        b.iter(|| {
            let d = custvalue::deciles::assign(black_box(&summary), Default::default());
            custvalue::deciles::money_deciles(&summary, &d)
        })
    });
    g.bench_function("profit_view", |b| {
        b.iter(|| custvalue::profit::profit_view(black_box(&summary)))
    });
    g.bench_function("segment_all", |b| {
        b.iter(|| custvalue::segment(black_box(&loaded.transactions), &settings).expect("segment"))
    });
    let seg = custvalue::segment(&loaded.transactions, &settings).expect("segment");
    let out = dir.path().join("segments.parquet");
    g.bench_function("write_segments_parquet", |b| {
        b.iter(|| {
            let mut frame = seg.to_frame().expect("frame");
            custvalue::output::write_frame(&mut frame, &out).expect("write")
        })
    });
    // The segment file as the command line writes it: chunked, encoded column by column.
    g.bench_function("write_segment_file", |b| {
        b.iter(|| seg.write(black_box(&out), None).expect("write"))
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
