-- Independent DuckDB oracle for custvalue's segment file, decile tables and profit
-- figures, written from /work/shared/JOB.md ("the job: exact definitions") only.
--
-- Parameter: the placeholder {{SOURCE}} is replaced by oracle.py with a table function,
--   read_csv('<path>', header = true, all_varchar = true)   for CSV input, or
--   read_parquet('<path>')                                   for Parquet input.
-- The input must have the columns order_id, customer_id, ts, category, amount, cost
-- (the defaults of JOB.md "Input: transaction lines"; custvalue synth writes them).
--
-- Everything below works in integer cents ("Money is held and summed in integer minor
-- units"). Results are left in temp tables, read by oracle.py:
--   segments, money_deciles, purchase_deciles, profit_figures, whale_curve.
-- Money columns ending in _c are cents (BIGINT / HUGEINT).
--
-- Not covered (the synth data never needs them): bad-row policies, --as-of, amount from
-- quantity x unit_price, user segment tables, k other than 5, a margin other than 1.0.

------------------------------------------------------------------------------------------
-- Input lines (JOB.md "Input: transaction lines")
------------------------------------------------------------------------------------------
CREATE OR REPLACE TEMP TABLE lines AS
SELECT
    -- "Customer ids keep their type": CSV ids are text (all_varchar), Parquet ids keep
    -- their column type, so ORDER BY customer_id is numeric for integer ids and byte-wise
    -- (DuckDB's default VARCHAR collation is binary) for text ids.
    customer_id,
    CAST(ts AS TIMESTAMP)                     AS ts,
    CAST(CAST(ts AS TIMESTAMP) AS DATE)       AS day,
    CAST(category AS VARCHAR)                 AS category,
    -- "a line with no order id forms one order with the other lines without an order id
    -- of the same customer and the same ts": the order key is the order id, or
    -- (NUL-prefixed) ts text when missing. Orders are only ever counted per customer.
    CASE WHEN order_id IS NULL
         THEN chr(0) || CAST(CAST(ts AS TIMESTAMP) AS VARCHAR)
         ELSE CAST(order_id AS VARCHAR) END    AS order_key,
    -- Cents: round half away from zero from the decimal value as written. CSV: the text
    -- itself. Parquet DOUBLE: DuckDB's DOUBLE -> VARCHAR cast is the shortest round-trip
    -- text (checked against Python repr), so 1.005 -> '1.005' -> 101 cents.
    -- DuckDB's ROUND on DECIMAL rounds half away from zero.
    CAST(ROUND(CAST(CAST(amount AS VARCHAR) AS DECIMAL(38, 12)) * 100) AS BIGINT) AS amount_c,
    CAST(ROUND(CAST(CAST(cost   AS VARCHAR) AS DECIMAL(38, 12)) * 100) AS BIGINT) AS cost_c
FROM {{SOURCE}};

-- JOB.md "As-of date": the day after the latest transaction date.
CREATE OR REPLACE TEMP TABLE params AS
SELECT MAX(day) + 1 AS as_of FROM lines;

------------------------------------------------------------------------------------------
-- Per-customer summary (JOB.md "Per-customer summary")
------------------------------------------------------------------------------------------
CREATE OR REPLACE TEMP TABLE summary AS
SELECT
    l.customer_id,
    MIN(l.day) FILTER (WHERE l.amount_c > 0)                        AS first_purchase,
    MAX(l.day) FILTER (WHERE l.amount_c > 0)                        AS last_purchase,
    COUNT(DISTINCT l.order_key) FILTER (WHERE l.amount_c > 0)       AS frequency,
    SUM(l.amount_c)                                                 AS monetary_c,
    -- profit = amount - cost; a line with no cost uses the margin rule, margin 1.0:
    -- profit = amount x 1.0.
    SUM(CASE WHEN l.cost_c IS NULL THEN l.amount_c ELSE l.amount_c - l.cost_c END) AS profit_c,
    COUNT(DISTINCT l.category) FILTER (WHERE l.amount_c > 0)        AS n_categories
FROM lines l
GROUP BY l.customer_id;

-- Lifecycle "reactivated" (JOB.md "Lifecycle stage"): gap between the last distinct
-- purchase day and the distinct purchase day before it.
CREATE OR REPLACE TEMP TABLE last_gap AS
WITH days AS (
    SELECT DISTINCT customer_id, day FROM lines WHERE amount_c > 0
), ranked AS (
    SELECT customer_id, day,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY day DESC) AS rn
    FROM days
)
SELECT customer_id,
       MAX(day) FILTER (WHERE rn = 1) - MAX(day) FILTER (WHERE rn = 2) AS gap_days
FROM ranked
WHERE rn <= 2
GROUP BY customer_id;

-- Best-customer rule (JOB.md "Best-customer rule"): lines with
-- as_of - 365 <= day < as_of; spend >= 1000.00 (all lines), >= 4 categories and >= 6
-- orders (lines with amount > 0).
CREATE OR REPLACE TEMP TABLE best AS
SELECT l.customer_id,
       SUM(l.amount_c) >= 100000
       AND COUNT(DISTINCT l.category)  FILTER (WHERE l.amount_c > 0) >= 4
       AND COUNT(DISTINCT l.order_key) FILTER (WHERE l.amount_c > 0) >= 6 AS best_customer
FROM lines l, params p
WHERE l.day >= p.as_of - 365 AND l.day < p.as_of
GROUP BY l.customer_id;

-- RFM scores, k = 5 (JOB.md "RFM scores"): NTILE over customers with frequency >= 1.
-- DuckDB's NTILE puts the n mod k larger groups first, as JOB.md requires (checked).
CREATE OR REPLACE TEMP TABLE rfm AS
SELECT customer_id,
       NTILE(5) OVER (ORDER BY recency_days DESC, customer_id ASC) AS r_score,
       NTILE(5) OVER (ORDER BY frequency    ASC,  customer_id ASC) AS f_score,
       NTILE(5) OVER (ORDER BY monetary_c   ASC,  customer_id ASC) AS m_score
FROM (
    SELECT s.customer_id, s.frequency, s.monetary_c, p.as_of - s.last_purchase AS recency_days
    FROM summary s, params p
    WHERE s.frequency >= 1
);

-- Money deciles (JOB.md "Money deciles"): all customers, monetary desc, customer_id asc.
CREATE OR REPLACE TEMP TABLE decile AS
SELECT customer_id,
       NTILE(10) OVER (ORDER BY monetary_c DESC, customer_id ASC) AS decile
FROM summary;

------------------------------------------------------------------------------------------
-- The segment file: one row per customer, sorted by customer_id
------------------------------------------------------------------------------------------
CREATE OR REPLACE TEMP TABLE segments AS
SELECT
    s.customer_id,
    s.first_purchase,
    s.last_purchase,
    p.as_of - s.last_purchase  AS recency_days,
    p.as_of - s.first_purchase AS tenure_days,
    s.frequency,
    s.monetary_c,
    s.profit_c,
    -- monetary / frequency rounded half away from zero to the cent, in integers:
    -- sign(m) * floor((2|m| + f) / 2f).
    CASE WHEN s.frequency = 0 THEN NULL
         ELSE SIGN(s.monetary_c) * ((2 * ABS(s.monetary_c) + s.frequency) // (2 * s.frequency))
    END AS avg_order_value_c,
    s.n_categories,
    r.r_score, r.f_score, r.m_score,
    CAST(r.r_score AS VARCHAR) || CAST(r.f_score AS VARCHAR) || CAST(r.m_score AS VARCHAR) AS rfm_cell,
    r.r_score + r.f_score + r.m_score AS rfm_score,
    -- Named segments: custvalue's documented default table (1-5 scale, first match
    -- wins, "Other" when nothing matches; null without a purchase). The table is data
    -- from custvalue's docs (src/rfm.rs DEFAULT_SEGMENTS); the matching is ours.
    CASE
        WHEN r.r_score IS NULL THEN NULL
        WHEN r.r_score BETWEEN 4 AND 5 AND r.f_score BETWEEN 4 AND 5 AND r.m_score BETWEEN 4 AND 5 THEN 'Champions'
        WHEN r.r_score BETWEEN 3 AND 5 AND r.f_score BETWEEN 4 AND 5 THEN 'Loyal'
        WHEN r.r_score BETWEEN 1 AND 2 AND r.f_score BETWEEN 4 AND 5 AND r.m_score BETWEEN 4 AND 5 THEN 'Can''t lose them'
        WHEN r.r_score BETWEEN 1 AND 2 AND r.f_score BETWEEN 3 AND 5 THEN 'At risk'
        WHEN r.r_score BETWEEN 4 AND 5 AND r.f_score BETWEEN 2 AND 3 THEN 'Potential loyalist'
        WHEN r.r_score = 5 AND r.f_score = 1 THEN 'New'
        WHEN r.r_score = 4 AND r.f_score = 1 THEN 'Promising'
        WHEN r.r_score = 3 AND r.f_score BETWEEN 2 AND 3 THEN 'Need attention'
        WHEN r.r_score = 3 AND r.f_score = 1 THEN 'About to sleep'
        WHEN r.r_score = 2 AND r.f_score BETWEEN 1 AND 2 THEN 'Hibernating'
        WHEN r.r_score = 1 AND r.f_score BETWEEN 1 AND 2 THEN 'Lost'
        ELSE 'Other'
    END AS segment,
    d.decile,
    COALESCE(b.best_customer, FALSE) AS best_customer,
    -- JOB.md "Lifecycle stage": first matching rule; null when frequency = 0.
    CASE
        WHEN s.frequency = 0 THEN NULL
        WHEN p.as_of - s.first_purchase <= 90  THEN 'new'
        WHEN p.as_of - s.last_purchase  <= 180 THEN 'active'
        WHEN p.as_of - s.last_purchase  <= 365 THEN 'at_risk'
        WHEN p.as_of - s.last_purchase  <= 730 THEN 'lapsed'
        ELSE 'lost'
    END AS stage,
    -- false with fewer than two purchase days (gap_days is then null).
    COALESCE(g.gap_days > 365, FALSE) AS reactivated
FROM summary s
CROSS JOIN params p
LEFT JOIN rfm r      ON r.customer_id = s.customer_id
LEFT JOIN decile d   ON d.customer_id = s.customer_id
LEFT JOIN best b     ON b.customer_id = s.customer_id
LEFT JOIN last_gap g ON g.customer_id = s.customer_id
ORDER BY s.customer_id;

------------------------------------------------------------------------------------------
-- Money-decile table (JOB.md "Money deciles")
------------------------------------------------------------------------------------------
-- With fewer than 10 customers NTILE leaves the last deciles empty; they still get a
-- row (0 customers, zero revenue and shares, null min/max), as for purchase slices.
CREATE OR REPLACE TEMP TABLE money_deciles AS
WITH t AS (
    SELECT g.decile,
           COUNT(s.customer_id)           AS customers,
           COALESCE(SUM(s.monetary_c), 0) AS revenue_c,
           COALESCE(SUM(s.profit_c), 0)   AS profit_c,
           MIN(s.monetary_c)              AS min_monetary_c,
           MAX(s.monetary_c)              AS max_monetary_c
    FROM range(1, 11) g(decile)
    LEFT JOIN decile d ON d.decile = g.decile
    LEFT JOIN summary s ON s.customer_id = d.customer_id
    GROUP BY g.decile
), tot AS (
    SELECT SUM(revenue_c) AS rev, SUM(profit_c) AS prof FROM t
)
SELECT t.decile, t.customers, t.revenue_c, t.profit_c,
       -- shares: exact integer ratios, one division each (null when the total is <= 0)
       CAST(t.revenue_c AS DOUBLE) / NULLIF(GREATEST(tot.rev, 0), 0)  AS revenue_share,
       CAST(t.profit_c AS DOUBLE)  / NULLIF(GREATEST(tot.prof, 0), 0) AS profit_share,
       CAST(SUM(t.revenue_c) OVER (ORDER BY t.decile) AS DOUBLE) / NULLIF(GREATEST(tot.rev, 0), 0)  AS cum_revenue_share,
       CAST(SUM(t.profit_c)  OVER (ORDER BY t.decile) AS DOUBLE) / NULLIF(GREATEST(tot.prof, 0), 0) AS cum_profit_share,
       t.min_monetary_c, t.max_monetary_c
FROM t, tot
ORDER BY t.decile;

------------------------------------------------------------------------------------------
-- Purchase-decile table (JOB.md "Purchase deciles")
-- Customers with monetary > 0, monetary desc then customer_id asc; C_i running revenue,
-- T = total revenue of these customers; slice = ceil(10 C_i / T) in integers, clamped
-- to 1..10. All ten slices get a row (empty ones too), then one row (slice null) for
-- the customers with monetary <= 0. customer_share = customers / all customers.
------------------------------------------------------------------------------------------
CREATE OR REPLACE TEMP TABLE purchase_deciles AS
WITH pos AS (
    SELECT customer_id, monetary_c,
           SUM(monetary_c) OVER (ORDER BY monetary_c DESC, customer_id ASC
                                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS c_i,
           SUM(monetary_c) OVER () AS t
    FROM summary WHERE monetary_c > 0
), sliced AS (
    SELECT LEAST(10, GREATEST(1, (10 * CAST(c_i AS HUGEINT) + t - 1) // t)) AS slice, monetary_c
    FROM pos
), n AS (SELECT COUNT(*) AS n_all FROM summary),
rows_ AS (
    SELECT g.slice, COUNT(sl.slice) AS customers, COALESCE(SUM(sl.monetary_c), 0) AS revenue_c
    FROM range(1, 11) g(slice) LEFT JOIN sliced sl ON sl.slice = g.slice
    GROUP BY g.slice
    UNION ALL
    SELECT NULL, COUNT(*), COALESCE(SUM(monetary_c), 0) FROM summary WHERE monetary_c <= 0
)
SELECT r.slice, r.customers, CAST(r.customers AS DOUBLE) / n.n_all AS customer_share, r.revenue_c
FROM rows_ r, n
ORDER BY r.slice NULLS LAST;

------------------------------------------------------------------------------------------
-- Profitability: 20/80/30, whale curve, Gini (JOB.md "Profitability")
------------------------------------------------------------------------------------------
CREATE OR REPLACE TEMP TABLE by_profit AS
SELECT ROW_NUMBER() OVER (ORDER BY profit_c DESC, customer_id ASC) AS pos,
       SUM(profit_c) OVER (ORDER BY profit_c DESC, customer_id ASC
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum_c,
       profit_c
FROM summary;

-- Whale curve point q = cumulative profit of the first ceil(q N / 100) customers / P;
-- null when P <= 0.
CREATE OR REPLACE TEMP TABLE whale_curve AS
WITH n AS (SELECT COUNT(*) AS n, SUM(profit_c) AS p FROM summary),
q AS (SELECT q, (q * n.n + 99) // 100 AS k, n.p FROM range(0, 101) r(q), n)
SELECT q.q, q.k, COALESCE(b.cum_c, 0) AS cum_c,
       CASE WHEN q.p > 0 THEN CAST(COALESCE(b.cum_c, 0) AS DOUBLE) / q.p END AS point
FROM q LEFT JOIN by_profit b ON b.pos = q.k
ORDER BY q.q;

CREATE OR REPLACE TEMP TABLE profit_figures AS
WITH n AS (SELECT COUNT(*) AS n, SUM(profit_c) AS p FROM summary),
k AS (SELECT n, p, (n + 4) // 5 AS top_n, (3 * n + 9) // 10 AS bottom_n FROM n),
top AS (SELECT COALESCE(SUM(b.profit_c), 0) AS top_c FROM by_profit b, k WHERE b.pos <= k.top_n),
bottom AS (SELECT COALESCE(SUM(b.profit_c), 0) AS bottom_c FROM by_profit b, k WHERE b.pos > k.n - k.bottom_n),
peak AS (SELECT point AS whale_peak, q AS q_peak FROM whale_curve
         WHERE point IS NOT NULL ORDER BY point DESC, q ASC LIMIT 1),
-- Gini over monetary > 0, ascending, i = 1..n:
-- G = 2 sum(i x_i) / (n sum x) - (n + 1) / n = (2 sum(i x_i) - (n + 1) sum x) / (n sum x)
g AS (
    SELECT COUNT(*) AS gn, SUM(CAST(x AS HUGEINT)) AS sx, SUM(CAST(i AS HUGEINT) * x) AS six
    FROM (SELECT monetary_c AS x, ROW_NUMBER() OVER (ORDER BY monetary_c ASC) AS i
          FROM summary WHERE monetary_c > 0)
)
SELECT k.n AS customers,
       k.p AS total_profit_c,
       k.top_n AS top20_customers,
       top.top_c AS top20_profit_c,
       CASE WHEN k.p > 0 THEN CAST(top.top_c AS DOUBLE) / k.p END AS top20_profit_share,
       k.bottom_n AS bottom30_customers,
       bottom.bottom_c AS bottom30_profit_c,
       k.p - bottom.bottom_c AS profit_without_bottom30_c,
       (SELECT whale_peak FROM peak) AS whale_peak,
       (SELECT q_peak FROM peak) / 100.0 AS whale_peak_customer_share,
       CASE WHEN g.gn > 0
            THEN CAST(2 * g.six - (g.gn + 1) * g.sx AS DOUBLE) / CAST(g.gn * g.sx AS DOUBLE) END AS gini
FROM k, top, bottom, g;
