//! The SQL of the cluster job, written from JOB.md: each input column turned into the
//! loader's values (customer key, microseconds, minor units, order key, category), every
//! row checked for the loader's reasons to reject it, and the per-customer aggregate that
//! the local pipeline needs (summary, best-customer window, purchase days, categories).
//!
//! Only built-in DataFusion functions are used, so the plan runs on a stock Ballista
//! deployment as well as on `custvalue cluster` processes.
//!
//! Not for: running the plan (see the parent module).

use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};

use crate::error::{Error, Result};
use crate::load::{IdType, LoadOptions, Role};
use crate::time::{MAX_DAY, MICROS_PER_DAY, MIN_DAY};

/// The table name the inputs are registered under.
pub const TABLE: &str = "custvalue_lines";

/// Whitespace trimmed from text cells, as `str::trim` does for ASCII.
const WS: &str = "concat(' ', chr(9), chr(10), chr(11), chr(12), chr(13))";

/// How the customer ids of this input are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Text,
    Int,
}

/// The `lines` CTE for one input schema: one row per input row with `reason` (null for a
/// usable row) and the loader's values.
#[derive(Debug, Clone)]
pub struct Lines {
    pub sql: String,
    pub id_kind: IdKind,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn column<'a>(
    schema: &'a Schema,
    opts: &LoadOptions,
    role: Role,
    file: &str,
) -> Result<Option<(String, &'a DataType)>> {
    let name = opts.columns.name(role);
    match schema.fields().iter().find(|f| f.name() == name) {
        Some(f) => Ok(Some((quote(f.name()), f.data_type()))),
        None if matches!(role, Role::Customer | Role::Time) => {
            Err(missing(schema, role, name, file))
        }
        None => Ok(None),
    }
}

fn missing(schema: &Schema, role: Role, name: &str, file: &str) -> Error {
    Error::MissingColumn {
        file: file.to_string(),
        column: name.to_string(),
        role: role.describe(),
        available: schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", "),
        hint: String::new(),
    }
}

fn unsupported(file: &str, role: Role, name: &str, dt: &DataType, hint: &str) -> Error {
    Error::input(
        file,
        format!(
            "column {name} ({}) has type {dt}, which the ballista engine does not read{hint}; \
             the local engine (without --engine ballista) reads it",
            role.describe()
        ),
    )
}

fn is_text(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

fn is_int(dt: &DataType) -> bool {
    dt.is_integer()
}

/// Trimmed text, null when empty (the loader's reading of a text cell).
fn text(col: &str) -> String {
    format!("NULLIF(btrim(CAST({col} AS VARCHAR), {WS}), '')")
}

/// Floor division of a BIGINT expression by a positive constant.
fn floor_div(e: &str, k: i64) -> String {
    format!("(CASE WHEN {e} >= 0 THEN ({e}) / {k} ELSE -((-({e}) - 1) / {k}) - 1 END)")
}

/// A finite-float test that also holds under arrow's total order for NaN.
fn finite(col: &str) -> String {
    format!("(abs({col}) <= 1.7976931348623157e308)")
}

/// Minor units of a Float64 cell as `money::f64_to_minor` computes them: the float product
/// where it is clearly not a tie, else the shortest decimal text rounded half away from
/// zero (the (d+1)-th decimal decides).
fn float_minor(col: &str, decimals: u32) -> String {
    let f = format!("{}.0", 10i64.pow(decimals));
    let scaled = format!("({col} * {f})");
    let frac = format!("({scaled} - floor({scaled}))");
    let s = format!("CAST(abs({col}) AS VARCHAR)");
    let digits = format!("rpad(split_part({s}, '.', 2), {}, '0')", decimals + 1);
    let units = format!(
        "(CAST(concat(split_part({s}, '.', 1), substr({digits}, 1, {decimals})) AS BIGINT) \
         + CASE WHEN substr({digits}, {}, 1) >= '5' THEN 1 ELSE 0 END)",
        decimals + 1
    );
    format!(
        "(CASE WHEN abs({scaled}) < 4.0e15 AND abs({frac} - 0.5) > 1e-6 \
              THEN CAST(floor({scaled}) AS BIGINT) + CASE WHEN {frac} < 0.5 THEN 0 ELSE 1 END \
              WHEN strpos({s}, 'e') > 0 THEN CAST(round({scaled}) AS BIGINT) \
              WHEN {col} < 0 THEN -{units} ELSE {units} END)"
    )
}

/// A money column: the expression of its minor units over the sanitised value column
/// `value` (a finite number, 0 where the cell is null or not finite), and the finiteness
/// test of the raw column.
struct Money {
    minor: String,
    finite: String,
}

fn money(
    (col, value): (&str, &str),
    dt: &DataType,
    decimals: u32,
    (role, name): (Role, &str),
    file: &str,
) -> Result<Money> {
    if is_int(dt) {
        let f = 10i64.pow(decimals);
        Ok(Money {
            minor: format!("(CAST({value} AS BIGINT) * {f})"),
            finite: "TRUE".into(),
        })
    } else if matches!(dt, DataType::Float64) {
        Ok(Money {
            minor: float_minor(value, decimals),
            finite: finite(col),
        })
    } else {
        Err(unsupported(
            file,
            role,
            name,
            dt,
            " (it reads integer and 64-bit float money columns)",
        ))
    }
}

/// Microseconds since 1970 of a time cell.
fn micros(col: &str, dt: &DataType, name: &str, file: &str) -> Result<String> {
    Ok(match dt {
        DataType::Timestamp(unit, _) => {
            let raw = format!("CAST({col} AS BIGINT)");
            match unit {
                TimeUnit::Second => format!("({raw} * 1000000)"),
                TimeUnit::Millisecond => format!("({raw} * 1000)"),
                TimeUnit::Microsecond => raw,
                TimeUnit::Nanosecond => floor_div(&raw, 1000),
            }
        }
        DataType::Date32 => format!("(CAST(CAST({col} AS INT) AS BIGINT) * {MICROS_PER_DAY})"),
        DataType::Date64 => format!("(CAST({col} AS BIGINT) * 1000)"),
        _ => {
            return Err(unsupported(
                file,
                Role::Time,
                name,
                dt,
                " (it reads date and timestamp columns)",
            ));
        }
    })
}

/// Builds the `lines` CTE for `schema` (the inputs' common schema; `file` names it in
/// messages). `as_of` is the given as-of day, if any.
pub fn lines(schema: &Schema, opts: &LoadOptions, file: &str) -> Result<Lines> {
    let d = opts.currency_decimals;
    let name = |r: Role| opts.columns.name(r).to_string();
    let (cust, cust_dt) = column(schema, opts, Role::Customer, file)?.expect("required");
    let (time, time_dt) = column(schema, opts, Role::Time, file)?.expect("required");
    let amount = column(schema, opts, Role::Amount, file)?;
    let Some((amount, amount_dt)) = amount else {
        let has_product = column(schema, opts, Role::Quantity, file)?.is_some()
            && column(schema, opts, Role::UnitPrice, file)?.is_some();
        return Err(if has_product {
            Error::input(
                file,
                "the ballista engine needs an amount column (it does not multiply quantity by \
                 unit price); add one, or use the local engine",
            )
        } else {
            missing(schema, Role::Amount, &name(Role::Amount), file)
        });
    };

    let id_kind = match (opts.customer_id_type, is_text(cust_dt), is_int(cust_dt)) {
        (IdType::Text, _, _) => IdKind::Text,
        (IdType::Int, _, _) => IdKind::Int,
        (IdType::Auto, true, _) => IdKind::Text,
        (IdType::Auto, _, true) => IdKind::Int,
        _ => {
            return Err(unsupported(
                file,
                Role::Customer,
                &name(Role::Customer),
                cust_dt,
                " (it reads text and integer ids)",
            ));
        }
    };
    let (cid, cid_bad) = match id_kind {
        IdKind::Text => (text(&cust), "FALSE".to_string()),
        IdKind::Int if is_int(cust_dt) => (format!("CAST({cust} AS BIGINT)"), "FALSE".into()),
        IdKind::Int => (
            format!("TRY_CAST({} AS BIGINT)", text(&cust)),
            format!(
                "({t} IS NOT NULL AND TRY_CAST({t} AS BIGINT) IS NULL)",
                t = text(&cust)
            ),
        ),
    };
    let micros = micros(&time, time_dt, &name(Role::Time), file)?;
    let amt = money(
        (&amount, "amt_v"),
        amount_dt,
        d,
        (Role::Amount, &name(Role::Amount)),
        file,
    )?;
    let (cost_col, cost) = match column(schema, opts, Role::Cost, file)? {
        Some((c, dt)) => {
            let m = money((&c, "cost_v"), dt, d, (Role::Cost, &name(Role::Cost)), file)?;
            (c, m)
        }
        None => (
            "CAST(NULL AS BIGINT)".into(),
            Money {
                minor: "0".into(),
                finite: "TRUE".into(),
            },
        ),
    };
    let order = match column(schema, opts, Role::Order, file)? {
        Some((c, _)) => text(&c),
        None => "CAST(NULL AS VARCHAR)".into(),
    };
    let category = match column(schema, opts, Role::Category, file)? {
        Some((c, _)) => text(&c),
        None => "CAST(NULL AS VARCHAR)".into(),
    };
    let margin = margin_sql(opts)?;
    let as_of_check = match opts.as_of {
        Some(a) => format!("WHEN day > {a} THEN 'after_as_of'"),
        None => String::new(),
    };
    // Each step reads only what the one before made safe: money is converted from
    // sanitised values, so a NaN or a missing cell never reaches a cast.
    let sql = format!(
        "src AS (
           SELECT {cid} AS cid, {cid_bad} AS cid_bad, {micros} AS micros,
                  {amount} IS NULL AS amt_null,
                  COALESCE({amt_finite}, FALSE) AS amt_ok,
                  CASE WHEN {amt_finite} THEN {amount} ELSE 0 END AS amt_v,
                  {cost_col} IS NULL AS cost_null,
                  ({cost_col} IS NULL OR COALESCE({cost_finite}, FALSE)) AS cost_ok,
                  CASE WHEN {cost_col} IS NOT NULL AND {cost_finite} THEN {cost_col} ELSE 0 END AS cost_v,
                  {order} AS oid, {category} AS cat
           FROM {TABLE}),
         conv AS (
           SELECT cid, cid_bad, micros, amt_null, amt_ok, cost_null, cost_ok, oid, cat,
                  {amt_minor} AS amt, {cost_minor} AS cost,
                  {day} AS day
           FROM src),
         lines AS (
           SELECT cid, day, amt, cat,
                  CASE WHEN oid IS NULL THEN concat('t', CAST(micros AS VARCHAR))
                       ELSE concat('o', oid) END AS okey,
                  CASE WHEN cost_null THEN {margin} ELSE amt - cost END AS profit,
                  CASE WHEN cid_bad THEN 'bad_customer_id'
                       WHEN cid IS NULL THEN 'missing_customer'
                       WHEN micros IS NULL THEN 'missing_time'
                       WHEN day < {MIN_DAY} OR day > {MAX_DAY} THEN 'bad_time'
                       WHEN amt_null THEN 'missing_amount'
                       WHEN NOT amt_ok THEN 'bad_amount'
                       WHEN NOT cost_ok THEN 'bad_cost'
                       {as_of_check}
                       ELSE NULL END AS reason
           FROM conv)",
        amt_finite = amt.finite,
        cost_finite = cost.finite,
        amt_minor = amt.minor,
        cost_minor = cost.minor,
        day = floor_div("micros", MICROS_PER_DAY),
        margin = margin.replace("AMT", "amt"),
    );
    Ok(Lines { sql, id_kind })
}

/// `amt × margin` rounded half away from zero, in integer arithmetic (`AMT` stands for
/// the amount).
fn margin_sql(opts: &LoadOptions) -> Result<String> {
    let m = opts.margin.as_decimal();
    let too_fine =
        || Error::Usage("the ballista engine takes a margin of at most 18 decimals".to_string());
    let mantissa = i64::try_from(m.mantissa).map_err(|_| too_fine())?;
    Ok(match m.scale {
        s if s <= 0 => {
            let f = 10i64.checked_pow((-s) as u32).ok_or_else(too_fine)?;
            format!("(AMT * {})", mantissa.checked_mul(f).ok_or_else(too_fine)?)
        }
        s if s <= 18 => {
            let q = 10i64.pow(s as u32);
            let half = q / 2;
            format!(
                "(CASE WHEN AMT * {mantissa} >= 0 THEN (AMT * {mantissa} + {half}) / {q} \
                 ELSE -((-(AMT * {mantissa}) + {half}) / {q}) END)"
            )
        }
        _ => return Err(too_fine()),
    })
}

/// Rows per reject reason (null = used) and the latest usable day.
pub fn check_query(lines: &Lines) -> String {
    format!(
        "WITH {} SELECT reason, count(*) AS n, max(day) AS last_day FROM lines GROUP BY reason",
        lines.sql
    )
}

/// The per-customer aggregate over usable lines, with the best-customer window
/// `window_start <= day < as_of`.
///
/// Distinct counts are taken in two steps — group by (customer, order), (customer,
/// category) and (customer, day), then count the groups per customer — because a
/// `count(DISTINCT …)` per customer keeps a hash set per group and grows to gigabytes on
/// an executor; plain grouped counts shuffle and spill like any aggregate.
pub fn aggregate_query(lines: &Lines, as_of: i32, window_start: i32) -> String {
    let w = format!("(day >= {window_start} AND day < {as_of})");
    format!(
        "WITH {lines},
         good AS (SELECT cid, day, amt, profit, okey, cat FROM lines WHERE reason IS NULL),
         totals AS (
           SELECT cid,
                  min(day) FILTER (WHERE amt > 0) AS first_purchase,
                  max(day) FILTER (WHERE amt > 0) AS last_purchase,
                  sum(amt) AS monetary,
                  sum(profit) AS profit,
                  sum(amt) FILTER (WHERE {w}) AS window_spend
           FROM good GROUP BY cid),
         orders AS (
           SELECT cid, count(*) AS frequency,
                  count(*) FILTER (WHERE in_window) AS window_orders
           FROM (SELECT cid, okey, bool_or({w}) AS in_window
                 FROM good WHERE amt > 0 GROUP BY cid, okey) AS o
           GROUP BY cid),
         cats AS (
           SELECT cid, count(*) AS n_categories,
                  count(*) FILTER (WHERE in_window) AS window_categories,
                  array_agg(cat) AS categories
           FROM (SELECT cid, cat, bool_or({w}) AS in_window
                 FROM good WHERE amt > 0 AND cat IS NOT NULL GROUP BY cid, cat) AS c
           GROUP BY cid),
         days AS (
           SELECT cid, array_agg(day) AS purchase_days
           FROM (SELECT cid, day FROM good WHERE amt > 0 GROUP BY cid, day) AS d
           GROUP BY cid)
         SELECT t.cid, t.first_purchase, t.last_purchase,
                COALESCE(o.frequency, 0) AS frequency,
                t.monetary, t.profit,
                COALESCE(c.n_categories, 0) AS n_categories,
                t.window_spend,
                COALESCE(c.window_categories, 0) AS window_categories,
                COALESCE(o.window_orders, 0) AS window_orders,
                d.purchase_days, c.categories
         FROM totals AS t
         LEFT JOIN orders AS o ON t.cid = o.cid
         LEFT JOIN cats AS c ON t.cid = c.cid
         LEFT JOIN days AS d ON t.cid = d.cid",
        lines = lines.sql
    )
}
