//! Scoring: RFM, segments, deciles, 20/80/30, best customers and lifecycle on
//! hand-computed fixtures (the working is in the comments).

use predicates::prelude::*;

use crate::common::{bin, fixture, path_str};

/// The scoring columns of the segment file for tests/fixtures/hand.csv, worked by hand:
/// R by recency desc (F 91, E 87, 9 60, 10 59, A 46, C 22, G 17, D 1 → sizes 2,2,2,1,1),
/// F by frequency asc then id (9 D E F G 10 A C), M by monetary asc then id
/// (D F G E C A 10 9), money deciles by monetary desc then id (10 9 A C E G F D B).
/// Next category: the pairs by lift are (a,b) (b,a) (bread,milk) (milk,bread) at 8,
/// (books,music) (music,books) at 4, (cheese,wine) (wine,cheese) at 8/3; customer 9 bought
/// books only → music; E and G bought wine only → cheese; nobody else has a pair to offer.
const HAND_SCORES: &str = "\
r_score,f_score,m_score,rfm_cell,rfm_score,segment,decile,best_customer,stage,reactivated,next_category
2,3,4,234,9,At risk,1,false,new,false,
2,1,5,215,8,Hibernating,2,false,new,false,music
3,4,3,343,10,Loyal,3,false,new,false,
,,,,,,9,false,,false,
3,5,3,353,11,Loyal,4,false,new,false,
5,1,1,511,7,New,8,false,new,false,
1,2,2,122,5,Lost,5,false,new,false,cheese
1,2,1,121,4,Lost,7,false,active,false,
4,3,2,432,9,Potential loyalist,6,false,new,false,cheese
";

#[test]
fn segment_file_matches_the_hand_computed_scores() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seg.csv");
    bin()
        .args([
            "segments",
            "-i",
            path_str(&fixture("hand.csv")),
            "-o",
            path_str(&out),
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Loyal")
                .and(predicate::str::contains("best customers: 0 of 9")),
        );
    let text = std::fs::read_to_string(&out).unwrap();
    let summary = std::fs::read_to_string(fixture("hand_summary.csv")).unwrap();
    for ((line, want_scores), want_summary) in
        text.lines().zip(HAND_SCORES.lines()).zip(summary.lines())
    {
        assert_eq!(line, format!("{want_summary},{want_scores}"));
    }
    assert_eq!(text.lines().count(), 10);
}

#[test]
fn deciles_and_profit_by_hand() {
    let s = {
        let loaded = custvalue::load(&custvalue::LoadOptions::new([path_str(&fixture(
            "hand.csv",
        ))]))
        .unwrap();
        custvalue::summarize(&loaded.transactions).unwrap()
    };
    let money =
        custvalue::deciles::money_deciles(&s, &custvalue::deciles::assign(&s, Default::default()));
    let customers: Vec<u64> = money.iter().map(|d| d.customers).collect();
    assert_eq!(customers, vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    assert_eq!(money[0].revenue, 10_000);
    assert_eq!(money[8].revenue, -1_200);
    assert_eq!(money[9].min_monetary, None);
    // Total revenue 24,041 cents.
    assert_eq!(s.total_monetary(), 24_041);
    assert_eq!(money[1].cum_revenue_share, Some(20_000.0 / 24_041.0));
    let purchase = custvalue::deciles::purchase_deciles(&s);
    let counts: Vec<u64> = purchase.iter().map(|p| p.customers).collect();
    // Positives sum to T = 25,241; running sums 10,000 → slice 4, 20,000 → 8, then 10.
    assert_eq!(counts, vec![0, 0, 0, 1, 0, 0, 0, 1, 0, 6, 1]);
    assert_eq!(purchase[10].revenue, -1_200);
    assert_eq!(purchase[3].customer_share, 1.0 / 9.0);

    let v = custvalue::profit::profit_view(&s);
    assert_eq!(v.total_profit, 23_441);
    assert_eq!((v.top20_customers, v.top20_profit), (2, 20_000));
    assert_eq!((v.bottom30_customers, v.bottom30_profit), (3, -209));
    assert_eq!(v.profit_without_bottom30, 23_650);
    assert_eq!(v.whale_peak, Some(23_841.0 / 23_441.0));
    assert_eq!(v.whale_peak_customer_share, Some(0.78));
    assert_eq!(v.gini, Some(126_575.0 / 201_928.0));
}

#[test]
fn best_customers_and_reactivation_by_hand() {
    let mut opts = custvalue::LoadOptions::new([path_str(&fixture("best.csv"))]);
    opts.as_of = custvalue::time::parse_iso_date("2024-01-01");
    let loaded = custvalue::load(&opts).unwrap();
    let seg = custvalue::segment(&loaded.transactions, &Default::default()).unwrap();
    let ids: Vec<String> = (0..seg.summary.len())
        .map(|c| seg.summary.ids.display(c))
        .collect();
    assert_eq!(ids, ["W", "X", "Y", "Z"]);
    // W: 1,500 − 600 of returns = 900 < 1,000; X: 1,200 over 6 orders and 4 categories in
    // the window (its 5,000 on 2022-12-31 is outside); Y: 999.99; Z: 2 orders.
    assert_eq!(seg.best.best, vec![false, true, false, false]);
    assert_eq!(seg.best.spend, vec![90_000, 120_000, 99_999, 10_000]);
    assert_eq!(seg.best.orders, vec![6, 6, 6, 1]);
    assert_eq!(seg.best.categories, vec![4, 4, 4, 1]);
    // Z bought 2021-06-01 and again 2023-06-02: 731 days apart.
    assert_eq!(seg.lifecycle.reactivated, vec![false, false, false, true]);
    let stages: Vec<&str> = seg
        .lifecycle
        .stage
        .iter()
        .map(|s| s.unwrap().name())
        .collect();
    assert_eq!(stages, ["active", "active", "active", "at_risk"]);
}

#[test]
fn rfm_deciles_profit_commands_print_and_write() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("hand.csv");
    bin()
        .args(["rfm", "-i", path_str(&input), "-o"])
        .arg(dir.path().join("rfm.parquet"))
        .assert()
        .success()
        .stdout(predicate::str::contains("Potential loyalist"));
    bin()
        .args(["deciles", "-i", path_str(&input), "-o"])
        .arg(dir.path().join("money.csv"))
        .arg("--purchase-out")
        .arg(dir.path().join("purchase.csv"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "the top 10% of customers bring 41.6% of revenue (the top 20%: 83.2%); 0.0% of customers make the first 10% of revenue",
        ));
    let money = std::fs::read_to_string(dir.path().join("money.csv")).unwrap();
    assert!(money.starts_with("decile,customers,revenue,revenue_share,profit,profit_share,cum_revenue_share,cum_profit_share,min_monetary,max_monetary\n1,1,100,"));
    let purchase = std::fs::read_to_string(dir.path().join("purchase.csv")).unwrap();
    assert!(
        purchase.ends_with(",1,0.1111111111111111,-12\n"),
        "{purchase}"
    );
    let out = bin()
        .args(["-q", "profit", "-i", path_str(&input), "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["total_profit"], 234.41);
    assert_eq!(json["bottom30_profit"], -2.09);
    assert_eq!(json["whale_curve"].as_array().unwrap().len(), 101);
    bin()
        .args(["rfm", "-i", path_str(&input), "--k", "7"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("3, 4, 5 or 10"));
}

#[test]
fn user_segment_tables_replace_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("seg.toml");
    std::fs::write(
        &rules,
        "otherwise = \"Rest\"\n[[segment]]\nname = \"Top\"\nm = [5, 5]\n",
    )
    .unwrap();
    let out = dir.path().join("rfm.csv");
    bin()
        .args([
            "-q",
            "rfm",
            "-i",
            path_str(&fixture("hand.csv")),
            "--segments",
            path_str(&rules),
            "-o",
            path_str(&out),
        ])
        .assert()
        .success();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.matches(",Top\n").count(), 1, "{text}");
    assert_eq!(text.matches(",Rest\n").count(), 7, "{text}");
    std::fs::write(&rules, "[[segment]]\nname = \"Top\"\nmm = [5, 5]\n").unwrap();
    bin()
        .args([
            "rfm",
            "-i",
            path_str(&fixture("hand.csv")),
            "--segments",
            path_str(&rules),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("mm"));
}
