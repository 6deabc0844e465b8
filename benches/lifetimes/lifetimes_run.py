"""Times lifetimes 0.11.3 on a model summary: a purchase model fit, the Gamma-Gamma fit,
expected purchases over 39 weeks, P(alive) and 12-month CLV for every customer.

Usage: lifetimes_run.py SUMMARY.csv MODEL OUT.json   (MODEL: bgnbd, paretonbd, mbgnbd)
Prints one JSON object: seconds per stage, parameters, sums.
"""
import json
import sys
import time

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter


def main():
    path, model, out = sys.argv[1], sys.argv[2], sys.argv[3]
    seconds = {}

    def timed(stage, f):
        start = time.perf_counter()
        value = f()
        seconds[stage] = time.perf_counter() - start
        return value

    df = timed("read", lambda: pd.read_csv(path))
    fitter = {"bgnbd": BetaGeoFitter, "paretonbd": ParetoNBDFitter, "mbgnbd": ModifiedBetaGeoFitter}[model]()
    f, rec, T, m = df["frequency"], df["recency"], df["T"], df["monetary_value"]
    timed("fit", lambda: fitter.fit(f, rec, T))
    repeat = df[f > 0]
    ggf = GammaGammaFitter()
    timed("fit_gamma_gamma", lambda: ggf.fit(repeat["frequency"], repeat["monetary_value"]))
    expected = timed(
        "expected_purchases_39",
        lambda: fitter.conditional_expected_number_of_purchases_up_to_time(39, f, rec, T),
    )
    alive = timed("p_alive", lambda: fitter.conditional_probability_alive(f, rec, T))
    clv = timed(
        "clv_12_months",
        lambda: ggf.customer_lifetime_value(fitter, f, rec, T, m, time=12, discount_rate=0.01, freq="W"),
    )
    seconds["stages"] = sum(v for k, v in seconds.items() if k != "read")
    result = {
        "model": model,
        "seconds": seconds,
        "params": {k: float(v) for k, v in fitter.params_.items()},
        "gamma_gamma": {k: float(v) for k, v in ggf.params_.items()},
        "sums": {
            "p_alive": float(alive.sum()),
            "expected_purchases_39": float(expected.sum()),
            "clv": float(clv.sum()),
        },
    }
    with open(out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
