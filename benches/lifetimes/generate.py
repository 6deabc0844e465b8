"""A BG/NBD + Gamma-Gamma model summary drawn from the models themselves.

Customers are acquired on whole days spread over 52 weeks and observed to week 78, so T
(weeks) takes 365 values; purchase times are continuous, so recency is continuous. Drawn
with the CDNOW estimates of Fader, Hardie & Lee (2005) and Fader & Hardie (2013):
r 0.243, alpha 4.414, a 0.793, b 2.426; p 6.25, q 3.74, gamma 15.44.

Per customer: lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); while active, purchases are
Poisson(lambda); after each repeat purchase the customer drops out with probability p, so
she makes K ~ Geometric(p) repeat purchases at most. With n ~ Poisson(lambda T) events in
(0, T], x = min(K, n) and, given n, the x-th event time is T times the x-th of n uniform
order statistics, T * Beta(x, n - x + 1). Mean spend of x purchases ~ Gamma(p x, rate nu x)
with nu ~ Gamma(q, rate gamma).

Writes customer_id,frequency,recency,T,monetary_value (lifetimes' column names).
Usage: generate.py N OUT.csv [SEED]
"""
import sys

import numpy as np


def main():
    n = int(sys.argv[1])
    out = sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rng = np.random.default_rng(seed)
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    p_, q, gamma = 6.25, 3.74, 15.44
    first_day = rng.integers(0, 365, n)
    T = (546 - first_day) / 7.0
    lam = rng.gamma(r, 1.0 / alpha, n)
    drop = rng.beta(a, b, n)
    k = rng.geometric(drop)  # repeat purchases before dropping out (>= 1)
    events = rng.poisson(lam * T)
    x = np.minimum(k, events)
    buyers = x > 0
    recency = np.zeros(n)
    xb, nb = x[buyers], events[buyers]
    recency[buyers] = T[buyers] * rng.beta(xb, nb - xb + 1)
    nu = rng.gamma(q, 1.0 / gamma, n)
    spend = np.zeros(n)
    spend[buyers] = rng.gamma(p_ * xb, 1.0 / (nu[buyers] * xb))
    with open(out, "w") as f:
        f.write("customer_id,frequency,recency,T,monetary_value\n")
        ids = np.arange(1, n + 1)
        # Recency and spend with 6 decimals: continuous for the models, exact in text.
        np.savetxt(
            f,
            np.column_stack([ids, x, recency, T, spend]),
            fmt=["%d", "%d", "%.6f", "%.6f", "%.6f"],
            delimiter=",",
        )
    print(f"{n} customers, {int(buyers.sum())} repeat buyers -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
