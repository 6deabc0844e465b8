//! The library's layers (ARCHITECTURE.md): each top-level module imports only from its own
//! layer or the layers below, the modules import one another without a cycle, and no
//! source file grows past 1,600 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first; the same table as ARCHITECTURE.md.
const LAYERS: &[&[&str]] = &[
    &["error", "time", "money", "parallel", "output"],
    &["transactions", "synth"],
    &["load"],
    &["summary"],
    &[
        "rfm",
        "best",
        "lifecycle",
        "deciles",
        "profit",
        "cohorts",
        "affinity",
    ],
    &["segments"],
    &["cube", "migration", "models", "model_summary", "ltv"],
    &["report"],
    &["stream", "distributed", "engine"],
    &["config", "state", "run"],
];

/// Names lib.rs re-exports at the crate root, and the module each comes from.
const ROOT_NAMES: &[(&str, &str)] = &[
    ("Error", "error"),
    ("Result", "error"),
    ("xorshift", "error"),
    ("summarize", "summary"),
    ("Summary", "summary"),
    ("segment", "segments"),
    ("Segmentation", "segments"),
    ("AnalysisSettings", "segments"),
    ("LoadOptions", "load"),
    ("LoadReport", "load"),
    ("Loaded", "load"),
    ("load_frame", "load"),
    ("BadRowPolicy", "load"),
    ("ColumnNames", "load"),
    ("IdType", "load"),
    ("Transactions", "transactions"),
    ("CustomerIds", "transactions"),
    ("TextIds", "transactions"),
    ("polars", "error"),
];

const MAX_LINES: usize = 1_600;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (None for lib.rs and the binary).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (!matches!(name.as_str(), "lib" | "main" | "cli")).then_some(name)
}

/// Every `crate::name` a file mentions: in `use` lines, in paths, in doc examples too.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `other_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    refs.insert(name);
                }
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            refs.insert(name);
        }
    }
    refs
}

struct Graph {
    /// module → the modules it imports.
    edges: BTreeMap<String, BTreeSet<String>>,
    layer: BTreeMap<String, usize>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layer: BTreeMap<String, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, mods)| mods.iter().map(move |m| (m.to_string(), i)))
        .collect();
    let root: BTreeMap<&str, &str> = ROOT_NAMES.iter().copied().collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        assert!(
            layer.contains_key(&module),
            "src/{module} is in no layer: add it to ARCHITECTURE.md and to LAYERS here"
        );
        let text = std::fs::read_to_string(&file).unwrap();
        let targets = edges.entry(module.clone()).or_default();
        for name in crate_refs(&text) {
            let target = if layer.contains_key(&name) {
                name
            } else if let Some(m) = root.get(name.as_str()) {
                m.to_string()
            } else {
                panic!(
                    "{}: crate::{name} is neither a module nor a name lib.rs re-exports",
                    file.display()
                );
            };
            if target != module {
                targets.insert(target);
            }
        }
    }
    Graph { edges, layer }
}

#[test]
fn no_module_imports_a_higher_layer() {
    let g = graph();
    let mut wrong = Vec::new();
    for (from, targets) in &g.edges {
        for to in targets {
            if g.layer[to] > g.layer[from] {
                wrong.push(format!(
                    "{from} (layer {}) imports {to} (layer {})",
                    g.layer[from], g.layer[to]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn modules_import_one_another_without_a_cycle() {
    let g = graph();
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit<'a>(
        m: &'a str,
        g: &'a Graph,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| *p == m) {
            let mut cycle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        for to in g.edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(to, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in g.edges.keys() {
        if let Some(cycle) = visit(m, &g, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn no_source_file_is_longer_than_1600_lines() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{} has {n} lines", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by what their parts are:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checks_see_a_wrong_import() {
    // The scanner itself: a grouped import, a path, and a look-alike that is not ours.
    let refs = crate_refs(
        "use crate::{load::LoadOptions, error::Result};\nlet x = crate::report::render();\n\
         use other_crate::segments;",
    );
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["error", "load", "report"]
    );
    // And the layer order flags a summary that imports the report.
    let layer = |m: &str| LAYERS.iter().position(|l| l.contains(&m)).unwrap();
    assert!(layer("report") > layer("summary"));
}
