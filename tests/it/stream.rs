//! Out-of-core scoring (`--partitions`): the same segment file as in memory, byte for
//! byte, over several files, bad rows, integer ids and any number of partitions.

use std::path::Path;

use predicates::prelude::*;

use crate::common::{bin, path_str, sample};

/// The sample shop split into three files by line number, plus a file with bad rows
/// and lines of customers of the other files.
fn split_sample(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(sample("transactions.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let mut names = Vec::new();
    for (k, chunk) in rows.chunks(rows.len() / 3 + 1).enumerate() {
        let name = dir.join(format!("part-{k}.csv"));
        std::fs::write(&name, format!("{header}\n{}\n", chunk.join("\n"))).unwrap();
        names.push(path_str(&name).to_string());
    }
    let extra = dir.join("part-9.csv");
    std::fs::write(
        &extra,
        format!(
            "{header}\n\
             O9,C0000001,2024-12-01T10:00:00,coffee,1,3.00,3.00,1.00\n\
             O9,C0000001,2024-12-01T10:00:00,coffee,-1,5.00,-5.00,-2.00\n\
             X1,C0000002,yesterday,coffee,1,1.00,1.00,0.50\n\
             ,C7777777,2024-11-30T08:00:00,,1,2.00,2.00,\n\
             X2,,2024-11-30T08:00:00,tea,1,2.00,2.00,1.00\n"
        ),
    )
    .unwrap();
    names.push(path_str(&extra).to_string());
    // A file of bad rows only: a batch with nothing to spill.
    let bad = dir.join("part-8.csv");
    std::fs::write(
        &bad,
        format!("{header}\nB1,C0000005,never,tea,1,1.00,1.00,0.50\nB2,C0000006,2024-01-01T00:00:00,tea,1,1.00,abc,0.50\n"),
    )
    .unwrap();
    names.push(path_str(&bad).to_string());
    names
}

fn segments(inputs: &[String], out: &Path, extra: &[&str]) -> String {
    segments_with(&[], inputs, out, extra)
}

/// `custvalue <global> segments` of `inputs` into `out`; its stderr.
fn segments_with(global: &[&str], inputs: &[String], out: &Path, extra: &[&str]) -> String {
    let mut cmd = bin();
    cmd.args(global).arg("segments");
    for i in inputs {
        cmd.args(["--input", i]);
    }
    let assert = cmd
        .args([
            "--out",
            path_str(out),
            "--category-col",
            "category",
            "--cost-col",
            "cost",
        ])
        .args(extra)
        .assert()
        .success();
    String::from_utf8(assert.get_output().stderr.clone()).unwrap()
}

#[test]
fn streaming_equals_in_memory_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let inputs = split_sample(dir);
    let spill = dir.join("spill");
    std::fs::create_dir(&spill).unwrap();
    for format in ["csv", "parquet"] {
        let reference = dir.join(format!("mem.{format}"));
        let q_mem = dir.join("q-mem.csv");
        let q = format!("quarantine={}", path_str(&q_mem));
        let mem_err = segments(&inputs, &reference, &["--on-bad-rows", &q]);
        for parts in ["1", "3", "64"] {
            let out = dir.join(format!("stream-{parts}.{format}"));
            let q_str = dir.join("q-stream.csv");
            let q = format!("quarantine={}", path_str(&q_str));
            let err = segments(
                &inputs,
                &out,
                &[
                    "--on-bad-rows",
                    &q,
                    "--partitions",
                    parts,
                    "--spill-dir",
                    path_str(&spill),
                ],
            );
            assert!(
                std::fs::read(&out).unwrap() == std::fs::read(&reference).unwrap(),
                "{format} with {parts} partitions differs from the in-memory file"
            );
            assert_eq!(
                std::fs::read_to_string(&q_str).unwrap(),
                std::fs::read_to_string(&q_mem).unwrap()
            );
            // The same report: counts, reasons, the rejected examples, the as-of date.
            let report = |e: &str| {
                e.lines()
                    .filter(|l| !l.starts_with("wrote ") && !l.starts_with("scoring "))
                    .map(|l| l.replace("q-stream.csv", "q-mem.csv"))
                    .collect::<Vec<_>>()
            };
            assert_eq!(report(&err), report(&mem_err));
            assert!(
                err.contains("4 rejected") && err.contains("line 3"),
                "{err}"
            );
            assert_eq!(
                std::fs::read_dir(&spill).unwrap().count(),
                0,
                "spill left behind"
            );
        }
    }
}

#[test]
fn streaming_integer_ids_and_bad_rows_under_error_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let a = dir.join("a.csv");
    let b = dir.join("b.csv");
    std::fs::write(
        &a,
        "customer_id,ts,order_id,amount,category,cost\n10,2024-01-01,1,5.00,x,1\n9,2024-01-02,2,7.00,y,2\n100,2024-02-01,3,1.00,x,\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "customer_id,ts,order_id,amount,category,cost\n9,2024-03-01,4,2.00,x,1\n10,2024-03-02,1,-5.00,x,-1\n11,2024-03-03,5,3.00,z,1\n",
    )
    .unwrap();
    let inputs = vec![path_str(&a).to_string(), path_str(&b).to_string()];
    let mem = dir.join("mem.csv");
    let ints = ["--customer-id-type", "int"];
    segments(&inputs, &mem, &ints);
    let out = dir.join("str.csv");
    segments(&inputs, &out, &[&ints[..], &["--partitions", "2"]].concat());
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, std::fs::read_to_string(&mem).unwrap());
    // Numeric order: 9 before 10 before 11 before 100.
    let ids: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(ids, ["9", "10", "11", "100"]);

    std::fs::write(
        &b,
        "customer_id,ts,order_id,amount\n9,2024-03-01,4,2.00\n10,2024-13-02,1,-5.00\n",
    )
    .unwrap();
    let out2 = dir.join("bad.csv");
    bin()
        .args(["segments", "--input", path_str(&a), "--input", path_str(&b)])
        .args(["--out", path_str(&out2), "--partitions", "2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("b.csv").and(predicate::str::contains("line 3")));
    assert!(!out2.exists());
}

#[test]
fn parquet_inputs_stream_in_row_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("tx.parquet");
    bin()
        .args([
            "-q",
            "synth",
            "--rows",
            "20000",
            "--seed",
            "7",
            "--out",
            path_str(&input),
        ])
        .assert()
        .success();
    let inputs = vec![path_str(&input).to_string()];
    let mem = dir.join("mem.parquet");
    let mem_err = segments(&inputs, &mem, &[]);
    let out = dir.join("str.parquet");
    // 3,001-row batches: ranges that cut orders and customers apart.
    let err = segments(
        &inputs,
        &out,
        &["--partitions", "5", "--batch-rows", "3001"],
    );
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&mem).unwrap());
    let headline = |e: &str| e.lines().find(|l| l.starts_with("read ")).map(String::from);
    assert_eq!(headline(&err), headline(&mem_err));
    assert!(headline(&err).unwrap().contains("from 1 file"), "{err}");
}

#[test]
fn a_nightly_run_can_score_out_of_core() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let inputs = split_sample(dir);
    let files: Vec<String> = inputs[..3].iter().map(|i| format!("{i:?}")).collect();
    for (name, extra) in [("mem", ""), ("str", "partitions = 4\nbatch_rows = 1000\n")] {
        std::fs::write(
            dir.join(format!("{name}.toml")),
            format!(
                "[input]\nfiles = [{}]\n[columns]\ncategory = \"category\"\ncost = \"cost\"\n\
                 [run]\noutput_dir = {:?}\nsegments_format = \"csv\"\n{extra}",
                files.join(", "),
                path_str(&dir.join(name))
            ),
        )
        .unwrap();
        bin()
            .args([
                "-q",
                "run",
                "--config",
                path_str(&dir.join(format!("{name}.toml"))),
            ])
            .assert()
            .success();
    }
    let (mem, str_) = (dir.join("mem/latest"), dir.join("str/latest"));
    assert!(mem.join("report.html").exists() && !str_.join("report.html").exists());
    for name in [
        "segments.csv",
        "money_deciles.csv",
        "purchase_deciles.csv",
        "whale_curve.csv",
        "profit.json",
        "segment_sizes.csv",
    ] {
        assert!(
            std::fs::read(mem.join(name)).unwrap() == std::fs::read(str_.join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn streaming_gives_the_same_file_at_any_thread_count() {
    // The pipelined passes (a batch scattered while the next loads, a partition read
    // while the last is worked on) must not let the threads' timing into the output.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let inputs = split_sample(dir);
    let reference = dir.join("mem.csv");
    segments(&inputs, &reference, &["--on-bad-rows", "skip"]);
    for threads in ["1", "2", "8"] {
        for parts in ["2", "5"] {
            let out = dir.join(format!("t{threads}-p{parts}.csv"));
            let streamed = ["--on-bad-rows", "skip", "--partitions", parts];
            segments_with(&["--threads", threads], &inputs, &out, &streamed);
            assert!(
                std::fs::read(&out).unwrap() == std::fs::read(&reference).unwrap(),
                "{threads} threads, {parts} partitions"
            );
        }
    }
}

#[test]
fn a_memory_limit_below_the_input_scores_out_of_core_with_the_same_bytes() {
    // The split sample (30,009 lines, estimated at 29,989 from the files' sizes) takes
    // about 3.6 MB in memory at 120 bytes a line: under a
    // 1 MB limit they are scored out of core, with partitions chosen to fit (an eighth
    // of the limit each: 32), and the file equals the in-memory one byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let inputs = split_sample(dir.path());
    let (memory, limited) = (
        dir.path().join("memory.csv"),
        dir.path().join("limited.csv"),
    );
    let said = segments(&inputs, &memory, &["--on-bad-rows", "skip"]);
    assert!(
        said.contains("scoring in memory: about 29,989 lines"),
        "{said}"
    );
    assert!(said.contains("within the memory limit of"), "{said}");
    let said = segments(
        &inputs,
        &limited,
        &["--on-bad-rows", "skip", "--memory-limit", "1MB"],
    );
    assert!(
        said.contains("scoring out of core in 32 partitions: about 29,989 lines")
            && said.contains("over the memory limit of 1 MiB"),
        "{said}"
    );
    assert_eq!(
        std::fs::read(&limited).unwrap(),
        std::fs::read(&memory).unwrap()
    );
    // A size that is not one is refused before anything is read.
    bin()
        .args(["segments", "--input", &inputs[0], "--memory-limit", "lots"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("write a size like 2GiB"));
}
