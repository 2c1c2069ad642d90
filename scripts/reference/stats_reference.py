#!/usr/bin/env python3
"""Writes the reference values that tests/stats_reference.rs checks src/stats.rs against.

    pip install gbstats==0.8.0 confseq==0.0.11   # confseq builds from source: see below
    python3 scripts/reference/stats_reference.py

Installs nothing and reaches no network: it imports GrowthBook's stats engine (`gbstats`),
Howard et al.'s `confseq` and scipy, evaluates them on a fixed grid and writes
tests/fixtures/stats/*.json (sorted keys, full float precision), each with a `provenance` line.
Only that line changes between runs: the values depend on the packages alone.

confseq 0.0.11's sdist pins a pybind11 too old for Python 3.11; it builds with
`apt-get install libboost-dev`, `pip install "pybind11>=2.10" scikit-build cmake ninja` and then
`pip install --no-build-isolation confseq==0.0.11`.
"""

import datetime
import importlib.metadata
import json
import pathlib
import sys

import numpy as np
import scipy.special
import scipy.stats
from confseq import boundaries
from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
from gbstats.models.statistics import ProportionStatistic
from gbstats.utils import check_srm
from pydantic.dataclasses import dataclass

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "stats"
PACKAGES = ["gbstats", "confseq", "scipy", "numpy"]


def provenance():
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in PACKAGES)
    python = ".".join(map(str, sys.version_info[:3]))
    return (
        f"{versions} (PyPI), Python {python}; written by "
        f"`python3 scripts/reference/stats_reference.py` on {datetime.date.today()}"
    )


@dataclass
class SmoothedProportion(ProportionStatistic):
    """flagramp's deliberate departure from GrowthBook (src/stats.rs, `Counts::smoothed_rate`):
    the variance uses (events + 0.5) / (total + 1); the mean stays events / total."""

    @property
    def variance(self):
        s = (self.sum + 0.5) / (self.n + 1)
        return s * (1 - s)


def sequential(canary, control, relative, alpha, tuning, statistic):
    """gbstats' sequential two-sided CI with GrowthBook's arms: control is `a`, canary `b`."""
    config = SequentialConfig(
        alpha=alpha,
        sequential_tuning_parameter=tuning,
        difference_type="relative" if relative else "absolute",
    )
    a = statistic(sum=control[0], n=control[1])
    b = statistic(sum=canary[0], n=canary[1])
    result = SequentialTwoSidedTTest(a, b, config).compute_result()
    if result.error_message:
        # gbstats refuses (control rate 0, zero variance): recorded so the tests see it too.
        return {"refused": result.error_message}
    lower, upper = (float(x) for x in result.ci)
    stddev = float(result.uplift.stddev)
    return {
        "estimate": float(result.expected),
        "stddev": stddev,
        "lower": lower,
        "upper": upper,
        # the fixed-sample one-sided bound of src/stats.rs (`fixed_lower_bound`), with scipy's z
        "fixed_lower": float(result.expected) - float(scipy.stats.norm.ppf(1 - alpha)) * stddev,
    }


def sequential_cases():
    # (canary events, total), (control events, total): the 10% canary shapes, a tiny
    # sample, a large one, and GrowthBook's own proportion case (tests/frequentist/test_tests.py).
    counts = [
        ((220, 11_000), (1_000, 100_000)),
        ((110, 11_000), (1_000, 100_000)),
        ((2_422, 3_461), (1_396, 3_000)),
        ((3, 200), (5, 1_800)),
        ((1, 500), (0, 4_500)),
        ((50, 5_000), (400, 45_000)),
        ((1_200, 1_000_000), (10_000, 9_000_000)),
    ]
    rows = []
    for canary, control in counts:
        for relative in (False, True):
            for alpha in (0.05, 0.01, 0.001):
                for tuning in (1_000, 5_000, 50_000):
                    args = (canary, control, relative, alpha, tuning)
                    rows.append(
                        {
                            "canary": list(canary),
                            "control": list(control),
                            "relative": relative,
                            "alpha": alpha,
                            "tuning": tuning,
                            "growthbook": sequential(*args, ProportionStatistic),
                            "smoothed": sequential(*args, SmoothedProportion),
                        }
                    )
    return rows


def srm_cases():
    # (exposed, control, expected exposed share); check_srm takes every arm's users and weight.
    cases = [
        (1_100, 8_900, 0.1),
        (1_000, 1_200, 0.5),
        (5_050, 4_950, 0.5),
        (1_020, 8_980, 0.1),
        (0, 100, 0.1),
        (30, 70, 0.25),
        (260_000, 740_000, 0.25),
        (120_000, 880_000, 0.1),
    ]
    return [
        {
            "exposed": e,
            "control": c,
            "expected_share": s,
            "p_value": float(check_srm([e, c], [s, 1 - s])),
        }
        for e, c, s in cases
    ]


def mixture_cases():
    # confseq's two-sided normal-mixture boundary on the sum after intrinsic time v, tuned at
    # v_opt with alpha_opt = alpha (as GrowthBook sets rho from the same alpha).
    rows = []
    for v in (1, 10, 100, 6_461, 100_000, 10_000_000):
        for alpha in (0.05, 0.01, 0.001, 0.2):
            for v_opt in (100, 1_000, 5_000, 1_000_000):
                bound = boundaries.normal_mixture_bound(v, alpha, v_opt, alpha, False)
                rows.append({"v": v, "alpha": alpha, "v_opt": v_opt, "bound": float(bound)})
    return rows


def special_cases():
    erfc = [-3.0, -1.0, -0.5, 0.0, 1e-8, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 26.0]
    quantile = [1e-300, 1e-12, 1e-6, 0.001, 0.01, 0.02425, 0.025, 0.05, 0.1, 0.3, 0.5]
    quantile += [0.7, 0.9, 0.95, 0.97575, 0.975, 0.99, 0.999, 1 - 1e-6]
    cdf = [-30.0, -8.0, -3.0, -1.959963984540054, -0.5, 0.0, 0.5, 1.0, 3.0]
    return (
        [{"function": "erfc", "x": x, "value": float(scipy.special.erfc(x))} for x in erfc]
        + [{"function": "normal_quantile", "x": p, "value": float(scipy.stats.norm.ppf(p))} for p in quantile]
        + [{"function": "normal_cdf", "x": x, "value": float(scipy.stats.norm.cdf(x))} for x in cdf]
    )


def write(name, what, cases):
    # One case a line, keys sorted, floats as repr: diffs of a regeneration read row by row.
    rows = ",\n  ".join(json.dumps(c, sort_keys=True, allow_nan=False) for c in cases)
    head = {"provenance": provenance(), "what": what}
    lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text("{\n" + "\n".join(lines) + f'\n "cases": [\n  {rows}\n ]\n}}\n')


def main():
    np.seterr(all="raise")
    write(
        "gbstats-sequential.json",
        "gbstats SequentialTwoSidedTTest on proportions (control = a, canary = b); "
        "`growthbook` with ProportionStatistic, `smoothed` with flagramp's variance rate",
        sequential_cases(),
    )
    write("gbstats-srm.json", "gbstats.utils.check_srm([exposed, control], [share, 1 - share])", srm_cases())
    write(
        "confseq-normal-mixture.json",
        "confseq.boundaries.normal_mixture_bound(v, alpha, v_opt, alpha, is_one_sided=False)",
        mixture_cases(),
    )
    write("scipy-special.json", "scipy.special.erfc, scipy.stats.norm.ppf and norm.cdf", special_cases())


if __name__ == "__main__":
    main()
