use super::*;

/// Where each role's column sits in a file, once the header is known.
#[derive(Debug, Clone)]
pub(super) struct Mapping {
    pub(super) customer: usize,
    pub(super) time: usize,
    pub(super) amount: AmountSource,
    pub(super) order: Option<usize>,
    pub(super) cost: Option<usize>,
    pub(super) category: Option<usize>,
    pub(super) names: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum AmountSource {
    Column(usize),
    Product { quantity: usize, unit_price: usize },
}

impl Mapping {
    pub(super) fn resolve(file: &str, names: &[String], columns: &ColumnNames) -> Result<Mapping> {
        let find = |role: Role| find_column(file, names, columns, role);
        let missing = |role: Role, hint: String| Error::MissingColumn {
            file: file.to_string(),
            column: columns.name(role).to_string(),
            role: role.describe(),
            available: names
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", "),
            hint,
        };
        let delimiter_hint = || {
            if names.len() == 1 {
                for d in [';', '\t', '|', ','] {
                    if names[0].contains(d) {
                        let shown = if d == '\t' {
                            "\\t".to_string()
                        } else {
                            d.to_string()
                        };
                        return format!(
                            " (the header looks '{shown}'-separated: try --delimiter '{shown}', or [input] delimiter)"
                        );
                    }
                }
            }
            format!(" (map it with {})", Role::Customer.setting())
        };
        let required = |role: Role| {
            find(role)?.ok_or_else(|| {
                let hint = if names.len() == 1 {
                    delimiter_hint()
                } else {
                    format!(" (map it with {})", role.setting())
                };
                missing(role, hint)
            })
        };
        let optional = |role: Role| -> Result<Option<usize>> {
            match (find(role)?, columns.given(role)) {
                (Some(i), _) => Ok(Some(i)),
                (None, None) => Ok(None),
                (None, Some(_)) => Err(missing(role, String::new())),
            }
        };
        let customer = required(Role::Customer)?;
        let time = required(Role::Time)?;
        let amount = match (find(Role::Amount)?, columns.given(Role::Amount)) {
            (Some(i), _) => AmountSource::Column(i),
            (None, Some(_)) => return Err(missing(Role::Amount, String::new())),
            (None, None) => match (find(Role::Quantity)?, find(Role::UnitPrice)?) {
                (Some(quantity), Some(unit_price)) => AmountSource::Product {
                    quantity,
                    unit_price,
                },
                _ => {
                    let hint = if names.len() == 1 {
                        delimiter_hint()
                    } else {
                        " (map it with --amount-col, or give --quantity-col and --unit-price-col; [columns] amount, quantity and unit_price in a config file)"
                            .to_string()
                    };
                    return Err(missing(Role::Amount, hint));
                }
            },
        };
        Ok(Mapping {
            customer,
            time,
            amount,
            order: optional(Role::Order)?,
            cost: optional(Role::Cost)?,
            category: optional(Role::Category)?,
            names: names.to_vec(),
        })
    }
}

/// The column of `role`: the one with its name; for a default name not given by the
/// user, else the one whose name differs from it only in case (warehouses write `AMOUNT`),
/// and an error when several do.
fn find_column(
    file: &str,
    names: &[String],
    columns: &ColumnNames,
    role: Role,
) -> Result<Option<usize>> {
    let name = columns.name(role);
    if let Some(i) = names.iter().position(|n| n == name) {
        return Ok(Some(i));
    }
    if columns.given(role).is_some() {
        return Ok(None);
    }
    let mut alike = names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.eq_ignore_ascii_case(name));
    match (alike.next(), alike.next()) {
        (None, _) => Ok(None),
        (Some((i, _)), None) => Ok(Some(i)),
        (Some((_, a)), Some((_, b))) => Err(Error::input(
            file,
            format!(
                "columns '{a}' and '{b}' both match the {} column '{name}' apart from case: \
                 name the one to use with {}",
                role.describe(),
                role.setting()
            ),
        )),
    }
}

impl Mapping {
    /// The names of the columns mapped to a role, in file order.
    pub(super) fn used_names(&self) -> Vec<String> {
        let mut used = vec![self.customer, self.time];
        match self.amount {
            AmountSource::Column(i) => used.push(i),
            AmountSource::Product {
                quantity,
                unit_price,
            } => used.extend([quantity, unit_price]),
        }
        used.extend([self.order, self.cost, self.category].into_iter().flatten());
        used.sort_unstable();
        used.into_iter().map(|i| self.names[i].clone()).collect()
    }
}

/// One cell of a row, before validation.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cell<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Float32(f32),
    Day(i32),
    Micros(i64),
    /// A DECIMAL value of Parquet/IPC: the unscaled integer and the scale.
    Decimal(&'a i128, u8),
    /// Bytes that are not UTF-8 (CSV only).
    Invalid(&'a [u8]),
}

impl Cell<'_> {
    pub(super) fn shown(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(s) => s.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Float32(f) => f.to_string(),
            Cell::Day(d) => crate::time::format_day(*d),
            Cell::Micros(m) => {
                let t = LineTime::from_micros(*m);
                let secs = (m - i64::from(t.day) * crate::time::MICROS_PER_DAY) / 1_000_000;
                format!(
                    "{}T{:02}:{:02}:{:02}",
                    crate::time::format_day(t.day),
                    secs / 3600,
                    secs / 60 % 60,
                    secs % 60
                )
            }
            Cell::Decimal(mantissa, scale) => money::Decimal {
                mantissa: **mantissa,
                scale: i32::from(*scale),
            }
            .to_string(),
            Cell::Invalid(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }

    pub(super) fn is_null(&self) -> bool {
        match self {
            Cell::Null => true,
            Cell::Text(s) => trim(s).is_empty(),
            _ => false,
        }
    }
}

/// `s.trim()`, without walking the characters when `s` starts and ends with ASCII that
/// is not whitespace (as nearly every value does).
#[inline]
pub(super) fn trim(s: &str) -> &str {
    let plain = |b: u8| b.is_ascii() && !char::from(b).is_whitespace();
    match s.as_bytes() {
        [first, .., last] if plain(*first) && plain(*last) => s,
        [only] if plain(*only) => s,
        _ => s.trim(),
    }
}

/// Where a row came from, for messages.
pub(super) struct Loc<'a> {
    pub(super) file: &'a str,
    pub(super) place: &'static str,
    pub(super) line: u64,
}
