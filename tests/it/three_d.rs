//! Customer × product × behaviour: the cube, cohort retention, category affinity and
//! next category on a hand-computed fixture (the working is in the comments), and their
//! invariants on random transactions.
//!
//! tests/fixtures/three_d.csv, as-of 2024-05-01 (the day after G's last line):
//!
//! | customer | lines (amount, category, order)                                     | monetary |
//! |----------|---------------------------------------------------------------------|----------|
//! | A        | Jan 5 A1: 30 wine, 10 bread; Mar 10 A2: 20 wine; Mar 12 A3: −5 wine   | 55       |
//! | B        | Jan 20 B1: 15 cheese, 25 wine, 2 (none); Apr 2 B2: 8 cheese           | 50       |
//! | C        | Feb 14 C1: 12 cheese, 18 wine                                         | 30       |
//! | D        | Feb 20 D0: −3 (none); Mar 1 D1: 40 wine, 20 cheese, 10 bread; Apr 20 D2: −10 bread | 57 |
//! | E        | Feb 1 E1: −12 wine (only a return: frequency 0)                       | −12      |
//! | F        | Apr 5 F1: 7 (none)                                                    | 7        |
//! | G        | Jan 30 G1: 9 wine; Apr 30 G2: 11 wine                                 | 20       |
//!
//! Total revenue 207.00. By category: (none) 2 − 3 + 7 = 6; bread 10 + 10 − 10 = 10;
//! cheese 15 + 8 + 12 + 20 = 55; wine 45 + 25 + 18 + 40 − 12 + 20 = 136.

use std::collections::{BTreeMap, BTreeSet};

use predicates::prelude::*;
use proptest::prelude::*;

use custvalue::cube::{Dimension, Groups};

use crate::common::{bin, fixture, path_str};

fn run_to_csv(args: &[&str], name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    let mut cmd = bin();
    cmd.args(["-q"]).args(args).args([
        "-i",
        path_str(&fixture("three_d.csv")),
        "-o",
        path_str(&out),
    ]);
    cmd.assert().success();
    std::fs::read_to_string(&out).unwrap()
}

fn cents(text: &str) -> i64 {
    (text.parse::<f64>().unwrap() * 100.0).round() as i64
}

fn opt_f64(text: &str) -> Option<f64> {
    (!text.is_empty()).then(|| text.parse().unwrap())
}

/// Checks a cube file against (group, category, customers, orders, revenue in cents),
/// with penetration, share and index computed from the group's size and revenue and the
/// category's revenue and the total, by JOB.md's formulas.
fn check_cube(
    text: &str,
    header: &str,
    want: &[(&str, &str, u64, u64, i64)],
    groups: &BTreeMap<&str, (u64, i64)>,
    categories: &BTreeMap<&str, i64>,
) {
    let total: i64 = categories.values().sum();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(header));
    let got: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(got.len(), want.len(), "{text}");
    for (row, &(group, category, customers, orders, revenue)) in got.iter().zip(want) {
        let (size, group_revenue) = groups[group];
        assert_eq!(
            (row[0], row[1], row[2].parse::<u64>().unwrap()),
            (group, category, customers)
        );
        assert_eq!(row[3].parse::<u64>().unwrap(), orders, "{row:?}");
        assert_eq!(cents(row[4]), revenue, "{row:?}");
        assert_eq!(
            row[5].parse::<f64>().unwrap(),
            customers as f64 / size as f64
        );
        let share = (group_revenue > 0).then(|| revenue as f64 / group_revenue as f64);
        let category_share = categories[category] as f64 / total as f64;
        assert_eq!(opt_f64(row[6]), share, "{row:?}");
        assert_eq!(
            opt_f64(row[7]),
            share.map(|s| 100.0 * s / category_share),
            "{row:?}"
        );
    }
}

#[test]
fn cube_by_decile_by_hand() {
    // Money deciles, monetary descending: D 57 (1), A 55 (2), B 50 (3), C 30 (4),
    // G 20 (5), F 7 (6), E −12 (7): one customer each.
    let text = run_to_csv(&["cube", "--by", "decile"], "cube.csv");
    let groups = BTreeMap::from([
        ("1", (1, 5700)),
        ("2", (1, 5500)),
        ("3", (1, 5000)),
        ("4", (1, 3000)),
        ("5", (1, 2000)),
        ("6", (1, 700)),
        ("7", (1, -1200)),
    ]);
    let categories = BTreeMap::from([
        ("(none)", 600),
        ("bread", 1000),
        ("cheese", 5500),
        ("wine", 13600),
    ]);
    let want = [
        // D: the (none) return is a line but no purchase; bread 10 − 10 = 0 still has
        // a purchase line (one customer, one order).
        ("1", "(none)", 0, 0, -300),
        ("1", "bread", 1, 1, 0),
        ("1", "cheese", 1, 1, 2000),
        ("1", "wine", 1, 1, 4000),
        // A: a return inside wine (30 + 20 − 5); the return's order A3 is not counted.
        ("2", "bread", 1, 1, 1000),
        ("2", "wine", 1, 2, 4500),
        ("3", "(none)", 1, 1, 200),
        ("3", "cheese", 1, 2, 2300),
        ("3", "wine", 1, 1, 2500),
        ("4", "cheese", 1, 1, 1200),
        ("4", "wine", 1, 1, 1800),
        ("5", "wine", 1, 2, 2000),
        ("6", "(none)", 1, 1, 700),
        // E's decile has revenue −12 ≤ 0: share and index are null.
        ("7", "wine", 0, 0, -1200),
    ];
    check_cube(
        &text,
        "decile,category,customers,orders,revenue,penetration,share,index",
        &want,
        &groups,
        &categories,
    );
    assert!(text.ends_with("\n7,wine,0,0,-12,0,,\n"), "{text}");
}

#[test]
fn cube_by_stage_leaves_out_customers_without_a_purchase() {
    // Tenure and recency at 2024-05-01: C (77 days), D (61), F (26) are new; A (tenure
    // 117, recency 52), B (102, 29), G (92, 1) active; E has no stage and is left out, so
    // the denominators are over the six others: wine 136 + 12 = 148, total 219.
    let text = run_to_csv(&["cube", "--by", "stage"], "cube.csv");
    let groups = BTreeMap::from([("new", (3, 9400)), ("active", (3, 12500))]);
    let categories = BTreeMap::from([
        ("(none)", 600),
        ("bread", 1000),
        ("cheese", 5500),
        ("wine", 14800),
    ]);
    let want = [
        ("new", "(none)", 1, 1, 400),
        ("new", "bread", 1, 1, 0),
        ("new", "cheese", 2, 2, 3200),
        ("new", "wine", 2, 2, 5800),
        ("active", "(none)", 1, 1, 200),
        ("active", "bread", 1, 1, 1000),
        ("active", "cheese", 1, 2, 2300),
        // A (A1, A2), B (B1), G (G1, G2).
        ("active", "wine", 3, 5, 9000),
    ];
    check_cube(
        &text,
        "stage,category,customers,orders,revenue,penetration,share,index",
        &want,
        &groups,
        &categories,
    );
}

#[test]
fn cube_by_cohort_and_segment_name_their_group_column() {
    let text = run_to_csv(&["cube", "--by", "cohort"], "cube.csv");
    // Cohorts: 2024-01 {A, B, G}, 2024-02 {C}, 2024-03 {D}, 2024-04 {F}.
    assert!(text.starts_with("cohort,category,customers,orders,revenue,penetration,share,index\n2024-01,(none),1,1,2,0.3333333333333333,"));
    // F alone in 2024-04: 100 × 1 / (6 / 219) = 3650.
    assert!(
        text.ends_with("\n2024-04,(none),1,1,7,1,1,3650\n"),
        "{text}"
    );
    let text = run_to_csv(&["cube", "--by", "segment"], "cube.csv");
    assert!(text.starts_with("segment,category,"));
    // Segments in table order: Loyal, At risk, Potential loyalist, Lost; E has none.
    let order: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let mut distinct = order.clone();
    distinct.dedup();
    assert_eq!(distinct, ["Loyal", "At risk", "Potential loyalist", "Lost"]);
}

#[test]
fn cube_prints_the_heat_table_and_its_reading() {
    // The largest index outside (none): decile 2 (A) buys bread for 10 of 55 while bread
    // is 10 of 207: 100 × (10/55) / (10/207) = 376.
    bin()
        .args(["cube", "-i", path_str(&fixture("three_d.csv"))])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("decile 2 over-buys bread: index 376").and(
                predicate::str::contains("     2          1           376+          125+"),
            ),
        );
    let out = bin()
        .args([
            "-q",
            "cube",
            "-i",
            path_str(&fixture("three_d.csv")),
            "--by",
            "stage",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["by"], "stage");
    assert_eq!(json["headline"], "stage active over-buys bread: index 175");
    assert_eq!(json["cube"].as_array().unwrap().len(), 8);
    assert_eq!(json["cube"][7]["orders"], 5);
    bin()
        .args([
            "cube",
            "-i",
            path_str(&fixture("three_d.csv")),
            "--by",
            "brand",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("decile, segment, stage or cohort"));
}

#[test]
fn cohort_triangle_by_hand() {
    // Last period: April (as-of 2024-05-01 − 1 day). E has no cohort.
    // 2024-01 {A, B, G}: Jan all three (40 + 42 + 9 = 91); Feb nobody (a zero row); Mar A
    // (20 − 5 = 15); Apr B and G (8 + 11 = 19).
    // 2024-02 {C}: Feb 30, then two empty months.
    // 2024-03 {D}: Mar 70 (D0's −3 in Feb is before the cohort month: left out); Apr only
    // a return (−10): nobody active.
    // 2024-04 {F}: Apr 7.
    let text = run_to_csv(&["cohorts"], "cohorts.csv");
    assert_eq!(
        text,
        "\
cohort,period,cohort_size,active,retention,revenue
2024-01,0,3,3,1,91
2024-01,1,3,0,0,0
2024-01,2,3,1,0.3333333333333333,15
2024-01,3,3,2,0.6666666666666666,19
2024-02,0,1,1,1,30
2024-02,1,1,0,0,0
2024-02,2,1,0,0,0
2024-03,0,1,1,1,70
2024-03,1,1,0,0,-10
2024-04,0,1,1,1,7
"
    );
    bin()
        .args(["cohorts", "-i", path_str(&fixture("three_d.csv"))])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "2024-01          3  100.0%  0.0%  33.3%  66.7%\n2024-02          1  100.0%  0.0%   0.0%\n",
        ));
}

#[test]
fn affinity_ties_and_next_category_by_hand() {
    // N = 6 (E has no purchase; F bought only (none), so nothing). Bought:
    // A {bread, wine}, B {cheese, wine}, C {cheese, wine}, D {bread, cheese, wine},
    // G {wine}: n_bread 2, n_cheese 3, n_wine 5; both: cheese-wine 3, bread-wine 2,
    // bread-cheese 1.
    // lift(cheese, wine) = 3·6/(3·5) = 6/5 = lift(bread, wine) = 2·6/(2·5): an exact tie,
    // broken by both (3 before 2), then A; bread-cheese 1·6/(2·3) = 1.
    let text = run_to_csv(&["affinity"], "affinity.csv");
    assert_eq!(
        text,
        "\
category_a,category_b,both,support,confidence,lift
cheese,wine,3,0.5,1,1.2
wine,cheese,3,0.5,0.6,1.2
bread,wine,2,0.3333333333333333,1,1.2
wine,bread,2,0.3333333333333333,0.4,1.2
bread,cheese,1,0.16666666666666666,0.5,1
cheese,bread,1,0.16666666666666666,0.3333333333333333,1
"
    );
    // Next category: the first pair whose A they bought and B they did not.
    // A: (wine, cheese); B, C: (wine, bread); D bought every category; E has no
    // purchase; F bought no category; G: (wine, cheese).
    let loaded = custvalue::load(&custvalue::LoadOptions::new([path_str(&fixture(
        "three_d.csv",
    ))]))
    .unwrap();
    let tx = &loaded.transactions;
    let s = custvalue::summarize(tx).unwrap();
    let aff = custvalue::affinity::affinity(tx, &s);
    let next = custvalue::affinity::next_category(tx, &s, &aff.pairs);
    let want = [
        Some("cheese"),
        Some("bread"),
        Some("bread"),
        None,
        None,
        None,
        Some("cheese"),
    ];
    assert_eq!(next, want.map(|w| w.map(String::from)));
    bin()
        .args([
            "affinity",
            "-i",
            path_str(&fixture("three_d.csv")),
            "--top",
            "2",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Top 2 of 6 category pairs")
                .and(predicate::str::contains("bread     wine").not())
                .and(predicate::str::contains("an offer for 4 of 6 customers")),
        );
    let out = bin()
        .args([
            "-q",
            "affinity",
            "-i",
            path_str(&fixture("three_d.csv")),
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["customers"], 6);
    assert_eq!(json["top"][2]["category_a"], "bread");
    assert_eq!(json["top"][2]["lift"], 1.2);
}

#[test]
fn outputs_are_identical_at_one_and_four_threads() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["cube", "--by", "cohort"],
        vec!["cohorts"],
        vec!["affinity"],
    ] {
        let mut outputs = Vec::new();
        for threads in ["1", "4"] {
            let out = dir.path().join(format!("{}{threads}.parquet", args[0]));
            bin()
                .args(["--threads", threads, "-q"])
                .args(&args)
                .args([
                    "-i",
                    path_str(&crate::common::sample("transactions.csv")),
                    "-o",
                    path_str(&out),
                ])
                .assert()
                .success();
            outputs.push(std::fs::read(&out).unwrap());
        }
        assert_eq!(outputs[0], outputs[1], "{args:?}");
    }
}

/// Customers and (customer, order) pairs with a purchase line in one cube cell.
type Buyers = (BTreeSet<usize>, BTreeSet<(usize, u64)>);

/// One generated line: customer, day offset, order (None = by ts), cents, category.
type Line = (u8, u16, Option<u8>, i32, Option<u8>);

fn csv_of(lines: &[Line]) -> String {
    let jan1 = custvalue::time::parse_iso_date("2023-01-01").unwrap();
    let mut s = String::from("customer_id,ts,order_id,amount,category\n");
    for (c, d, o, cents, cat) in lines {
        s.push_str(&format!(
            "c{c},{},{},{}{}.{:02},{}\n",
            custvalue::time::format_day(jan1 + i32::from(*d)),
            o.map(|o| format!("o{o}")).unwrap_or_default(),
            if *cents < 0 { "-" } else { "" },
            cents.abs() / 100,
            cents.abs() % 100,
            cat.map(|k| format!("k{k}")).unwrap_or_default(),
        ));
    }
    s
}

fn lines_strategy() -> impl Strategy<Value = Vec<Line>> {
    proptest::collection::vec(
        (
            0u8..15,
            0u16..400,
            proptest::option::of(0u8..5),
            -3000i32..20000,
            proptest::option::of(0u8..6),
        ),
        1..150,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn cube_cohort_and_affinity_invariants(lines in lines_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tx.csv");
        std::fs::write(&path, csv_of(&lines)).unwrap();
        let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
        let tx = &loaded.transactions;
        let seg = custvalue::segment(tx, &Default::default()).unwrap();
        let s = &seg.summary;

        // The cube, along every dimension.
        for dim in [Dimension::Decile, Dimension::Segment, Dimension::Stage, Dimension::Cohort] {
            let groups = Groups::of(dim, &seg);
            let cube = custvalue::cube::cube(tx, &groups).unwrap();
            let mut size = vec![0u64; groups.labels.len()];
            let mut group_revenue = vec![0i64; groups.labels.len()];
            let mut category_revenue: BTreeMap<&str, i64> = BTreeMap::new();
            for c in 0..s.len() {
                let Some(g) = groups.of[c] else { continue };
                size[g as usize] += 1;
                group_revenue[g as usize] += s.monetary[c];
                for i in tx.lines(c) {
                    let name = match tx.category[i] {
                        custvalue::transactions::NO_CATEGORY => custvalue::cube::NONE_CATEGORY,
                        k => tx.categories[k as usize].as_str(),
                    };
                    *category_revenue.entry(name).or_default() += tx.amount[i];
                }
            }
            prop_assert_eq!(&cube.group_customers, &size);
            // Customers and orders per cell, counted directly.
            let mut buyers: BTreeMap<(usize, &str), Buyers> = BTreeMap::new();
            for c in 0..s.len() {
                let Some(g) = groups.of[c] else { continue };
                for i in tx.lines(c).filter(|&i| tx.amount[i] > 0) {
                    let name = match tx.category[i] {
                        custvalue::transactions::NO_CATEGORY => custvalue::cube::NONE_CATEGORY,
                        k => tx.categories[k as usize].as_str(),
                    };
                    let cell = buyers.entry((g as usize, name)).or_default();
                    cell.0.insert(c);
                    cell.1.insert((c, tx.order[i]));
                }
            }
            for r in &cube.rows {
                let (who, orders) = buyers
                    .remove(&(r.group, cube.categories[r.category].as_str()))
                    .unwrap_or_default();
                prop_assert_eq!((r.customers, r.orders), (who.len() as u64, orders.len() as u64));
            }
            prop_assert!(buyers.is_empty());
            let mut by_group = vec![0i64; size.len()];
            let mut by_category: BTreeMap<&str, i64> = BTreeMap::new();
            for (i, r) in cube.rows.iter().enumerate() {
                prop_assert!(r.customers <= size[r.group]);
                prop_assert!(r.customers <= r.orders);
                prop_assert!((0.0..=1.0).contains(&r.penetration));
                if i > 0 {
                    let p = &cube.rows[i - 1];
                    prop_assert!((p.group, p.category) < (r.group, r.category));
                }
                by_group[r.group] += r.revenue;
                *by_category.entry(cube.categories[r.category].as_str()).or_default() += r.revenue;
                prop_assert_eq!(r.share.is_none(), group_revenue[r.group] <= 0);
            }
            // Σ over categories = the group's revenue; Σ over groups = the category's.
            prop_assert_eq!(&by_group, &group_revenue);
            prop_assert_eq!(&by_category, &category_revenue);
            prop_assert_eq!(cube.total_revenue, category_revenue.values().sum::<i64>());
            let names: Vec<&str> = cube.categories.iter().map(String::as_str).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            prop_assert_eq!(names, sorted);
        }

        // Cohorts.
        let triangle = custvalue::cohorts::cohorts(tx, s).unwrap();
        let mut cohort_size: BTreeMap<String, u64> = BTreeMap::new();
        let last = custvalue::cohorts::month_index(tx.as_of - 1);
        for c in 0..s.len() {
            if let Some(d) = s.first_purchase[c] {
                let m = custvalue::cohorts::month_index(d);
                if m <= last {
                    *cohort_size.entry(custvalue::cohorts::month_label(m)).or_default() += 1;
                }
            }
        }
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        for r in &triangle.rows {
            prop_assert!((0.0..=1.0).contains(&r.retention));
            prop_assert!(r.active <= r.cohort_size);
            prop_assert_eq!(r.cohort_size, cohort_size[&r.cohort]);
            let k = seen.entry(r.cohort.clone()).or_default();
            prop_assert_eq!(r.period, *k);
            *k += 1;
            if r.period == 0 {
                prop_assert_eq!(r.retention, 1.0);
            }
        }
        // Every cohort runs to the last month.
        for (cohort, periods) in &seen {
            let m = 12 * cohort[..4].parse::<i32>().unwrap() + cohort[5..].parse::<i32>().unwrap() - 1;
            prop_assert_eq!(*periods as i32, last - m + 1);
        }
        prop_assert_eq!(seen.len(), cohort_size.len());

        // Affinity against a direct count.
        let aff = custvalue::affinity::affinity(tx, s);
        let bought: Vec<BTreeSet<u32>> = (0..s.len())
            .map(|c| {
                tx.lines(c)
                    .filter(|&i| s.frequency[c] > 0 && tx.amount[i] > 0 && tx.category[i] != custvalue::transactions::NO_CATEGORY)
                    .map(|i| tx.category[i])
                    .collect()
            })
            .collect();
        let n = s.frequency.iter().filter(|&&f| f > 0).count() as u64;
        prop_assert_eq!(aff.customers, n);
        let mut lifts: BTreeMap<(u32, u32), f64> = BTreeMap::new();
        for (i, p) in aff.pairs.iter().enumerate() {
            let both = bought.iter().filter(|b| b.contains(&p.a) && b.contains(&p.b)).count() as u64;
            let n_a = bought.iter().filter(|b| b.contains(&p.a)).count() as u64;
            prop_assert_eq!((p.both, p.n_a), (both, n_a));
            prop_assert!(p.a != p.b && p.both > 0);
            let lift = p.lift();
            prop_assert_eq!(lift, (both * n) as f64 / (n_a * p.n_b) as f64);
            lifts.insert((p.a, p.b), lift);
            if i > 0 {
                let q = &aff.pairs[i - 1];
                prop_assert!(q.rank_cmp(p).is_lt());
                // The exact order agrees with the float lift where they differ clearly.
                prop_assert!(q.lift() >= p.lift() - 1e-12);
            }
        }
        let together = (0..aff.categories.len() as u32)
            .flat_map(|a| (0..aff.categories.len() as u32).map(move |b| (a, b)))
            .filter(|&(a, b)| a != b && bought.iter().any(|s| s.contains(&a) && s.contains(&b)))
            .count();
        prop_assert_eq!(together, aff.pairs.len());
        for (&(a, b), &lift) in &lifts {
            prop_assert_eq!(lifts[&(b, a)], lift);
        }
        // Next category: never one the customer bought, and the first qualifying pair.
        let next = custvalue::affinity::next_category_codes(tx, s, &aff.pairs);
        for (c, set) in bought.iter().enumerate() {
            let want = aff.pairs.iter().find(|p| set.contains(&p.a) && !set.contains(&p.b)).map(|p| p.b);
            prop_assert_eq!(next[c], want);
            if let Some(k) = next[c] {
                prop_assert!(!set.contains(&k));
            }
        }
    }
}
