//! The summary against an independent, straightforward computation of JOB.md on random
//! transactions, and its invariants.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

/// One generated line: customer, day offset, order (None = by ts), cents, category.
type Line = (u8, u8, Option<u8>, i32, Option<u8>);

fn csv_of(lines: &[Line]) -> String {
    let mut s = String::from("customer_id,ts,order_id,amount,category\n");
    for (c, d, o, cents, cat) in lines {
        let day = 1 + *d as u32 % 28;
        let hour = *d as u32 % 3 + 9;
        s.push_str(&format!(
            "c{c},2024-02-{day:02}T{hour:02}:00:00,{},{}{}.{:02},{}\n",
            o.map(|o| format!("o{o}")).unwrap_or_default(),
            if *cents < 0 { "-" } else { "" },
            cents.abs() / 100,
            cents.abs() % 100,
            cat.map(|k| format!("k{k}")).unwrap_or_default(),
        ));
    }
    s
}

/// JOB.md's definitions, computed the obvious way.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    monetary: i64,
    first: Option<u32>,
    last: Option<u32>,
    orders: BTreeSet<String>,
    categories: BTreeSet<u8>,
}

fn expected(lines: &[Line]) -> BTreeMap<String, Expected> {
    let mut m: BTreeMap<String, Expected> = BTreeMap::new();
    for (c, d, o, cents, cat) in lines {
        let e = m.entry(format!("c{c}")).or_default();
        e.monetary += i64::from(*cents);
        if *cents > 0 {
            let day = 1 + *d as u32 % 28;
            let hour = *d as u32 % 3 + 9;
            e.first = Some(e.first.map_or(day, |f| f.min(day)));
            e.last = Some(e.last.map_or(day, |l| l.max(day)));
            e.orders.insert(match o {
                Some(o) => format!("id{o}"),
                None => format!("ts{day}-{hour}"),
            });
            if let Some(k) = cat {
                e.categories.insert(*k);
            }
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn summary_equals_a_direct_computation(
        lines in proptest::collection::vec(
            (0u8..12, 0u8..90, proptest::option::of(0u8..6), -3000i32..20000, proptest::option::of(0u8..4)),
            1..120,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tx.csv");
        std::fs::write(&path, csv_of(&lines)).unwrap();
        let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
        prop_assert_eq!(loaded.report.rows_read, lines.len() as u64);
        prop_assert_eq!(loaded.report.rows_used + loaded.report.rows_rejected, loaded.report.rows_read);
        let s = custvalue::summarize(&loaded.transactions).unwrap();
        let want = expected(&lines);
        // Every customer exactly once, in id order.
        let ids: Vec<String> = (0..s.len()).map(|c| s.ids.display(c)).collect();
        prop_assert_eq!(&ids, &want.keys().cloned().collect::<Vec<_>>());
        let total: i64 = lines.iter().map(|l| i64::from(l.3)).sum();
        prop_assert_eq!(s.total_monetary(), i128::from(total));
        let feb1 = custvalue::time::parse_iso_date("2024-02-01").unwrap();
        for (c, (_, e)) in want.iter().enumerate() {
            prop_assert_eq!(s.monetary[c], e.monetary);
            prop_assert_eq!(s.profit[c], e.monetary);
            prop_assert_eq!(s.frequency[c] as usize, e.orders.len());
            prop_assert_eq!(s.n_categories[c] as usize, e.categories.len());
            prop_assert_eq!(s.first_purchase[c], e.first.map(|d| feb1 + d as i32 - 1));
            prop_assert_eq!(s.last_purchase[c], e.last.map(|d| feb1 + d as i32 - 1));
        }
    }
}
