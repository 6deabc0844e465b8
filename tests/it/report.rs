//! The HTML report end to end: the real binary writes the sample report; the page must
//! be self-contained (nothing to fetch, no scripts), every chart must be there with its
//! reading, and the readings must state the library's own figures. The page is also opened
//! in headless Chromium (`chromium` on `PATH`, as `.ci/run` installs it): no console
//! message (a blocked fetch or script shows up there), every chart drawn, and a screenshot
//! taken. Without Chromium that part is a failure under CI and a `NOT CHECKED` line
//! elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;

use custvalue::output::percent;

use crate::common::{bin, fixture, path_str, sample, tool};

/// Every panel of the sample report with `--model` and `--calibration-end`.
const PANELS: [&str; 12] = [
    "money-deciles",
    "purchase-deciles",
    "whale-curve",
    "rfm-heat-map",
    "lifecycle",
    "segments",
    "best-customers",
    "cube",
    "cohorts",
    "affinity",
    "clv",
    "holdout",
];

/// The panels of a report without `--model`.
const WITHOUT_MODEL: usize = 10;

const CALIBRATION_END: &str = "2024-06-30";

/// The text of the panel `<section … id="ID">…</section>`.
fn panel<'h>(html: &'h str, id: &str) -> &'h str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no panel {id}"));
    let end = html[start..]
        .find("</section>")
        .unwrap_or_else(|| panic!("panel {id} is not closed"));
    &html[start..start + end]
}

/// Undoes askama's HTML escaping.
fn unescape(text: &str) -> String {
    text.replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn reading(section: &str) -> String {
    let start = section.find("<p class=\"reading\">").expect("a reading") + 19;
    let end = start + section[start..].find("</p>").expect("reading closed");
    unescape(&section[start..end])
}

/// Shapes drawn in the data colours (not axes, grid or text) inside the panel's chart.
fn drawn_marks(section: &str) -> usize {
    let Some(start) = section.find("<svg") else {
        return 0;
    };
    let svg = &section[start..];
    let svg = &svg[..svg.find("</svg>").unwrap_or(svg.len())];
    let data = ["#1F4E79", "#5B8DB8", "#E07A1F", "#B93A32"];
    svg.split('<')
        .filter(|e| {
            ["rect ", "polyline ", "polygon ", "circle ", "path "]
                .iter()
                .any(|k| e.starts_with(k))
        })
        .filter(|e| {
            data.iter().any(|c| {
                e.contains(&format!("fill=\"{c}\"")) || e.contains(&format!("stroke=\"{c}\""))
            })
        })
        .count()
}

fn write_sample_report(dir: &Path) -> (PathBuf, String) {
    let out = dir.join("report.html");
    // From the repository root, so the page names the input as the README does.
    bin()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-q", "report", "-i", "data-samples/transactions.csv"])
        .args(["--model", "bgnbd", "--calibration-end", CALIBRATION_END])
        .args(["-o", path_str(&out)])
        .assert()
        .success()
        .stdout(predicate::str::is_empty());
    let html = std::fs::read_to_string(&out).expect("the report is written");
    (out, html)
}

#[test]
fn sample_report_is_self_contained_and_every_chart_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (out, html) = write_sample_report(dir.path());

    assert!(html.starts_with("<!DOCTYPE html>"));
    let lower = html.to_ascii_lowercase();
    for banned in [
        "http://", "https://", "<script", "<link", "<img", "<iframe", "@import", "url(",
    ] {
        assert!(!lower.contains(banned), "the report contains {banned:?}");
    }
    assert!(lower.contains("content-security-policy"));

    for id in PANELS {
        let section = panel(&html, id);
        assert!(section.contains("<svg"), "{id}: no chart");
        assert!(drawn_marks(section) >= 2, "{id}: the chart is empty");
        let text = reading(section);
        assert!(
            text.ends_with('.') && text.chars().any(|c| c.is_ascii_digit()),
            "{id}: reading {text:?}"
        );
    }

    // The readings state the library's figures, computed here independently.
    let loaded = custvalue::load(&custvalue::LoadOptions::new([path_str(&sample(
        "transactions.csv",
    ))]))
    .unwrap();
    let settings = custvalue::AnalysisSettings::default();
    let seg = custvalue::segment(&loaded.transactions, &settings).unwrap();
    let view = custvalue::profit::profit_view(&seg.summary);
    let whale = reading(panel(&html, "whale-curve"));
    let want = format!(
        "The top 20% of customers bring {} of profit",
        percent(view.top20_profit_share.unwrap())
    );
    assert!(whale.starts_with(&want), "{whale:?} should start {want:?}");

    let money = custvalue::deciles::money_deciles(&seg.summary, &seg.decile);
    let want = format!(
        "The top 10% of customers bring {} of revenue and the top 20% bring {}",
        percent(money[0].cum_revenue_share.unwrap()),
        percent(money[1].cum_revenue_share.unwrap())
    );
    assert!(reading(panel(&html, "money-deciles")).starts_with(&want));

    let best = seg.best.count();
    let want = format!("{best} customer{} (", if best == 1 { "" } else { "s" });
    assert!(reading(panel(&html, "best-customers")).starts_with(&want));
    // The best-customer table lists at most ten of them.
    let rows = panel(&html, "best-customers").matches("<tr>").count() - 1;
    assert_eq!(rows, best.min(10));

    // The customer × product × behaviour panels read as the library's headlines, and
    // come in page order: after the best customers, before lifetime value.
    let as_sentence = |h: String| {
        let mut c = h.chars();
        let first = c.next().unwrap().to_uppercase().collect::<String>();
        format!("{first}{}.", c.as_str())
    };
    let cube = custvalue::cube::cube(
        &loaded.transactions,
        &custvalue::cube::Groups::of(custvalue::cube::Dimension::Decile, &seg),
    )
    .unwrap();
    assert_eq!(reading(panel(&html, "cube")), as_sentence(cube.headline()));
    let cohorts = custvalue::cohorts::cohorts(&loaded.transactions, &seg.summary).unwrap();
    assert_eq!(
        reading(panel(&html, "cohorts")),
        as_sentence(cohorts.headline())
    );
    let affinity = custvalue::affinity::affinity(&loaded.transactions, &seg.summary);
    assert_eq!(
        reading(panel(&html, "affinity")),
        as_sentence(affinity.headline())
    );
    let at = |id: &str| html.find(&format!("id=\"{id}\"")).unwrap();
    assert!(at("best-customers") < at("cube") && at("affinity") < at("clv"));
    // Cells are labelled with their index (decile 1 × the category with the most
    // revenue, say) and with their retention; the top ten pairs are in
    // the table, the first one on top.
    let cube_svg = panel(&html, "cube");
    let top = (0..cube.categories.len())
        .max_by_key(|&k| (cube.category_revenue[k], std::cmp::Reverse(k)))
        .unwrap();
    let cell = cube
        .rows
        .iter()
        .find(|r| r.group == 0 && r.category == top)
        .unwrap();
    let name = &cube.categories[top];
    // plotters writes each text on a line of its own.
    let label = format!(">\n{:.0}\n</text>", cell.index.unwrap());
    assert!(cube_svg.contains(&format!(">\n{name}\n</text>")), "{name}");
    assert!(cube_svg.contains(&label), "{label}");
    assert!(panel(&html, "cohorts").contains(">\n100%\n</text>"));
    let pairs = panel(&html, "affinity");
    assert_eq!(pairs.matches("<tr>").count() - 1, 10);
    let first = &affinity.pairs[0];
    let name = |code: u32| affinity.categories[code as usize].as_str();
    assert!(pairs.contains(&format!(
        "<td>{}</td><td>{}</td><td class=\"num\">{}</td>",
        name(first.a),
        name(first.b),
        first.both
    )));

    let ltv = custvalue::ltv::value(
        &loaded.transactions,
        &custvalue::ltv::LtvSettings {
            calibration_end: custvalue::time::parse_iso_date(CALIBRATION_END),
            ..Default::default()
        },
    )
    .unwrap();
    let holdout = ltv.holdout.as_ref().unwrap();
    let want = format!(
        "purchases against {} actual",
        custvalue::output::thousands(holdout.total_actual)
    );
    assert!(reading(panel(&html, "holdout")).contains(&want));

    if let Some(chromium) =
        chromium("the sample report in a browser (console, charts drawn, screenshot)")
    {
        check_in_chromium(&chromium, &out, dir.path());
    }
}

#[test]
fn report_without_a_model_leaves_out_lifetime_value() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tx.csv");
    // A customer whose only line is a return, a loss-making one, and repeaters.
    std::fs::write(
        &input,
        "customer_id,ts,amount,cost\n\
         A,2024-01-02,100,40\nA,2024-03-05,80,30\nA,2024-06-01,120,50\n\
         B,2024-02-01,-20,-8\n\
         C,2024-05-01,30,45\nC,2024-06-20,10,15\n\
         D,2024-06-28,55,20\n",
    )
    .unwrap();
    let out = dir.path().join("small.html");
    let run = || {
        bin()
            .args(["-q", "report", "-i", path_str(&input), "-o", path_str(&out)])
            .assert()
            .success();
        std::fs::read(&out).unwrap()
    };
    let first = run();
    assert_eq!(first, run(), "the same input gives the same bytes");
    let html = String::from_utf8(first).unwrap();
    for id in &PANELS[..WITHOUT_MODEL] {
        assert!(panel(&html, id).contains("<svg"), "{id}");
        assert!(reading(panel(&html, id)).ends_with('.'), "{id}");
    }
    assert!(!html.contains("id=\"clv\"") && !html.contains("id=\"holdout\""));
}

/// A migration built by hand over the default segment table: ten (from, to) pairs.
fn hand_migration() -> Vec<custvalue::migration::Migration> {
    use custvalue::migration::{Migration, NEW, NO_SEGMENT, VANISHED};
    [
        // Revenue in minor units.
        (NEW, "Champions", 3, 3_000),
        ("Champions", "Champions", 40, 400_000),
        ("Champions", "Loyal", 5, 25_000),
        ("Loyal", "Loyal", 30, 90_000),
        ("Loyal", "At risk", 7, 14_000),
        ("At risk", "At risk", 10, 10_000),
        ("At risk", "Lost", 2, 1_000),
        ("Lost", "Lost", 1200, 60_000),
        ("Lost", VANISHED, 4, 800),
        (NO_SEGMENT, "Loyal", 1, 7_500),
    ]
    .into_iter()
    .map(|(from, to, customers, revenue)| Migration {
        from: from.into(),
        to: to.into(),
        customers,
        revenue,
    })
    .collect()
}

/// The `<svg>…</svg>` of a panel, split into its elements.
fn svg_elements(section: &str) -> Vec<&str> {
    let start = section.find("<svg").expect("a chart");
    let end = start
        + section[start..]
            .find("</svg>")
            .expect("the chart is closed");
    section[start..end].split('<').collect()
}

fn attribute<'e>(element: &'e str, name: &str) -> Option<&'e str> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + element[start..].find('"')?;
    Some(&element[start..end])
}

#[test]
fn migration_panel_reads_the_moves_and_draws_one_cell_per_pair() {
    let loaded = custvalue::load(&custvalue::LoadOptions::new([path_str(&fixture(
        "hand.csv",
    ))]))
    .unwrap();
    let settings = custvalue::AnalysisSettings::default();
    let seg = custvalue::segment(&loaded.transactions, &settings).unwrap();
    let moves = hand_migration();
    let render = |migration| {
        custvalue::report::render(&custvalue::report::ReportInput {
            title: custvalue::report::DEFAULT_TITLE,
            load: &loaded.report,
            settings: &settings,
            segmentation: &seg,
            transactions: &loaded.transactions,
            ltv: None,
            migration,
        })
        .unwrap()
    };
    assert!(!render(None).contains("id=\"migration\""));
    let html = render(Some(&moves));
    let section = panel(&html, "migration");
    assert!(section.contains("Segment migration since the previous run"));
    // In both runs: 40 + 5 + 30 + 7 + 10 + 2 + 1200 + 1 = 1,295; changed segment:
    // 5 + 7 + 2 + 1 = 15, 1.158% of them; new 3, vanished 4; largest move Loyal → At risk.
    assert_eq!(
        reading(section),
        "15 of the 1,295 customers in both runs (1.2%) changed segment since the previous run; \
         3 are new and 4 vanished; the largest move is 7 from Loyal to At risk."
    );

    // One filled cell per pair; the other cells of the 6 × 6 grid (Champions, Loyal,
    // At risk, Lost, (no purchase), then (new) / (vanished)) are pale. The colour
    // scale's steps are 16 pixels wide, narrower than any cell.
    let elements = svg_elements(section);
    let rects: Vec<&str> = elements
        .iter()
        .copied()
        .filter(|e| e.starts_with("rect "))
        .filter(|e| attribute(e, "width").is_some_and(|w| w.parse::<u32>().unwrap() > 30))
        .collect();
    let filled = rects
        .iter()
        .filter(|e| attribute(e, "fill") != Some("#F3F4F6"))
        .count();
    assert_eq!(filled, moves.len());
    assert_eq!(rects.len(), 36);
    // The five stayed cells are outlined, whether anyone stayed or not.
    let outlined = elements
        .iter()
        .filter(|e| e.starts_with("polyline ") && attribute(e, "stroke") == Some("#E07A1F"))
        .count();
    assert_eq!(outlined, 5);
    for text in [
        "1,200",
        "40",
        "30",
        "10",
        "(new)",
        "(vanished)",
        "(no purchase)",
    ] {
        assert!(
            section.contains(&format!(">\n{text}\n</text>")),
            "no label {text}"
        );
    }

    // The table: the four moves between segments, the largest first; share of the
    // previous segment: 7 of Loyal's 37.
    assert_eq!(section.matches("<tr>").count() - 1, 4);
    let first_row = section.find("<td class=\"num\">1</td>").unwrap();
    assert!(section[first_row..].starts_with(
        "<td class=\"num\">1</td><td>Loyal</td><td>At risk</td><td class=\"num\">7</td>\
         <td class=\"num\">18.9%</td>"
    ));
    let at = |id: &str| html.find(&format!("id=\"{id}\"")).unwrap();
    assert!(at("segments") < at("migration") && at("migration") < at("best-customers"));

    // Nobody moved: the sentence says so, and the table is left out.
    let stayed: Vec<_> = moves.iter().filter(|m| m.from == m.to).cloned().collect();
    let html = render(Some(&stayed));
    let section = panel(&html, "migration");
    assert_eq!(
        reading(section),
        "None of the 1,280 customers in both runs changed segment since the previous run; \
         no customer is new or vanished."
    );
    assert!(!section.contains("<table"));
    let html = render(Some(&[]));
    assert_eq!(
        reading(panel(&html, "migration")),
        "No customer is in both runs; no customer is new or vanished."
    );

    if let Some(chromium) = chromium("the migration panel in a browser") {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("migration.html");
        std::fs::write(&page, render(Some(&moves))).unwrap();
        let (dom, log) = run_chromium(&chromium, &page, dir.path(), &["--dump-dom"]);
        assert!(!log.contains(":CONSOLE"), "{log}");
        assert!(drawn_marks(panel(&dom, "migration")) >= 2);
    }
}

#[test]
fn report_flags_are_checked_before_loading() {
    let sample = sample("transactions.csv");
    bin()
        .args(["report", "-i", path_str(&sample), "-o", "report.csv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(".html"));
    bin()
        .args(["report", "-i", path_str(&sample), "-o", "r.html"])
        .args(["--calibration-end", CALIBRATION_END])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--model"));
    bin()
        .args([
            "report",
            "-i",
            path_str(&sample),
            "-o",
            "r.html",
            "--model",
            "nbd",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown model"));
}

/// Headless Chromium for the check `what`; see [`tool`] for when it is missing.
#[track_caller]
fn chromium(what: &str) -> Option<PathBuf> {
    tool(
        &["chromium", "chromium-browser"],
        what,
        "apt-get install chromium",
    )
}

/// Runs headless Chromium on the page with `extra` flags; returns (stdout, stderr).
fn run_chromium(chromium: &Path, page: &Path, work: &Path, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir_in(work).unwrap();
    let stdout = work.join("chromium.out");
    let stderr = work.join("chromium.err");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(status.success(), "chromium failed: {status}\n{err}");
    (std::fs::read_to_string(&stdout).unwrap_or_default(), err)
}

fn check_in_chromium(chromium: &Path, page: &Path, work: &Path) {
    let (dom, log) = run_chromium(chromium, page, work, &["--dump-dom"]);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );
    for id in PANELS {
        let section = panel(&dom, id);
        assert!(
            drawn_marks(section) >= 2,
            "{id}: the chart as Chromium parsed it is empty"
        );
    }

    let shot = work.join("report.png");
    let arg = format!("--screenshot={}", shot.display());
    let (_, log) = run_chromium(chromium, page, work, &[&arg, "--window-size=1280,4000"]);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 50_000);
    // IHDR: width and height, big-endian, at bytes 16..24.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1280);
}

/// The report of tests/fixtures/hand.csv against figures worked out by hand from its 18
/// lines (the arithmetic is in the comments; nothing here comes from the library).
#[test]
fn hand_worked_report_states_figures_computed_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hand.html");
    bin()
        .args(["-q", "report", "-i", path_str(&fixture("hand.csv"))])
        .args(["-o", path_str(&out)])
        .assert()
        .success();
    let html = std::fs::read_to_string(&out).unwrap();

    // Per customer, monetary and profit (amount − cost; a line without cost has profit
    // = amount), in cents where it matters:
    //   "10": 50 + 50 = 100.00, profit 100.00        "9": 100.00, profit 100.00
    //   A: 10.00 + 5.50 + 20.00 − 5.50 = 30.00; profit 4.00 + 2.50 + 20.00 − 2.50 = 24.00
    //   B: only a return, −12.00; profit −12 + 8 = −4.00; no purchase (frequency 0)
    //   C: 3 + 4 + 2 = 9.00, profit 9.00             D: 1.005 → 101¢, 0.125 → 13¢: 1.14
    //   E: 0.00 + 7.77 = 7.77; profit 7.77 − 7 = 0.77
    //   F: 1 + 1 = 2.00, profit 2.00                 G: 2.50; profit 2.50 − 1 = 1.50
    // Revenue: 100 + 100 + 30 − 12 + 9 + 1.14 + 7.77 + 2 + 2.50 = 240.41.
    // Profit:  100 + 100 + 24 − 4 + 9 + 1.14 + 0.77 + 2 + 1.50 = 234.41.
    // The latest line is D's on 2024-03-31, so as_of = 2024-04-01.
    let figure = |label: &str, value: &str, note: &str| {
        let want = format!(
            "<div class=\"label\">{label}</div><div class=\"value\">{value}</div>\
             <div class=\"note\">{note}</div>"
        );
        assert!(html.contains(&want), "no figure {want}");
    };
    figure("Customers", "9", "8 with a purchase");
    // 240.41 / 9 = 26.712…
    figure("Revenue", "240.41", "26.71 per customer");
    // 234.41 / 240.41 = 0.97504…
    figure("Profit", "234.41", "97.5% of revenue");
    figure(
        "As-of date",
        "2024-04-01",
        "the day after the latest transaction",
    );
    figure("Rows used", "18", "of 18 read; 0 rejected");
    // Nobody spends 1,000 in the year before as_of.
    figure("Best customers", "0", "0.0% of customers");

    // Money deciles: monetary descending, ids by their bytes ("10" < "9" < "A"):
    // 10 (100), 9 (100), A (30), C (9), E (7.77), G (2.50), F (2), D (1.14), B (−12).
    // NTILE(10) over 9: deciles 1..9 hold one customer each, decile 10 none.
    // Top 10%: 100 / 240.41 = 0.41596; top 20%: 200 / 240.41 = 0.83191; the top half
    // (deciles 1–5) 246.77 / 240.41 = 1.02645, so the bottom half brings −0.02645.
    assert_eq!(
        reading(panel(&html, "money-deciles")),
        "The top 10% of customers bring 41.6% of revenue and the top 20% bring 83.2%, \
         while the bottom half brings -2.6%."
    );

    // Purchase deciles over the 8 customers with monetary > 0, in the same order;
    // T = 25,241¢. Running totals 10,000, 20,000, 23,000, … 25,241¢ give slices
    // ceil(10 C / T) = ceil(3.96) = 4, ceil(7.92) = 8, then ceil(9.11) … ceil(10) = 10
    // for the other six. Slice 1 is empty; slice 10 holds 6 of the 9 customers (0.667).
    assert_eq!(
        reading(panel(&html, "purchase-deciles")),
        "0 customers (0.0%) make the first 10% of revenue, while the last 10% takes \
         6 customers (66.7%)."
    );

    // Profit descending: 10 (100), 9 (100), A (24), C (9), F (2), G (1.50), D (1.14),
    // E (0.77), B (−4); N = 9, P = 234.41.
    // Top 20%: ceil(1.8) = 2 customers, 200 / 234.41 = 0.85321.
    // Peak: the first 8 customers, 238.41 / 234.41 = 1.01706, first reached at
    // q = 78 (ceil(78 × 9 / 100) = ceil(7.02) = 8; q = 77 gives 7); the rest take 0.01706.
    // Bottom 30%: ceil(2.7) = 3 customers, 1.14 + 0.77 − 4 = −2.09; 234.41 + 2.09 = 236.50.
    let whale = panel(&html, "whale-curve");
    assert_eq!(
        reading(whale),
        "The top 20% of customers bring 85.3% of profit; profit peaks at 101.7% of the total \
         after the first 78.0% of customers, and the rest take 1.7% back."
    );
    assert!(
        whale.contains(
            "The bottom 30% (3 customers) bring -2.09; without them profit would be 236.50."
        ),
        "{whale}"
    );

    // Stages (tenure ≤ 90 new, else recency ≤ 180 active): tenure 10: 59, 9: 60, A: 82,
    // C: 22, D: 1, E: 87, G: 17 — new; F: first purchase 2023-12-31, tenure 1 + 31 + 29
    // + 31 = 92, recency 91 — active; B none. 8 of 9 = 0.889 new or active, none lost.
    // Nobody waited more than 365 days between purchase days (F: 1 day, A: 36).
    let lifecycle = panel(&html, "lifecycle");
    assert_eq!(
        reading(lifecycle),
        "Of 9 customers, 8 (88.9%) are new or active and 0 (0.0%) are lost; \
         0 came back after a long silence."
    );
    assert!(lifecycle.contains("1 customer without a purchase (only returns) has no stage."));

    // R: recency descending F 91, E 87, 9 60, 10 59, A 46, C 22, G 17, D 1; NTILE(5) over
    // 8 gives groups of 2, 2, 2, 1, 1: R5 = D alone. F: frequency ascending, then id:
    // 9, D, E, F, G (1 order), 10, A, C (2 orders): F5 = C alone. D has F1, C has R3,
    // so nobody is in R5 × F5.
    assert_eq!(
        reading(panel(&html, "rfm-heat-map")),
        "The most recent, most frequent cell (R5 × F5) holds 0 customers."
    );

    assert_eq!(
        reading(panel(&html, "best-customers")),
        "0 customers (0.0%) meet the best-customer rule and bring 0.0% of revenue and \
         0.0% of profit."
    );

    // Cohorts by the month of the first purchase: 2023-12 {F}, 2024-01 {A, E},
    // 2024-02 {9, 10}, 2024-03 {C, D, G} (no month after it before as_of). Buying again
    // the next month: F (2024-01-01), A (2024-02-15); E, 9 and 10 not. 2 of 5 = 40%;
    // the best cohort is 2023-12 with 1 of 1.
    assert_eq!(
        reading(panel(&html, "cohorts")),
        "40.0% of customers buy again in the month after their first (3 cohorts); \
         best: 2023-12 with 100.0%."
    );
}
