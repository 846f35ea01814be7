//! Fused epilogues: what a network applies to a convolution's output before the
//! next layer (a residual add, then an activation), applied by the forward
//! algorithms to each run of output values right after they write it, while the
//! run is still in cache, instead of as separate passes over the whole output.
//!
//! The bias is not part of the epilogue: the algorithms add it where they write
//! (or start) each value, as before. The epilogue then computes
//! `activation(value + residual)` in that order, each step rounded once, so a
//! fused result equals the unfused composition `act(conv(x, w, b) + r)` bit for bit
//! (up to the activation's own rounding for `sigmoid` and `silu`, whose `exp` may
//! differ in its last bit from NumPy's).
//!
//! The residual may be the output buffer itself ([`Residual::Out`]): the caller's
//! buffer holds the residual on entry and the result on exit. Every writer then
//! copies the run it is about to overwrite into a small per-task buffer first
//! ([`Epilogue::save_uninit`]) and adds that copy back ([`Epilogue::finish`]).

use crate::element::Element;
use crate::error::{value_error, Result};
use num_traits::NumCast;
use std::mem::MaybeUninit;

/// The activation of an epilogue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// `min(max(v, 0), 6)`.
    Relu6,
    /// `v` where `v >= 0`, else `negative_slope * v`.
    LeakyRelu(f64),
    /// `1 / (1 + exp(-v))`.
    Sigmoid,
    /// `v * sigmoid(v)` (swish).
    Silu,
}

impl Activation {
    /// The names users pass, without `Identity` (given as `None`).
    pub const NAMES: [&'static str; 5] = ["relu", "relu6", "leaky_relu", "sigmoid", "silu"];

    /// The activation called `name` (`negative_slope` is only read by `leaky_relu`).
    pub fn parse(name: &str, negative_slope: f64) -> Result<Self> {
        Ok(match name {
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "leaky_relu" => Activation::LeakyRelu(negative_slope),
            "sigmoid" => Activation::Sigmoid,
            "silu" => Activation::Silu,
            other => {
                return value_error!(
                    "activation must be None or one of {:?}, got {other:?}",
                    Self::NAMES
                )
            }
        })
    }

    /// The name users pass (`None` for the identity).
    pub fn name(self) -> Option<&'static str> {
        match self {
            Activation::Identity => None,
            Activation::Relu => Some("relu"),
            Activation::Relu6 => Some("relu6"),
            Activation::LeakyRelu(_) => Some("leaky_relu"),
            Activation::Sigmoid => Some("sigmoid"),
            Activation::Silu => Some("silu"),
        }
    }

    /// The activation of every value of `values`, in place (one loop per kind, so
    /// each vectorises).
    fn apply<T: Element>(self, values: &mut [T]) {
        let zero = T::zero();
        match self {
            Activation::Identity => {}
            Activation::Relu => values.iter_mut().for_each(|v| {
                // `v > 0` rather than `max`: NaN stays NaN, as in NumPy and PyTorch.
                *v = if *v < zero { zero } else { *v };
            }),
            Activation::Relu6 => {
                let six = cast::<T>(6.0);
                values.iter_mut().for_each(|v| {
                    *v = if *v < zero {
                        zero
                    } else if *v > six {
                        six
                    } else {
                        *v
                    };
                })
            }
            Activation::LeakyRelu(slope) => {
                let slope = cast::<T>(slope);
                values.iter_mut().for_each(|v| {
                    if *v < zero {
                        *v = *v * slope;
                    }
                })
            }
            Activation::Sigmoid => values.iter_mut().for_each(|v| *v = sigmoid(*v)),
            Activation::Silu => values.iter_mut().for_each(|v| *v = *v * sigmoid(*v)),
        }
    }
}

fn cast<T: Element>(v: f64) -> T {
    <T as NumCast>::from(v).unwrap_or_else(T::nan)
}

/// `1 / (1 + exp(-v))`, without overflow warnings: `exp(-v)` is `inf` for very
/// negative `v`, which gives 0 as it should.
#[inline(always)]
fn sigmoid<T: Element>(v: T) -> T {
    T::one() / (T::one() + (-v).exp())
}

/// Where the residual of an epilogue comes from.
#[derive(Debug, Clone, Copy)]
pub enum Residual<'a, T> {
    None,
    /// A C-contiguous array of the output's shape.
    Array(&'a [T]),
    /// The output buffer itself holds it on entry.
    Out,
}

/// A residual add and an activation, applied to each output run as it is written.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue<'a, T> {
    pub residual: Residual<'a, T>,
    pub activation: Activation,
}

impl<T: Element> Epilogue<'_, T> {
    /// Nothing after the bias.
    pub const NONE: Epilogue<'static, T> = Epilogue {
        residual: Residual::None,
        activation: Activation::Identity,
    };

    /// Whether the epilogue changes nothing.
    pub fn is_none(&self) -> bool {
        matches!(self.residual, Residual::None) && self.activation == Activation::Identity
    }

    /// Whether the output buffer holds the residual on entry (then no writer may
    /// clear it first).
    pub fn reads_out(&self) -> bool {
        matches!(self.residual, Residual::Out)
    }

    /// Before a run of the output is overwritten: keep its residual values when
    /// they live in the output itself.
    ///
    /// # Safety
    /// When the residual is the output ([`Residual::Out`]), `run` must be
    /// initialised (it is then the caller's array, which always is).
    pub unsafe fn save_uninit(&self, run: &[MaybeUninit<T>], saved: &mut Vec<T>) {
        if self.reads_out() {
            saved.clear();
            // SAFETY: initialised, by the caller's contract.
            saved.extend(run.iter().map(|v| unsafe { v.assume_init() }));
        }
    }

    /// The output values `values` (conv + bias), starting at flat output index
    /// `at`, become `activation(value + residual)`; `saved` is what
    /// [`Epilogue::save_uninit`] kept for this run.
    pub fn finish(&self, at: usize, values: &mut [T], saved: &[T]) {
        match self.residual {
            Residual::None => {}
            Residual::Array(r) => add(values, &r[at..at + values.len()]),
            Residual::Out => add(values, &saved[..values.len()]),
        }
        self.activation.apply(values);
    }

    /// [`Epilogue::finish`] for a run just written through `MaybeUninit`.
    ///
    /// # Safety
    /// Every element of `run` must be initialised.
    pub unsafe fn finish_uninit(&self, at: usize, run: &mut [MaybeUninit<T>], saved: &[T]) {
        if self.is_none() {
            return;
        }
        // SAFETY: `MaybeUninit<T>` has `T`'s layout and every element is
        // initialised (the caller's contract).
        let values = unsafe { &mut *(run as *mut [MaybeUninit<T>] as *mut [T]) };
        self.finish(at, values, saved);
    }
}

/// `out = epilogue(compute(plane))`, one task per output plane of `positions`
/// elements: `compute` gets each plane zeroed (as initialised values) with its
/// index and the worker's `W`, and must write every element; the epilogue then
/// finishes the plane while it is in cache. `out` must be initialised whenever
/// the epilogue reads it (the caller's array, see `run_forward`).
pub(crate) fn planes<T: Element, W>(
    epilogue: &Epilogue<'_, T>,
    out: &mut [MaybeUninit<T>],
    positions: usize,
    work: usize,
    init: impl Fn() -> W + Sync + Send,
    compute: impl Fn(&mut W, usize, &mut [T]) + Sync + Send,
) -> Result<()> {
    crate::threads::for_each_chunk_mut(
        out,
        positions,
        work,
        || (init(), Vec::new()),
        |(ws, saved), plane_index, plane| {
            // SAFETY: initialised whenever the epilogue reads it (the contract).
            unsafe { epilogue.save_uninit(plane, saved) };
            let plane = zeroed(plane);
            compute(ws, plane_index, plane);
            epilogue.finish(plane_index * positions, plane, saved);
        },
    )
}

/// `run` with every element set to zero, as initialised values.
pub(crate) fn zeroed<T: Element>(run: &mut [MaybeUninit<T>]) -> &mut [T] {
    run.fill(MaybeUninit::new(T::zero()));
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and every element was just written.
    unsafe { &mut *(run as *mut [MaybeUninit<T>] as *mut [T]) }
}

fn add<T: Element>(values: &mut [T], residual: &[T]) {
    values.iter_mut().zip(residual).for_each(|(v, &r)| *v += r);
}

/// `out = epilogue(values + bias)` for an output computed elsewhere (a
/// transposed convolution's scatter): one pass, plane by plane, writing every
/// element of `out`.
pub(crate) fn finish_planes<T: Element>(
    positions: usize,
    bias: Option<&[T]>,
    epilogue: &Epilogue<'_, T>,
    values: &[T],
    out: &mut [MaybeUninit<T>],
) -> Result<()> {
    if positions == 0 {
        return Ok(());
    }
    crate::threads::for_each_chunk_mut(
        out,
        positions,
        values.len(),
        Vec::new,
        |saved, plane, dst| {
            let at = plane * positions;
            // SAFETY: `out` is initialised whenever the epilogue reads it (it is
            // then the caller's array).
            unsafe { epilogue.save_uninit(dst, saved) };
            let b = bias.map_or(T::zero(), |bias| bias[plane % bias.len()]);
            let len = dst.len();
            for (d, &v) in dst.iter_mut().zip(&values[at..at + len]) {
                d.write(v + b);
            }
            // SAFETY: every element of `dst` was just written.
            unsafe { epilogue.finish_uninit(at, dst, saved) };
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_match_their_definitions() {
        let v = [-3.0f64, -0.5, 0.0, 0.5, 7.0];
        let run = |a: Activation| {
            let mut x = v;
            a.apply(&mut x);
            x
        };
        assert_eq!(run(Activation::Relu), [0.0, 0.0, 0.0, 0.5, 7.0]);
        assert_eq!(run(Activation::Relu6), [0.0, 0.0, 0.0, 0.5, 6.0]);
        assert_eq!(
            run(Activation::LeakyRelu(0.1)),
            [-3.0 * 0.1, -0.5 * 0.1, 0.0, 0.5, 7.0]
        );
        for (s, x) in run(Activation::Sigmoid).iter().zip(v) {
            assert!((s - 1.0 / (1.0 + (-x).exp())).abs() < 1e-15);
        }
        for (s, x) in run(Activation::Silu).iter().zip(v) {
            assert!((s - x / (1.0 + (-x).exp())).abs() < 1e-15);
        }
        let mut nan = [f64::NAN];
        Activation::Relu.apply(&mut nan);
        assert!(nan[0].is_nan());
    }

    #[test]
    fn residual_from_the_output_is_saved_before_the_write() {
        let e = Epilogue::<f32> {
            residual: Residual::Out,
            activation: Activation::Relu,
        };
        let mut out = [1.0f32, -5.0, 2.0].map(MaybeUninit::new);
        let mut saved = Vec::new();
        // SAFETY: `out` is initialised.
        unsafe { e.save_uninit(&out, &mut saved) };
        out = [1.0f32, 1.0, -3.0].map(MaybeUninit::new);
        // SAFETY: every element was just written.
        unsafe { e.finish_uninit(0, &mut out, &saved) };
        // SAFETY: initialised throughout.
        let got = out.map(|v| unsafe { v.assume_init() });
        assert_eq!(got, [2.0, 0.0, 0.0]);
    }

    #[test]
    fn unknown_activation_is_refused_by_name() {
        let err = Activation::parse("gelu", 0.01).unwrap_err().to_string();
        assert!(err.contains("activation") && err.contains("gelu"), "{err}");
    }
}
