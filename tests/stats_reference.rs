//! `flagramp::stats` against published reference values: GrowthBook's stats engine (`gbstats`),
//! confseq's normal-mixture boundary and scipy's special functions. The grids come from
//! `tests/fixtures/stats/*.json`, written by `scripts/reference/stats_reference.py` (provenance
//! in each file and in tests/fixtures/README.md); the hand-copied cases cite the upstream test
//! file they come from. Nothing here reaches the network.

use serde_json::Value;

use flagramp::stats::{
    chi_square_1df_p, erfc, fixed_lower_bound, normal_cdf, normal_mixture_halfwidth, normal_quantile, sample_ratio,
    sequential_lower_bound, Counts, Margin, DEFAULT_TUNING,
};

/// A fixture's cases, after checking it says where it came from.
fn cases(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/fixtures/stats/{name}", env!("CARGO_MANIFEST_DIR"));
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let provenance = file["provenance"].as_str().unwrap_or_default();
    assert!(
        provenance.contains("scripts/reference/stats_reference.py"),
        "{name}: provenance {provenance:?}"
    );
    file["cases"].as_array().cloned().unwrap()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no number {key} in {v}"))
}

fn counts(v: &Value) -> Counts {
    Counts {
        events: v[0].as_f64().unwrap(),
        total: v[1].as_f64().unwrap(),
    }
}

fn margin(case: &Value) -> Margin {
    if case["relative"].as_bool().unwrap() {
        Margin::Relative(0.0)
    } else {
        Margin::Absolute(0.0)
    }
}

/// `|got − want| ≤ tolerance`, with the case in the message.
fn close(got: f64, want: f64, tolerance: f64, what: &str, case: &Value) {
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: got {got:e}, reference {want:e} (off by {:e}, tolerance {tolerance:e}) in {case}",
        (got - want).abs()
    );
}

/// The total of both cohorts: GrowthBook's `N = stat_a.n + stat_b.n`.
fn both(case: &Value) -> f64 {
    counts(&case["canary"]).total + counts(&case["control"]).total
}

/// The sequential bound end to end (estimate, delta-method variance, boundary, `n` of both
/// cohorts, alpha, tuning) equals gbstats `SequentialTwoSidedTTest` fed flagramp's variance rate
/// (`smoothed` in tests/fixtures/stats/gbstats-sequential.json): only rounding may differ.
/// Source: gbstats 0.8.0 (PyPI), `gbstats/frequentist/tests.py`; the same formula is in
/// `growthbook/growthbook` commit `8f1db4456915a8e7b7faf23d5632ca7219d2f469`,
/// `packages/stats/gbstats/frequentist/tests.py` (`sequential_interval_halfwidth`).
#[test]
fn gbstats_sequential_intervals_are_reproduced() {
    let mut checked = 0;
    for case in cases("gbstats-sequential.json") {
        let want = &case["smoothed"];
        if want.get("refused").is_some() {
            continue;
        }
        let (canary, control) = (counts(&case["canary"]), counts(&case["control"]));
        let bound = sequential_lower_bound(
            canary,
            control,
            margin(&case),
            num(&case, "alpha"),
            num(&case, "tuning"),
        )
        .unwrap_or_else(|| panic!("no bound for {case}"));
        let half = (num(want, "upper") - num(want, "lower")) / 2.0;
        let scale = num(want, "estimate").abs() + half;
        close(
            bound.difference,
            num(want, "estimate"),
            1e-12 * scale,
            "estimate",
            &case,
        );
        close(
            bound.lower_bound,
            num(want, "lower"),
            1e-10 * scale,
            "lower bound",
            &case,
        );
        close(bound.level, 1.0 - num(&case, "alpha"), 1e-15, "level", &case);
        checked += 1;
    }
    assert_eq!(checked, 108, "cases checked");
}

/// GrowthBook's own proportion mapping (`ProportionStatistic`: variance `p(1 − p)`, `n` per arm,
/// `N` of both arms to the boundary, the two-sided `alpha`): its half-width comes back exactly
/// from `normal_mixture_halfwidth` given its variance. flagramp's variance rate
/// `(events + 0.5) / (total + 1)` (`Counts::smoothed_rate`) is the one deliberate difference: it
/// moves each rate towards 1/2 by a factor `total / (total + 1)`, so each arm's variance grows by
/// at most `(1 + 0.5/m)²` with `m = min(events, total − events)`, and flagramp's bound is never
/// less cautious than GrowthBook's and at most `0.5/m` of GrowthBook's half-width below it.
/// Source: `growthbook` rows of tests/fixtures/stats/gbstats-sequential.json (gbstats 0.8.0).
#[test]
fn growthbooks_proportion_mapping_differs_only_by_the_smoothing() {
    let mut checked = 0;
    for case in cases("gbstats-sequential.json") {
        let want = &case["growthbook"];
        if want.get("refused").is_some() {
            continue;
        }
        let alpha = num(&case, "alpha");
        let tuning = num(&case, "tuning");
        let gb_half = (num(want, "upper") - num(want, "lower")) / 2.0;
        let variance = num(want, "stddev").powi(2);
        let half = normal_mixture_halfwidth(variance, both(&case), alpha, tuning).unwrap();
        close(
            half,
            gb_half,
            1e-10 * gb_half,
            "half-width from GrowthBook's variance",
            &case,
        );

        let (canary, control) = (counts(&case["canary"]), counts(&case["control"]));
        let bound = sequential_lower_bound(canary, control, margin(&case), alpha, tuning).unwrap();
        let m = [canary, control]
            .iter()
            .map(|c| c.events.min(c.total - c.events))
            .fold(f64::INFINITY, f64::min);
        let gap = num(want, "lower") - bound.lower_bound;
        assert!(
            gap >= -1e-12 * gb_half && gap <= 0.5 / m * gb_half,
            "flagramp's bound {} against GrowthBook's {} (gap {gap:e}, m = {m}) in {case}",
            bound.lower_bound,
            num(want, "lower")
        );
        checked += 1;
    }
    assert_eq!(checked, 108, "cases checked");
}

/// Where gbstats refuses (a control rate of 0: `BASELINE_VARIATION_ZERO_MESSAGE`), a relative
/// margin has no estimate in flagramp either. An absolute margin still has one: flagramp judges
/// the absolute difference there (src/engine/compare.rs falls back to it), which GrowthBook, built
/// for relative lifts, does not. Source: tests/fixtures/stats/gbstats-sequential.json.
#[test]
fn gbstats_refusals_are_missing_relative_estimates() {
    let mut refused = 0;
    for case in cases("gbstats-sequential.json") {
        if case["growthbook"].get("refused").is_none() {
            continue;
        }
        let (canary, control) = (counts(&case["canary"]), counts(&case["control"]));
        assert_eq!(control.events, 0.0, "{case}");
        let bound = sequential_lower_bound(
            canary,
            control,
            margin(&case),
            num(&case, "alpha"),
            num(&case, "tuning"),
        );
        match margin(&case) {
            Margin::Relative(_) => assert_eq!(bound, None, "{case}"),
            Margin::Absolute(_) => assert!(bound.is_some_and(|b| b.lower_bound < b.difference), "{case}"),
        }
        refused += 1;
    }
    assert_eq!(refused, 18, "refused cases");
}

/// The fixed-sample bound `d − z₁₋α·√V` with scipy's `norm.ppf` for `z`, on flagramp's variance
/// (the `smoothed.fixed_lower` of tests/fixtures/stats/gbstats-sequential.json): the quantile's
/// relative error (below 1.2e-9) is all that may differ. GrowthBook's own fixed one-sided test
/// uses Student's t with Welch's degrees of freedom instead; at these sample sizes the two agree
/// to about 1e-4 of the width, and a rollout's counts are larger still.
#[test]
fn fixed_bounds_use_the_normal_quantile() {
    for case in cases("gbstats-sequential.json") {
        let want = &case["smoothed"];
        if want.get("refused").is_some() {
            continue;
        }
        let alpha = num(&case, "alpha");
        let (canary, control) = (counts(&case["canary"]), counts(&case["control"]));
        let bound = fixed_lower_bound(canary, control, margin(&case), alpha).unwrap();
        let width = normal_quantile(1.0 - alpha) * num(want, "stddev");
        close(
            bound.lower_bound,
            num(want, "fixed_lower"),
            2e-9 * width + 1e-15,
            "fixed lower bound",
            &case,
        );
    }
}

/// The sample ratio p-value equals gbstats' `check_srm([exposed, control], [share, 1 − share])`
/// (Pearson's chi-square, `chi2.sf(x, 1)`) to the relative accuracy of `erfc` (1.2e-7).
/// Source: tests/fixtures/stats/gbstats-srm.json (gbstats 0.8.0, `gbstats/utils.py`; the same
/// function is in `growthbook/growthbook` commit `8f1db4456915a8e7b7faf23d5632ca7219d2f469`,
/// `packages/stats/gbstats/utils.py`).
#[test]
fn gbstats_srm_p_values_are_reproduced() {
    let all = cases("gbstats-srm.json");
    assert_eq!(all.len(), 8);
    for case in all {
        let want = num(&case, "p_value");
        let srm = sample_ratio(
            num(&case, "exposed"),
            num(&case, "control"),
            num(&case, "expected_share"),
        )
        .unwrap();
        close(srm.p_value, want, 1.2e-7 * want + 1e-300, "SRM p-value", &case);
    }
}

/// confseq's two-sided normal-mixture boundary bounds the sum `S` after intrinsic time `v`; for
/// a mean of `n` observations of variance `σ²` it is `v = n·σ²`, `v_opt = tuning·σ²`, and the
/// half-width is `bound/n·σ`, the same for every `σ` (both scale as `σ`). So
/// `normal_mixture_halfwidth(σ²/n, n, alpha, tuning)·n/σ` must equal
/// `normal_mixture_bound(n, alpha, tuning, alpha, is_one_sided=False)`.
/// Source: tests/fixtures/stats/confseq-normal-mixture.json (confseq 0.0.11; the formula is
/// `TwoSidedNormalMixture::bound` and `best_rho` in `gostevehoward/confseq` commit
/// `70b1ef30aef08ad459815ea87fc25248f8b15178`, `src/confseq/uniform_boundaries.h`).
#[test]
fn confseq_two_sided_normal_mixture_boundary_is_reproduced() {
    let all = cases("confseq-normal-mixture.json");
    assert_eq!(all.len(), 96);
    for case in all {
        let (v, alpha, v_opt) = (num(&case, "v"), num(&case, "alpha"), num(&case, "v_opt"));
        let want = num(&case, "bound");
        for sigma2 in [1.0, 0.01 * 0.99] {
            let half = normal_mixture_halfwidth(sigma2 / v, v, alpha, v_opt).unwrap();
            close(half * v / sigma2.sqrt(), want, 1e-10 * want, "boundary", &case);
        }
    }
}

/// `erfc`, `normal_cdf` and `normal_quantile` against scipy (`scipy.special.erfc`,
/// `scipy.stats.norm.cdf`, `norm.ppf`) at their stated relative accuracy: 1.2e-7 for `erfc` (and
/// so for `normal_cdf`, built on it), 1.2e-9 for Acklam's quantile, which is exact at 1/2.
/// Source: tests/fixtures/stats/scipy-special.json.
#[test]
fn special_functions_match_scipy() {
    let all = cases("scipy-special.json");
    assert_eq!(all.len(), 42);
    for case in all {
        let (x, want) = (num(&case, "x"), num(&case, "value"));
        let (got, relative) = match case["function"].as_str().unwrap() {
            "erfc" => (erfc(x), 1.2e-7),
            "normal_cdf" => (normal_cdf(x), 1.2e-7),
            "normal_quantile" => (normal_quantile(x), 1.2e-9),
            other => panic!("unknown function {other}"),
        };
        close(got, want, relative * want.abs(), "value", &case);
    }
    // The chi-square tail the SRM p-value is made of, at the 5% critical value scipy gives.
    close(
        chi_square_1df_p(3.841_458_820_694_124),
        0.05,
        0.05 * 1.2e-7,
        "chi2.sf",
        &Value::Null,
    );
}

/// GrowthBook's published sequential cases, `growthbook/growthbook` commit
/// `8f1db4456915a8e7b7faf23d5632ca7219d2f469`, `packages/stats/tests/frequentist/test_tests.py`
/// (values unchanged since commit `803562523b715bd03a99819f8b3d38c65466c12e`, which added them),
/// rounded there to 5 decimals, so the tolerance is half a unit of the fifth decimal.
///
/// `test_sequential_test_runs`: relative lift, tuning 1000, alpha 0.05, arms of 3000 and 3461;
/// CI (-0.55844, 1.56516) around 0.50336. The standard error is the unrounded 0.3334122146400735
/// of `TestSequentialOneSidedGreaterTTest`, same statistics, same file.
///
/// `test_sequential_test_runs_prop`: `ProportionStatistic(sum=1396, n=3000)` as control and
/// `(sum=2422, n=3461)` as treatment, relative, default tuning and alpha; CI (0.40098, 0.60675)
/// around 0.50386, standard error 0.03386. Checked through GrowthBook's mapping written out
/// here, and through `sequential_lower_bound`, whose smoothing moves the bound by 3e-6.
#[test]
fn growthbooks_published_sequential_cases() {
    const ROUNDING: f64 = 5e-6 + 1e-12;
    let null = Value::Null;

    let half = normal_mixture_halfwidth(0.333_412_214_640_073_5_f64.powi(2), 6461.0, 0.05, 1000.0).unwrap();
    let estimate = 0.503_361_085_856_235_8;
    close(
        estimate - half,
        -0.55844,
        ROUNDING,
        "test_sequential_test_runs lower",
        &null,
    );
    close(
        estimate + half,
        1.56516,
        ROUNDING,
        "test_sequential_test_runs upper",
        &null,
    );

    let (pa, na, pb, nb): (f64, f64, f64, f64) = (1396.0 / 3000.0, 3000.0, 2422.0 / 3461.0, 3461.0);
    let (va, vb) = (pa * (1.0 - pa) / na, pb * (1.0 - pb) / nb);
    // gbstats `variance_of_ratios(mean_b, var_b/n_b, mean_a, var_a/n_a, 0)`: the delta method.
    let variance = vb / (pa * pa) + va * pb * pb / pa.powi(4);
    close(
        variance.sqrt(),
        0.03386,
        ROUNDING,
        "test_sequential_test_runs_prop stddev",
        &null,
    );
    let half = normal_mixture_halfwidth(variance, na + nb, 0.05, DEFAULT_TUNING).unwrap();
    let estimate = pb / pa - 1.0;
    close(
        estimate,
        0.50386,
        ROUNDING,
        "test_sequential_test_runs_prop expected",
        &null,
    );
    close(
        estimate - half,
        0.40098,
        ROUNDING,
        "test_sequential_test_runs_prop lower",
        &null,
    );
    close(
        estimate + half,
        0.60675,
        ROUNDING,
        "test_sequential_test_runs_prop upper",
        &null,
    );

    let bound = sequential_lower_bound(
        Counts {
            events: 2422.0,
            total: 3461.0,
        },
        Counts {
            events: 1396.0,
            total: 3000.0,
        },
        Margin::Relative(0.0),
        0.05,
        DEFAULT_TUNING,
    )
    .unwrap();
    close(bound.difference, 0.50386, ROUNDING, "flagramp's estimate", &null);
    close(bound.lower_bound, 0.40098, ROUNDING, "flagramp's lower bound", &null);
}

/// GrowthBook's published SRM case: `check_srm([1000, 1200], [0.5, 0.5])` rounds to
/// 0.000020079 at 9 decimals. `growthbook/growthbook` commit
/// `49bfdc71b9106d9ec1749b7cca64979e3eb69a51`, `packages/stats/tests/test_gbstats.py`
/// (`TestHelpers.test_srm`, dropped by the next commit; `check_srm` is the same test at commit
/// `8f1db4456915a8e7b7faf23d5632ca7219d2f469`, `packages/stats/gbstats/utils.py`, which only
/// also normalizes the weights).
#[test]
fn growthbooks_published_srm_case() {
    let srm = sample_ratio(1000.0, 1200.0, 0.5).unwrap();
    close(srm.p_value, 0.000_020_079, 5e-10 + 1e-12, "check_srm", &Value::Null);
}

/// confseq's published two-sided normal-mixture boundary: with `V_OPT = 100`,
/// `ALPHA_OPT = ALPHA = 0.05`, `normal_mixture_bound(100, ALPHA, V_OPT, ALPHA_OPT, false)` is
/// 30.35209 (to 1e-5, "from a reference implementation in R"), and `best_rho(V_OPT, ALPHA_OPT)`
/// is 12.60056, the `σ²/ρ²` of GrowthBook's `ρ` (so the boundary is tightest where it should be).
/// `gostevehoward/confseq` commit `70b1ef30aef08ad459815ea87fc25248f8b15178`,
/// `test/uniform_boundaries_unittest.cpp` (`MixtureTest.TestTwoSidedNormalMixture`).
#[test]
fn confseqs_published_two_sided_boundary() {
    let half = normal_mixture_halfwidth(1.0 / 100.0, 100.0, 0.05, 100.0).unwrap();
    close(half * 100.0, 30.35209, 1e-5, "normal_mixture_bound", &Value::Null);
    // ρ is not exposed, but it is the boundary's limit: as v → 0 the bound on the sum tends to
    // sqrt(2·ρ·ln(1/α)), so a tiny v gives ρ back (to about v/ρ).
    let tiny = 1e-9;
    let sum_bound = normal_mixture_halfwidth(1.0 / tiny, tiny, 0.05, 100.0).unwrap() * tiny;
    let rho = sum_bound * sum_bound / (2.0 * (1.0_f64 / 0.05).ln());
    close(rho, 12.60056, 1e-5, "best_rho", &Value::Null);
}
