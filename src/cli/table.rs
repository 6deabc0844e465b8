//! Aligned terminal tables for humans: text left, numbers right, a rule under the header.
//!
//! Not for: files a program reads (see `output`).

/// A table built row by row and rendered as aligned text.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let numeric: Vec<bool> = (0..n)
            .map(|i| {
                self.rows.iter().all(|r| {
                    r.get(i).is_none_or(|c| {
                        c.is_empty()
                            || c.chars()
                                .all(|ch| ch.is_ascii_digit() || ",.-+%".contains(ch))
                    })
                })
            })
            .collect();
        let line = |cells: &[String]| {
            let mut out = String::new();
            for i in 0..n {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = width[i] - cell.chars().count();
                if i > 0 {
                    out.push_str("  ");
                }
                if numeric[i] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if i + 1 < n {
                        out.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.header);
        let total: usize = width.iter().sum::<usize>() + 2 * n.saturating_sub(1);
        out.push_str(&"-".repeat(total));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_text_left_and_numbers_right() {
        let mut t = Table::new(["segment", "customers"]);
        t.row(["Champions", "1,234"]);
        t.row(["Lost", "7"]);
        let text = t.render();
        assert_eq!(
            text,
            "segment    customers\n--------------------\nChampions      1,234\nLost               7\n"
        );
        assert_eq!(custvalue::output::percent(0.4123), "41.2%");
    }
}
