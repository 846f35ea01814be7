//! `pow` and `cbrt` against libm: dense sweeps over every binade, random bit
//! patterns, and the special values, for both FMA strategies. `f32` results are
//! compared with `f64` libm (exact enough to measure `f32` units in the last
//! place), `f64` results with libm itself (within about half a unit).

use super::*;

const POWERS: [f64; 17] = [
    0.3, 0.5, 0.7, 1.1, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 12.5, 33.3, -1.0, -1.5, -2.0,
];

/// The stated bound, in units in the last place: the rounding of `ln |x|`'s
/// tail grows with `|p|`. (Measured with 3 million random patterns per case,
/// `FERROCONV_ELEMENTARY_SAMPLES=3000000 cargo test --release elementary`:
/// `f32` 0.60 at p = 0.5, 0.75 at 1.5, 0.82 at 4, 1.04 at 8, 2.17 at 33.3; `f64`
/// one unit from libm up to |p| = 12.5, three at 33.3.)
fn bound(p: f64) -> f64 {
    0.75 + p.abs() / 16.0
}

/// Random patterns per sweep (more for a long run).
fn samples(default: usize) -> usize {
    std::env::var("FERROCONV_ELEMENTARY_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift: deterministic bit patterns.
struct Bits(u64);

impl Bits {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The unit in the last place of `f32` at `v` rounded to `f32` (the subnormal
/// spacing at 0, the last binade's at the largest finite value).
fn ulp32(v: f64) -> f64 {
    let a = (v as f32).abs().min(f32::MAX);
    let below = f32::from_bits(a.to_bits().max(1) - 1);
    f64::from(f32::from_bits(a.to_bits() + 1) - a).max(f64::from(a - below))
}

fn ulp64(v: f64) -> f64 {
    let a = v.abs().min(f64::MAX);
    let below = f64::from_bits(a.to_bits().max(1) - 1);
    let above = if a == f64::MAX {
        a - below
    } else {
        f64::from_bits(a.to_bits() + 1) - a
    };
    above.max(a - below)
}

/// Inputs for `f32`: a few significands in every binade (subnormals too), and
/// random bit patterns; positive, plus their negatives where `negatives`.
fn inputs32(negatives: bool) -> Vec<f32> {
    let mut xs = Vec::new();
    for bits in (0u32..0x7F80_0000).step_by(0x0003_0001) {
        xs.push(f32::from_bits(bits));
    }
    let mut random = Bits(0x1234_5678);
    for _ in 0..samples(2000) {
        let bits = (random.next() >> 32) as u32 & 0x7FFF_FFFF;
        if bits < 0x7F80_0000 {
            xs.push(f32::from_bits(bits));
        }
    }
    // Near 1, where ln is small and its relative accuracy matters.
    xs.extend((0..200).map(|i| 1.0 + (i as f32 - 100.0) * 1e-3));
    if negatives {
        let negated: Vec<f32> = xs.iter().map(|x| -x).collect();
        xs.extend(negated);
    }
    xs
}

fn inputs64(negatives: bool) -> Vec<f64> {
    let mut xs = Vec::new();
    for bits in (0u64..0x7FF0_0000_0000_0000).step_by(0x0001_9999_9999_9999) {
        xs.push(f64::from_bits(bits));
    }
    let mut random = Bits(0x9E37_79B9_7F4A_7C15);
    for _ in 0..samples(3000) {
        let bits = random.next() & 0x7FFF_FFFF_FFFF_FFFF;
        if bits < 0x7FF0_0000_0000_0000 {
            xs.push(f64::from_bits(bits));
        }
    }
    xs.extend((0..200).map(|i| 1.0 + (i as f64 - 100.0) * 1e-3));
    xs.extend(inputs32(false).into_iter().map(f64::from));
    if negatives {
        let negated: Vec<f64> = xs.iter().map(|x| -x).collect();
        xs.extend(negated);
    }
    xs
}

/// Whether `got` matches the reference `want` where the reference is not a
/// finite nonzero normal number: both NaN, or the same value (signed zeros and
/// infinities exactly).
fn same_special<T: Into<f64> + Copy>(got: T, want: T) -> bool {
    let (g, w) = (got.into(), want.into());
    (g.is_nan() && w.is_nan()) || g.to_bits() == w.to_bits()
}

/// `got` is `x^p` (`p` as `f32`) within the bound, or the special value.
fn assert_pow32(x: f32, p: f64, got: f32) {
    assert_pow32_within(x, p, got, bound(p));
}

/// The bound of the AVX2 path's `f32` registers: their 8-entry tables leave
/// remainders four times as large, whose roundings `p` multiplies. (Measured
/// with 4 million random patterns and a dense sweep of [1e-3, 10]: 0.70 units
/// at p = 1.5, 0.91 at 4, 2.03 at 12.5, 5.42 at 33.3.)
fn bound32_on(isa: crate::kernels::Isa, p: f64) -> f64 {
    if isa == crate::kernels::Isa::Avx2 {
        0.75 + p.abs() / 6.0
    } else {
        bound(p)
    }
}

fn assert_pow32_within(x: f32, p: f64, got: f32, bound: f64) {
    let exact = f64::from(x).powf(f64::from(p as f32));
    let rounded = exact as f32;
    if !rounded.is_finite() || exact == 0.0 || exact.is_nan() {
        assert!(
            same_special(got, rounded),
            "pow({x:e}, {p}) = {got:e}, want {rounded:e}"
        );
        return;
    }
    assert_eq!(
        got.is_sign_negative(),
        exact < 0.0,
        "pow({x:e}, {p}) = {got:e}"
    );
    let error = (f64::from(got) - exact).abs() / ulp32(exact);
    assert!(
        error <= bound,
        "pow({x:e}, {p}) = {got:e}, want {exact:e}: {error:.2} ulp"
    );
}

/// `got` is `x^p` within the bound of libm's, or libm's special value.
fn assert_pow64(x: f64, p: f64, got: f64) {
    let want = x.powf(p);
    if !want.is_finite() || want == 0.0 || want.abs() < f64::MIN_POSITIVE {
        let close = (got - want).abs() <= f64::from_bits(1) * 2.0;
        assert!(
            same_special(got, want) || close,
            "pow({x:e}, {p}) = {got:e}, want {want:e}"
        );
        return;
    }
    let error = (got - want).abs() / ulp64(want);
    // libm's own error (about half a unit) on top of the bound.
    assert!(
        error <= bound(p) + 0.5,
        "pow({x:e}, {p}) = {got:e}, want {want:e}: {error:.2} ulp"
    );
}

fn check_pow32<F: Fma>() {
    for p in POWERS {
        let power = Power::new(p as f32);
        for x in inputs32(true) {
            assert_pow32(x, p, pow::<f32, F>(x, &power));
        }
    }
}

fn check_pow64<F: Fma>() {
    for p in POWERS {
        let power = Power::new(p);
        for x in inputs64(true) {
            assert_pow64(x, p, pow::<f64, F>(x, &power));
        }
    }
}

/// `powers` and `power_pairs` over a slice, as one path computes them.
fn slice_powers<T: Elementary>(xs: &[T], first: &Power<T>, second: &Power<T>) -> [Vec<T>; 3] {
    let mut outs: [Vec<MaybeUninit<T>>; 3] =
        std::array::from_fn(|_| vec![MaybeUninit::uninit(); xs.len()]);
    let [single, paired, paired2] = &mut outs;
    powers(xs, first, single);
    power_pairs(xs, first, second, paired, paired2);
    outs.map(|out| {
        out.into_iter()
            // SAFETY: both kernels write every element of their outputs.
            .map(|v| unsafe { v.assume_init() })
            .collect()
    })
}

/// Every path's slice kernels (AVX-512 registers, the AVX2 twin, the portable
/// loop) against the bound, the pairs equal to the single powers.
#[test]
fn slice_kernels_are_within_the_bound_on_every_path() {
    use crate::kernels::isa::tests::{on_path, supported};
    let (xs32, xs64) = (inputs32(true), inputs64(true));
    for isa in supported() {
        for (p, q) in [
            (1.5, 0.5),
            (0.7, -0.3),
            (3.0, 2.0),
            (-1.5, -2.5),
            (12.5, 11.5),
        ] {
            let [single, paired, slope] = on_path(isa, || {
                slice_powers(&xs32, &Power::new(p as f32), &Power::new(q as f32))
            });
            for (i, &x) in xs32.iter().enumerate() {
                assert_pow32_within(x, p, single[i], bound32_on(isa, p));
                assert_pow32_within(x, q, slope[i], bound32_on(isa, q));
                assert!(same_special(single[i], paired[i]), "{isa:?} {x:e}");
            }
            let [single, paired, slope] =
                on_path(isa, || slice_powers(&xs64, &Power::new(p), &Power::new(q)));
            for (i, &x) in xs64.iter().enumerate() {
                assert_pow64(x, p, single[i]);
                assert_pow64(x, q, slope[i]);
                assert!(same_special(single[i], paired[i]), "{isa:?} {x:e}");
            }
        }
    }
}

#[test]
fn pow_f32_is_within_the_bound_fused_and_unfused() {
    check_pow32::<Fused>();
    check_pow32::<Unfused>();
}

#[test]
fn pow_f64_is_within_the_bound_fused_and_unfused() {
    check_pow64::<Fused>();
    check_pow64::<Unfused>();
}

/// C's special cases, value for value against libm (`powf` and `pow`).
#[test]
fn pow_special_values_are_libms() {
    let specials = [
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1.0,
        -1.0,
        -2.0,
        2.0,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        f64::MAX,
        -f64::MAX,
    ];
    for p in [2.0, 3.0, -3.0, -2.0, 1.5, -1.5, 0.5, -0.5, 1.0, -1.0, 7.0] {
        let (p32, power64) = (p as f32, Power::new(p));
        let power32 = Power::new(p32);
        for x in specials {
            let x32 = x as f32;
            for (got, want) in [
                (pow::<f32, Fused>(x32, &power32), x32.powf(p32)),
                (pow::<f32, Unfused>(x32, &power32), x32.powf(p32)),
            ] {
                let ok = same_special(got, want)
                    || (want.is_finite()
                        && want != 0.0
                        && f64::from((got - want).abs()) <= ulp32(f64::from(want)));
                assert!(ok, "powf({x32:e}, {p}) = {got:e}, want {want:e}");
            }
            for (got, want) in [
                (pow::<f64, Fused>(x, &power64), x.powf(p)),
                (pow::<f64, Unfused>(x, &power64), x.powf(p)),
            ] {
                let ok = same_special(got, want)
                    || (want.is_finite() && want != 0.0 && (got - want).abs() <= ulp64(want));
                assert!(ok, "pow({x:e}, {p}) = {got:e}, want {want:e}");
            }
        }
        assert_eq!(pow::<f32, Fused>(1.0, &power32), 1.0);
        assert_eq!(pow::<f64, Unfused>(1.0, &power64), 1.0);
    }
}

#[test]
fn pow_pair_is_two_pows() {
    let (first, second) = (Power::new(1.5f32), Power::new(0.5f32));
    for x in inputs32(true) {
        let (a, b) = pow_pair::<f32, Fused>(x, &first, &second);
        assert!(same_special(a, pow::<f32, Fused>(x, &first)), "{x:e}");
        assert!(same_special(b, pow::<f32, Fused>(x, &second)), "{x:e}");
    }
    let (first, second) = (Power::new(3.0f64), Power::new(2.0f64));
    for x in inputs64(true) {
        let (a, b) = pow_pair::<f64, Unfused>(x, &first, &second);
        assert!(same_special(a, pow::<f64, Unfused>(x, &first)), "{x:e}");
        assert!(same_special(b, pow::<f64, Unfused>(x, &second)), "{x:e}");
    }
}

fn check_cbrt<F: Fma>() {
    // f32: within 0.51 units of the exact root (nearly always the rounded one).
    for x in inputs32(true) {
        let (got, exact) = (cbrt::<f32, F>(x), f64::from(x).cbrt());
        let error = (f64::from(got) - exact).abs() / ulp32(exact);
        assert!(
            error <= 0.51 || same_special(got, exact as f32),
            "cbrt({x:e}) = {got:e}, want {exact:e}: {error:.3} ulp"
        );
    }
    // f64: within one unit of libm's.
    for x in inputs64(true) {
        let (got, want) = (cbrt::<f64, F>(x), x.cbrt());
        let error = (got - want).abs() / ulp64(want);
        assert!(
            error <= 1.0 || same_special(got, want),
            "cbrt({x:e}) = {got:e}, want {want:e}: {error:.3} ulp"
        );
    }
    for x in [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
        assert!(same_special(cbrt::<f64, F>(x), x), "{x}");
        assert!(same_special(cbrt::<f32, F>(x as f32), x as f32), "{x}");
    }
    // Exact cubes give their roots exactly.
    for k in -40..=40 {
        let root = 1.5f64 * 2f64.powi(k);
        assert_eq!(cbrt::<f64, F>(root * root * root), root);
        assert_eq!(cbrt::<f32, F>((root * root * root) as f32), root as f32);
    }
}

#[test]
fn cbrt_is_within_half_a_unit_fused_and_unfused() {
    check_cbrt::<Fused>();
    check_cbrt::<Unfused>();
}

/// `powers_and_slopes` and `powers` over a slice, as one path computes them.
fn slice_slopes<T: Elementary>(xs: &[T], power: &Power<T>) -> [Vec<T>; 3] {
    let mut outs: [Vec<MaybeUninit<T>>; 3] =
        std::array::from_fn(|_| vec![MaybeUninit::uninit(); xs.len()]);
    let [terms, slopes, single] = &mut outs;
    powers_and_slopes(xs, power, terms, slopes);
    powers(xs, power, single);
    outs.map(|out| {
        out.into_iter()
            // SAFETY: both kernels write every element of their outputs.
            .map(|v| unsafe { v.assume_init() })
            .collect()
    })
}

/// `x^(p - 1)` from `powers_and_slopes`, on every path, with `x^p` as `powers`
/// gives it. AVX-512 divides `x^p` by `x` where both are normal: `x^p`'s
/// relative error, which is up to twice as many units of `x^(p - 1)`'s last
/// place (their significands differ), plus the quotient's rounding. (Measured
/// over 4 million random patterns and a dense sweep of [1e-3, 10]: `f32` 1.29
/// units at p = 1.5, 1.49 at 0.7, 1.77 at 12.5; `f64` one or two units from
/// libm.)
#[test]
fn slopes_are_within_twice_the_bound_and_a_half() {
    use crate::kernels::isa::tests::{on_path, supported};
    let (xs32, xs64) = (inputs32(true), inputs64(true));
    for isa in supported() {
        for p in [1.5, 0.7, 2.5, -1.5, 12.5, 3.0] {
            let [terms, slopes, single] =
                on_path(isa, || slice_slopes(&xs32, &Power::new(p as f32)));
            let q = f64::from(p as f32 - 1.0);
            for (i, &x) in xs32.iter().enumerate() {
                assert!(same_special(terms[i], single[i]), "{isa:?} {x:e}");
                let exact = f64::from(x).powf(q);
                if !same_special(slopes[i], exact as f32) {
                    let error = (f64::from(slopes[i]) - exact).abs() / ulp32(exact);
                    let ok = exact.is_finite()
                        && exact != 0.0
                        && error <= 2.0 * bound32_on(isa, p) + 0.5;
                    assert!(
                        ok,
                        "{isa:?} pow({x:e}, {q}) = {:e}: {error:.2} ulp",
                        slopes[i]
                    );
                }
            }
            let [terms, slopes, single] = on_path(isa, || slice_slopes(&xs64, &Power::new(p)));
            for (i, &x) in xs64.iter().enumerate() {
                assert!(same_special(terms[i], single[i]), "{isa:?} {x:e}");
                let want = x.powf(p - 1.0);
                if !same_special(slopes[i], want) {
                    // libm's own error (about half a unit) comes on top.
                    let error = (slopes[i] - want).abs() / ulp64(want);
                    let ok = want.is_finite() && want != 0.0 && error <= 2.0 * bound(p) + 1.0;
                    assert!(
                        ok,
                        "{isa:?} pow({x:e}, {p} - 1) = {:e}: {error:.2} ulp",
                        slopes[i]
                    );
                }
            }
        }
    }
}
