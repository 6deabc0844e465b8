"""Compares a custvalue `ltv --summary --json` run with a lifetimes run (lifetimes_run.py)
on the same summary: parameters, sums of P(alive) and expected purchases, CLV, times.

Usage: compare.py LIFETIMES.json CUSTVALUE.json CUSTVALUE_SECONDS...
Exits 1 when a parameter differs by more than 0.5% or a sum by more than 0.1%.
"""
import json
import statistics
import sys

NAMES = {"gamma": "v"}  # custvalue's Gamma-Gamma γ is lifetimes' v


def main():
    lt = json.load(open(sys.argv[1]))
    cv = json.load(open(sys.argv[2]))
    times = [float(t) for t in sys.argv[3:]]
    ok = True
    rows = []

    def check(what, ours, theirs, tol):
        nonlocal ok
        rel = abs(ours / theirs - 1.0) if theirs else abs(ours)
        good = rel <= tol
        ok &= good
        rows.append(f"| {what} | {ours:.6g} | {theirs:.6g} | {rel * 100:.4f}% | {'ok' if good else 'DIFFERS'} |")

    for name, value in cv["purchase_model"]["params"].items():
        check(name, value, lt["params"][name], 0.005)
    for name, value in cv["spend_model"]["params"].items():
        check(f"Gamma-Gamma {name}", value, lt["gamma_gamma"][NAMES.get(name, name)], 0.005)
    check("sum P(alive)", cv["totals"]["p_alive"], lt["sums"]["p_alive"], 0.001)
    check("sum expected purchases 39 weeks", cv["totals"]["expected_purchases"], lt["sums"]["expected_purchases_39"], 0.001)
    # CLV: lifetimes discounts 12 monthly steps of 4.345 weeks at 1% a month, custvalue 52
    # weekly steps at the same annual rate; the sums agree to the discretisation only.
    check("sum CLV (different steps)", cv["totals"]["clv"], lt["sums"]["clv"], 0.02)
    median = statistics.median(times)
    stages = lt["seconds"]["stages"]
    print(f"model {lt['model']}: lifetimes stages {stages:.2f} s (read {lt['seconds']['read']:.2f} s), "
          f"custvalue median {median:.3f} s of {len(times)} runs {['%.3f' % t for t in times]}, "
          f"ratio 1/{stages / median:.1f}")
    print("lifetimes seconds per stage: " + ", ".join(f"{k} {v:.2f}" for k, v in lt["seconds"].items()))
    print("| figure | custvalue | lifetimes | difference | |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
