//! The statistics of `compare` checks (docs/statistics.md): a one-sided bound on how much worse
//! the canary cohort's rate is than the control's, valid however often it is looked at, and the
//! sample ratio test. Pure arithmetic: no I/O, no clock, no panics on any input.

use std::f64::consts::PI;

/// Counts of one cohort over the data judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counts {
    /// Events, such as failed requests.
    pub events: f64,
    /// What the events are counted out of, such as requests.
    pub total: f64,
}

impl Counts {
    /// `events / total`; `None` for counts that are no proportion (no total, negative or
    /// non-finite counts, more events than total).
    pub fn rate(&self) -> Option<f64> {
        let valid = self.total > 0.0
            && self.total.is_finite()
            && self.events.is_finite()
            && self.events >= 0.0
            && self.events <= self.total;
        valid.then(|| self.events / self.total)
    }

    /// The rate used for the variance only: `(events + 0.5) / (total + 1)`. With no events at
    /// all the plain rate has variance 0, which would make a tiny sample look certain; the
    /// half-event smoothing keeps the width honest without moving the estimate. This is the one
    /// deliberate difference from GrowthBook, whose `ProportionStatistic` takes `p(1 − p)` of the
    /// plain rate (and refuses a control without events): the smoothed rate lies between the
    /// plain one and 1/2, so the variance only grows, by at most `(1 + 0.5/m)²` with
    /// `m = min(events, total − events)` (tests/stats_reference.rs).
    fn smoothed_rate(&self) -> f64 {
        (self.events + 0.5) / (self.total + 1.0)
    }
}

/// How much worse the canary may be before the check fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Margin {
    /// `p_canary − p_control` may be at most this (0.005 = half a point).
    Absolute(f64),
    /// `p_canary / p_control − 1` may be at most this (0.1 = 10% more).
    Relative(f64),
}

impl Margin {
    /// The allowed increase, in the margin's own units.
    pub fn allowed(self) -> f64 {
        match self {
            Margin::Absolute(m) | Margin::Relative(m) => m,
        }
    }
}

/// A one-sided lower bound on the canary's increase over the control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// The estimated increase, in the margin's units.
    pub difference: f64,
    /// The increase is at least this, at `level`.
    pub lower_bound: f64,
    /// `1 − alpha` of the alpha the bound was computed at.
    pub level: f64,
}

impl Bound {
    /// Whether the data show, at the bound's level, more increase than the margin allows.
    pub fn exceeds(&self, margin: Margin) -> bool {
        self.lower_bound > margin.allowed()
    }
}

/// The estimate and its variance: the difference of proportions, or for a relative margin the
/// ratio minus one with the delta-method variance (as GrowthBook's relative effects). `None` when
/// either cohort has no rate, or a relative margin meets a control without events.
fn estimate(canary: Counts, control: Counts, margin: Margin) -> Option<(f64, f64)> {
    let (pc, pk) = (canary.rate()?, control.rate()?);
    let (sc, sk) = (canary.smoothed_rate(), control.smoothed_rate());
    let var = |p: f64, n: f64| p * (1.0 - p) / n;
    let (vc, vk) = (var(sc, canary.total), var(sk, control.total));
    let found = match margin {
        Margin::Absolute(_) => (pc - pk, vc + vk),
        Margin::Relative(_) if pk > 0.0 => (pc / pk - 1.0, vc / (pk * pk) + pc * pc * vk / pk.powi(4)),
        Margin::Relative(_) => return None,
    };
    (found.0.is_finite() && found.1.is_finite() && found.1 >= 0.0).then_some(found)
}

/// GrowthBook's sequential tuning parameter default: the sample size (both cohorts) at which the
/// normal-mixture boundary is tightest.
pub const DEFAULT_TUNING: f64 = 5000.0;

/// The half-width of the two-sided normal-mixture confidence sequence (Howard et al. 2021,
/// Proposition 4; the boundary of GrowthBook's `SequentialTwoSidedTTest`) for an estimate with
/// variance `variance` after `n` observations in all, at `alpha`, tuned to be tightest near
/// `tuning` observations. It holds at every `n` at once with probability `1 − alpha`, which is
/// what makes any number of looks safe. It equals gbstats' `sequential_interval_halfwidth` and
/// confseq's `normal_mixture_bound(n·σ², alpha, tuning·σ², alpha, is_one_sided=False) / n`
/// (tests/stats_reference.rs, tests/fixtures/README.md).
pub fn normal_mixture_halfwidth(variance: f64, n: f64, alpha: f64, tuning: f64) -> Option<f64> {
    if !(n > 0.0 && alpha > 0.0 && alpha < 1.0 && tuning > 0.0 && variance >= 0.0) {
        return None;
    }
    let log_alpha = -2.0 * alpha.ln();
    let rho2 = (log_alpha + (log_alpha + 1.0).ln()) / tuning;
    let width = 2.0 * (n * rho2 + 1.0) / (n * n * rho2) * ((n * rho2 + 1.0).sqrt() / alpha).ln();
    let half = (variance * n * width).sqrt();
    half.is_finite().then_some(half)
}

/// The sequential lower bound: the estimate minus the normal-mixture half-width at `alpha`.
///
/// The boundary is GrowthBook's two-sided one at `alpha`, with `n` the total of both cohorts and
/// the delta-method variance of gbstats for relative margins; using it for a one-sided claim
/// keeps the false-alarm rate at most `alpha` (the lower crossing alone has at most that chance),
/// at a small cost in sensitivity, and keeps the numbers comparable with GrowthBook's default
/// sequential test. GrowthBook's repository also has a one-sided variant
/// (`SequentialOneSidedTreatmentGreaterTTest`, `ρ` at `2·alpha`), not in the released gbstats
/// 0.8.0, whose bound would be 4–8% narrower at the same `alpha`.
pub fn sequential_lower_bound(
    canary: Counts,
    control: Counts,
    margin: Margin,
    alpha: f64,
    tuning: f64,
) -> Option<Bound> {
    let (difference, variance) = estimate(canary, control, margin)?;
    let n = canary.total + control.total;
    let half = normal_mixture_halfwidth(variance, n, alpha, tuning)?;
    Some(Bound {
        difference,
        lower_bound: difference - half,
        level: 1.0 - alpha,
    })
}

/// The fixed-sample one-sided bound, `d − z₁₋α·√V`, for a window judged once at this `alpha`.
pub fn fixed_lower_bound(canary: Counts, control: Counts, margin: Margin, alpha: f64) -> Option<Bound> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let (difference, variance) = estimate(canary, control, margin)?;
    let z = normal_quantile(1.0 - alpha);
    let lower_bound = difference - z * variance.sqrt();
    lower_bound.is_finite().then_some(Bound {
        difference,
        lower_bound,
        level: 1.0 - alpha,
    })
}

/// The alpha of look `k` (from 1): `alpha·6/(π²k²)`. The series sums to `alpha`, so a stage
/// evaluated any number of times spends at most `alpha` in all.
pub fn spent_alpha(alpha: f64, k: u32) -> f64 {
    let k = f64::from(k.max(1));
    alpha * 6.0 / (PI * PI * k * k)
}

/// The sample ratio test of a stage: do the cohorts have the sizes its percentage means?
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRatio {
    /// Units counted in the exposed cohort.
    pub exposed: f64,
    /// Units counted in both cohorts.
    pub total: f64,
    /// The exposed share the percentage means.
    pub expected_share: f64,
    /// The exposed share counted.
    pub observed_share: f64,
    /// Pearson's chi-square test with one degree of freedom (as GrowthBook's SRM check).
    pub p_value: f64,
}

/// The sample ratio test; `None` when there is nothing to test (no units, a share of 0 or 1).
pub fn sample_ratio(exposed: f64, control: f64, expected_share: f64) -> Option<SampleRatio> {
    let total = exposed + control;
    let valid = exposed >= 0.0 && control >= 0.0 && total > 0.0 && total.is_finite();
    if !(valid && expected_share > 0.0 && expected_share < 1.0) {
        return None;
    }
    let (e1, e2) = (total * expected_share, total * (1.0 - expected_share));
    let x2 = (exposed - e1).powi(2) / e1 + (control - e2).powi(2) / e2;
    Some(SampleRatio {
        exposed,
        total,
        expected_share,
        observed_share: exposed / total,
        p_value: chi_square_1df_p(x2),
    })
}

/// The upper tail of the chi-square distribution with one degree of freedom: `erfc(√(x/2))`.
pub fn chi_square_1df_p(x2: f64) -> f64 {
    if x2.is_nan() {
        return 1.0;
    }
    erfc((x2.max(0.0) / 2.0).sqrt()).clamp(0.0, 1.0)
}

/// The complementary error function, with fractional error below 1.2e-7 everywhere
/// (Numerical Recipes' Chebyshev fit, `erfcc`).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9);
/// infinite at 0 and 1, NaN outside.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The cumulative counts of a stage at one start point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Start {
    /// Which start point of the stage this is (0: the stage's entry); suffix `index` is tested
    /// at `spent_alpha(alpha, index + 1)`.
    pub index: u32,
    /// The canary's cumulative counts at the start point.
    pub canary: Counts,
    /// The control's cumulative counts at the start point.
    pub control: Counts,
}

impl Start {
    /// The stage's entry: index 0, nothing counted yet.
    pub fn entry() -> Start {
        let zero = Counts {
            events: 0.0,
            total: 0.0,
        };
        Start {
            index: 0,
            canary: zero,
            control: zero,
        }
    }
}

/// The outcome of testing the suffixes of a stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuffixResult {
    /// Where in the given start points the judged suffix begins.
    pub position: usize,
    /// The canary's counts in the suffix.
    pub canary: Counts,
    /// The control's counts in the suffix.
    pub control: Counts,
    /// The suffix's bound.
    pub bound: Bound,
}

/// Tests every suffix of a stage. `starts` holds the cumulative counts at each start point
/// (ordinarily the stage's entry first), `now` the cumulative counts now. The suffix from start
/// point `j` is `now − starts[j]`, tested with the sequential bound at
/// `spent_alpha(alpha, index + 1)` of its start point's index, so the start points together
/// spend at most `alpha` and a regression that begins late is judged on data from after its
/// onset. Suffixes with fewer than `min_samples` in either cohort are not tested.
///
/// Returns the suffix whose bound exceeds the margin by most; when none does, the longest
/// tested suffix (the whole stage when it has enough data); `None` when no suffix has enough.
pub fn suffix_test(
    starts: &[Start],
    now: (Counts, Counts),
    margin: Margin,
    alpha: f64,
    tuning: f64,
    min_samples: f64,
) -> Option<SuffixResult> {
    let minus = |a: Counts, b: Counts| {
        let total = (a.total - b.total).max(0.0);
        // Events can only be a part of the total; a suffix's counts may drift past it when a
        // counter was reset in between.
        Counts {
            events: (a.events - b.events).max(0.0).min(total),
            total,
        }
    };
    let mut failing: Option<SuffixResult> = None;
    let mut longest: Option<SuffixResult> = None;
    for (position, start) in starts.iter().enumerate() {
        let (c, k) = (minus(now.0, start.canary), minus(now.1, start.control));
        if !(c.total >= min_samples && k.total >= min_samples) {
            continue;
        }
        let alpha_j = spent_alpha(alpha, start.index.saturating_add(1));
        let Some(bound) = sequential_lower_bound(c, k, margin, alpha_j, tuning) else {
            continue;
        };
        let result = SuffixResult {
            position,
            canary: c,
            control: k,
            bound,
        };
        if longest.is_none() {
            longest = Some(result);
        }
        let excess = bound.lower_bound - margin.allowed();
        if bound.exceeds(margin) && failing.is_none_or(|f| excess > f.bound.lower_bound - margin.allowed()) {
            failing = Some(result);
        }
    }
    failing.or(longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(events: f64, total: f64) -> Counts {
        Counts { events, total }
    }

    #[test]
    fn special_functions_match_textbook_values() {
        // Abramowitz & Stegun, table 26.1 / 7.1.
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.99) - 2.326_347_874).abs() < 1e-8);
        assert!((normal_quantile(0.001) + 3.090_232_306).abs() < 1e-8);
        assert!((normal_cdf(1.959_963_985) - 0.975).abs() < 1e-7);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-7);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-7);
        // The chi-square 1-df critical values at 5% and 0.1%.
        assert!((chi_square_1df_p(3.841_458_821) - 0.05).abs() < 1e-6);
        assert!((chi_square_1df_p(10.827_566_17) - 0.001).abs() < 1e-7);
        assert!(normal_quantile(1.5).is_nan() && normal_quantile(f64::NAN).is_nan());
    }

    #[test]
    fn the_sample_ratio_of_the_issue_is_a_mismatch() {
        // 1,100 of 10,000 users exposed where 10% expects 1,000: x² = 100²/1000 + 100²/9000.
        let srm = sample_ratio(1_100.0, 8_900.0, 0.1).unwrap();
        assert!((srm.observed_share - 0.11).abs() < 1e-12);
        assert!(srm.p_value < 0.001, "{}", srm.p_value);
        let fits = sample_ratio(1_010.0, 8_990.0, 0.1).unwrap();
        assert!(fits.p_value > 0.5, "{}", fits.p_value);
        assert_eq!(sample_ratio(0.0, 0.0, 0.1), None);
        assert_eq!(sample_ratio(1.0, 1.0, 1.0), None);
    }

    #[test]
    fn the_normal_mixture_width_shrinks_with_data_and_is_widest_for_small_alpha() {
        let v = 0.01 * 0.99;
        let at = |n: f64, a: f64| normal_mixture_halfwidth(v / n, n, a, DEFAULT_TUNING).unwrap();
        assert!(at(10_000.0, 0.05) < at(1_000.0, 0.05));
        assert!(at(10_000.0, 0.01) > at(10_000.0, 0.05));
        // Always wider than the fixed-sample interval at the same alpha: the price of peeking.
        for n in [100.0, 1_000.0, 5_000.0, 100_000.0] {
            let fixed = normal_quantile(0.975) * (v / n).sqrt();
            assert!(at(n, 0.05) > fixed, "n = {n}");
        }
    }

    #[test]
    fn a_doubled_error_rate_is_found_and_an_equal_one_is_not() {
        let control = counts(1_000.0, 100_000.0);
        let doubled = sequential_lower_bound(
            counts(220.0, 11_000.0),
            control,
            Margin::Absolute(0.0),
            0.01,
            DEFAULT_TUNING,
        )
        .unwrap();
        assert!(doubled.exceeds(Margin::Absolute(0.0)), "{doubled:?}");
        assert!(doubled.lower_bound < doubled.difference);
        let same = sequential_lower_bound(
            counts(110.0, 11_000.0),
            control,
            Margin::Absolute(0.0),
            0.01,
            DEFAULT_TUNING,
        )
        .unwrap();
        assert!(!same.exceeds(Margin::Absolute(0.0)), "{same:?}");
        let relative = sequential_lower_bound(
            counts(220.0, 11_000.0),
            control,
            Margin::Relative(0.1),
            0.01,
            DEFAULT_TUNING,
        )
        .unwrap();
        assert!((relative.difference - 1.0).abs() < 1e-12);
        assert!(relative.exceeds(Margin::Relative(0.1)));
        // No events in the control: a relative increase has no estimate.
        assert_eq!(
            sequential_lower_bound(
                counts(1.0, 100.0),
                counts(0.0, 100.0),
                Margin::Relative(0.1),
                0.01,
                DEFAULT_TUNING
            ),
            None
        );
    }

    #[test]
    fn no_events_in_a_small_sample_is_no_certainty() {
        let b = fixed_lower_bound(counts(3.0, 20.0), counts(0.0, 20.0), Margin::Absolute(0.0), 0.01).unwrap();
        assert!(b.lower_bound < 0.15 - 0.05, "{b:?}");
    }

    #[test]
    fn spent_alphas_sum_to_alpha() {
        let sum: f64 = (1..=100_000).map(|k| spent_alpha(0.01, k)).sum();
        assert!(sum < 0.01 && sum > 0.0099_99, "{sum}");
        assert!((spent_alpha(0.01, 1) - 0.01 * 6.0 / (PI * PI)).abs() < 1e-15);
    }

    #[test]
    fn a_late_regression_is_judged_on_the_data_after_it_began() {
        // Eight healthy looks of 10,000 canary / 90,000 control requests at 1%, then one look
        // at 2% in the canary: the whole stage dilutes it, the last suffix shows it.
        let mut points = vec![Start::entry()];
        let (mut c, mut k) = (counts(0.0, 0.0), counts(0.0, 0.0));
        for look in 0..9u32 {
            if look > 0 {
                points.push(Start {
                    index: look,
                    canary: c,
                    control: k,
                });
            }
            let canary_events = if look == 8 { 200.0 } else { 100.0 };
            c = counts(c.events + canary_events, c.total + 10_000.0);
            k = counts(k.events + 900.0, k.total + 90_000.0);
        }
        let whole = sequential_lower_bound(c, k, Margin::Absolute(0.0), 0.01, DEFAULT_TUNING).unwrap();
        assert!(!whole.exceeds(Margin::Absolute(0.0)), "{whole:?}");
        let found = suffix_test(&points, (c, k), Margin::Absolute(0.0), 0.01, DEFAULT_TUNING, 500.0).unwrap();
        assert_eq!(found.position, 8, "{found:?}");
        assert!(found.bound.exceeds(Margin::Absolute(0.0)));
        // Healthy everywhere: the whole stage is reported.
        let healthy = suffix_test(
            &points,
            (counts(900.0, 90_000.0), counts(8_100.0, 810_000.0)),
            Margin::Absolute(0.0),
            0.01,
            DEFAULT_TUNING,
            500.0,
        );
        assert_eq!(healthy.map(|h| h.position), Some(0));
        assert_eq!(
            suffix_test(
                &points[..1],
                (counts(1.0, 10.0), counts(1.0, 10.0)),
                Margin::Absolute(0.0),
                0.01,
                DEFAULT_TUNING,
                500.0
            ),
            None
        );
    }

    /// A small deterministic generator, so the simulation below is the same on every run.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Binomial(n, p) through its normal approximation, clamped to [0, n]; n·p is large
        /// enough here for the approximation to be close.
        fn binomial(&mut self, n: f64, p: f64) -> f64 {
            let u = self.next().clamp(1e-12, 1.0 - 1e-12);
            (n * p + normal_quantile(u) * (n * p * (1.0 - p)).sqrt())
                .round()
                .clamp(0.0, n)
        }
    }

    #[test]
    fn under_no_effect_twenty_looks_stay_under_alpha() {
        // 2,000 stages of 20 looks each, canary at 10% of 20,000 requests a look, both at 1%.
        let (stages, looks, alpha) = (2_000, 20, 0.05);
        let mut rng = SplitMix(0x5eed);
        let (mut sequential, mut fixed, mut suffix, mut naive) = (0, 0, 0, 0);
        for _ in 0..stages {
            let (mut c, mut k) = (counts(0.0, 0.0), counts(0.0, 0.0));
            let mut points = vec![Start::entry()];
            let (mut s_hit, mut f_hit, mut x_hit, mut n_hit) = (false, false, false, false);
            for look in 1..=looks {
                let (ce, ke) = (rng.binomial(2_000.0, 0.01), rng.binomial(18_000.0, 0.01));
                let fresh = (counts(ce, 2_000.0), counts(ke, 18_000.0));
                c = counts(c.events + ce, c.total + 2_000.0);
                k = counts(k.events + ke, k.total + 18_000.0);
                let margin = Margin::Absolute(0.0);
                s_hit |= sequential_lower_bound(c, k, margin, alpha, DEFAULT_TUNING).is_some_and(|b| b.exceeds(margin));
                f_hit |= fixed_lower_bound(fresh.0, fresh.1, margin, spent_alpha(alpha, look))
                    .is_some_and(|b| b.exceeds(margin));
                x_hit |= suffix_test(&points, (c, k), margin, alpha, DEFAULT_TUNING, 500.0)
                    .is_some_and(|r| r.bound.exceeds(margin));
                n_hit |= fixed_lower_bound(c, k, margin, alpha).is_some_and(|b| b.exceeds(margin));
                points.push(Start {
                    index: look,
                    canary: c,
                    control: k,
                });
            }
            naive += usize::from(n_hit);
            sequential += usize::from(s_hit);
            fixed += usize::from(f_hit);
            suffix += usize::from(x_hit);
        }
        // Three standard errors of a rate of alpha over this many stages.
        let tolerance = 3.0 * (alpha * (1.0 - alpha) / f64::from(stages)).sqrt();
        for (what, hits) in [
            ("sequential", sequential),
            ("fixed windows", fixed),
            ("suffixes", suffix),
        ] {
            let rate = hits as f64 / f64::from(stages);
            assert!(
                rate <= alpha + tolerance,
                "{what}: {rate} false alarms over {looks} looks"
            );
        }
        // The same data judged by a plain one-sided z-test on the growing sample at each look
        // alarms far more often: the simulation can tell a valid test from a peeking one.
        let naive_rate = naive as f64 / f64::from(stages);
        assert!(naive_rate > 2.0 * alpha, "naive peeking: {naive_rate}");
    }

    #[test]
    fn no_input_panics_or_claims_more_than_its_estimate() {
        let odd = [
            0.0,
            -1.0,
            1.0,
            0.5,
            1e300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            3.0,
        ];
        for &e in &odd {
            for &t in &odd {
                for &a in &[0.0, 0.01, 0.5, 1.0, f64::NAN] {
                    for margin in [Margin::Absolute(0.0), Margin::Relative(0.1)] {
                        let c = counts(e, t);
                        let k = counts(1.0, 10.0);
                        for b in [
                            sequential_lower_bound(c, k, margin, a, DEFAULT_TUNING),
                            fixed_lower_bound(c, k, margin, a),
                        ]
                        .into_iter()
                        .flatten()
                        {
                            assert!(b.lower_bound <= b.difference, "{b:?}");
                        }
                        let _ = sample_ratio(e, t, a);
                        let start = Start {
                            index: 0,
                            canary: c,
                            control: k,
                        };
                        let _ = suffix_test(&[start], (k, c), margin, a, DEFAULT_TUNING, 1.0);
                    }
                }
            }
        }
    }
}
