//! A small seeded generator and exact samplers for the histories.
//!
//! The benchmark must generate the same data on every run, so it does not use `rand`'s
//! OS-seeded or version-dependent generators: xoshiro256** seeded through SplitMix64 is a few
//! lines, and its output is fixed by its published definition. The counts must be real draws
//! (the statistics judged are only meaningful on them), so binomial and Poisson draws are exact
//! at every size, not normal approximations: large draws are split recursively (Knuth, TAOCP
//! vol. 2, 3.4.1) until they are small enough for inversion.
//!
//! Bit-for-bit repeatability holds for one platform's `libm` (`ln`, `cos`, `exp`); the
//! generator writes a digest of its output into `truth.json` so a change would show.

/// Below this many trials a binomial draw is made by inversion (a few dozen steps at most).
const INVERSION_MAX_N: u64 = 64;
/// Below this mean a Poisson draw is made by multiplying uniforms (about `lambda` steps).
const MULTIPLICATION_MAX_LAMBDA: f64 = 16.0;

/// xoshiro256** (Blackman and Vigna, 2018).
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for one stream: `seed` and `stream` (a trial's number) give independent
    /// streams, so a trial's data do not depend on which other trials are generated.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut state = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let s = [
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
            splitmix64(&mut state),
        ];
        Rng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform on (0, 1): never 0, so `ln` of it is always finite.
    pub fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Uniform integer in `lo..hi` (rejection, so no modulo bias).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo < hi, "empty range {lo}..{hi}");
        let span = (hi - lo) as u64;
        let zone = u64::MAX - u64::MAX % span;
        loop {
            let x = self.next_u64();
            if x < zone {
                return lo + (x % span) as i64;
            }
        }
    }

    /// Uniform on `[lo, hi)`.
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.open01() - 0.5 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller; the second value is dropped to keep the state simple).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.open01(), self.open01());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Gamma(shape, 1) for `shape >= 1` (Marsaglia and Tsang, 2000): every caller here has
    /// large shapes.
    pub fn gamma(&mut self, shape: f64) -> f64 {
        assert!(shape >= 1.0, "gamma shape {shape} < 1");
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.open01();
            if u < 1.0 - 0.0331 * x.powi(4) || u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    /// Beta(a, b) as a ratio of gammas.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }

    /// Binomial(n, p), exact. The a-th smallest of n uniforms is Beta(a, n + 1 − a); whether it
    /// lies above or below p tells which half of the uniforms the remaining count is in, with p
    /// rescaled to that half (TAOCP 3.4.1).
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        let (mut n, mut p) = (n, p);
        if n == 0 || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        let mut count = 0;
        while n > INVERSION_MAX_N {
            let a = 1 + n / 2;
            let b = n + 1 - a;
            let y = self.beta(a as f64, b as f64);
            if y >= p {
                n = a - 1;
                p /= y;
            } else {
                count += a;
                n = b - 1;
                p = (p - y) / (1.0 - y);
            }
        }
        count + self.binomial_inversion(n, p)
    }

    fn binomial_inversion(&mut self, n: u64, p: f64) -> u64 {
        if p > 0.5 {
            return n - self.binomial_inversion(n, 1.0 - p);
        }
        if n == 0 || p <= 0.0 {
            return 0;
        }
        let q = 1.0 - p;
        let odds = p / q;
        let mut pmf = q.powi(n as i32);
        let mut u = self.open01();
        let mut k = 0;
        while u > pmf && k < n {
            u -= pmf;
            k += 1;
            pmf *= odds * (n - k + 1) as f64 / k as f64;
        }
        k
    }

    /// Poisson(lambda), exact: the count of a unit-rate process's arrivals in [0, lambda]. The
    /// m-th arrival comes at Gamma(m); if after lambda, the first m − 1 arrivals are uniform
    /// before it, else m arrivals are counted and the rest of the interval is drawn again
    /// (Ahrens and Dieter, 1974).
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        let mut lambda = lambda;
        let mut count = 0;
        while lambda > MULTIPLICATION_MAX_LAMBDA {
            let m = (lambda * 7.0 / 8.0).floor() as u64;
            let arrival = self.gamma(m as f64);
            if arrival > lambda {
                return count + self.binomial(m - 1, lambda / arrival);
            }
            count += m;
            lambda -= arrival;
        }
        if lambda <= 0.0 {
            return count;
        }
        let limit = (-lambda).exp();
        let mut product = self.open01();
        while product > limit {
            product *= self.open01();
            count += 1;
        }
        count
    }
}
