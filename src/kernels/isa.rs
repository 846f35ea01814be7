//! Which instruction set the kernels run with, decided in this one place: the best
//! path the CPU supports, lowered by a process-wide cap (`FERROCONV_SIMD`,
//! `ferroconv.set_simd`) so that every path can be tested and measured on one
//! machine. Every SIMD kernel has a portable twin that computes the same sums, so
//! any path gives correct results.
//!
//! Every dispatch site asks [`active`] (or [`avx512`] / [`avx2`], which read it),
//! per call. Changing the cap while another thread computes is safe but may run
//! that call partly on each path: every path uses the same data layouts (`NR`,
//! the dot kernel's lane count, the max-pool chunk), only its instructions differ.

use crate::error::{value_error, Result};
use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction-set paths the kernels are compiled for, from the least to the
/// most capable (the order [`active`] caps by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust, vectorised by the compiler for the build's baseline target.
    Portable,
    /// 256-bit kernels (x86-64 with AVX2 and FMA).
    Avx2,
    /// 512-bit kernels (x86-64 with AVX-512F).
    Avx512,
}

/// Every path, most capable first (the order users see them listed in).
pub const ALL: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Portable];

impl Isa {
    /// The name users see (`explain_conv`, `python -m ferroconv info`,
    /// `FERROCONV_SIMD`, `set_simd`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// The path called `name` (exactly as [`Isa::name`] spells it).
    pub fn from_name(name: &str) -> Result<Isa> {
        match ALL.into_iter().find(|isa| isa.name() == name) {
            Some(isa) => Ok(isa),
            None => value_error!(
                "unknown SIMD path {name:?}: expected one of {}",
                names(&ALL)
            ),
        }
    }

    fn from_u8(value: u8) -> Isa {
        match value {
            0 => Isa::Portable,
            1 => Isa::Avx2,
            _ => Isa::Avx512,
        }
    }
}

fn names(paths: &[Isa]) -> String {
    paths
        .iter()
        .map(|isa| isa.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The most capable path the kernels may take (`Isa as u8`); the most capable
/// of all until someone lowers it.
static CAP: AtomicU8 = AtomicU8::new(Isa::Avx512 as u8);

/// The most capable path this CPU supports (the standard library caches the
/// feature detection, so this is a few relaxed loads). The paths form a chain,
/// so every path below the best is supported too: the AVX-512 path counts only
/// with AVX2 and FMA as well (which every AVX-512 CPU has), because capping it
/// runs the AVX2 kernels.
#[inline]
pub fn best() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            return if has!("avx512f") {
                Isa::Avx512
            } else {
                Isa::Avx2
            };
        }
    }
    Isa::Portable
}

/// The path the kernels take: the CPU's best, capped.
#[inline]
pub fn active() -> Isa {
    #[cfg(test)]
    if let Some(isa) = tests::THREAD_PATH.with(std::cell::Cell::get) {
        return resolve(isa);
    }
    resolve(cap())
}

/// `wanted`, or the CPU's best path if that is less capable: the path a kernel
/// asked for `wanted` may safely take. Tests run kernels on a chosen path
/// through this, without touching the process-wide cap.
#[inline]
pub fn resolve(wanted: Isa) -> Isa {
    wanted.min(best())
}

/// The cap set by [`set_cap`] (`Isa::Avx512` when never lowered).
pub fn cap() -> Isa {
    Isa::from_u8(CAP.load(Ordering::Relaxed))
}

/// Run the kernels with `isa` from now on, in every thread. A path the CPU does
/// not support is an error that says which ones it does.
pub fn set_cap(isa: Isa) -> Result<()> {
    check_cap(isa, best())?;
    CAP.store(isa as u8, Ordering::Relaxed);
    Ok(())
}

/// Whether a CPU whose best path is `best` can run `wanted`.
fn check_cap(wanted: Isa, best: Isa) -> Result<()> {
    if wanted <= best {
        return Ok(());
    }
    let supported: Vec<Isa> = ALL.into_iter().filter(|&isa| isa <= best).collect();
    value_error!(
        "SIMD path {:?} is not supported by this CPU; it supports {}",
        wanted.name(),
        names(&supported)
    )
}

/// Whether the AVX-512 kernels run (the CPU has AVX-512F and the cap allows it).
#[inline]
pub fn avx512() -> bool {
    active() == Isa::Avx512
}

/// Whether the AVX2+FMA kernels run: the CPU has AVX2 and FMA, and the cap
/// allows them but not AVX-512 (a CPU with AVX-512 runs those kernels unless
/// capped at `Avx2`).
#[inline]
pub fn avx2() -> bool {
    active() == Isa::Avx2
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// The path [`active`] reports on this thread while [`on_path`] runs.
        pub(super) static THREAD_PATH: Cell<Option<Isa>> = const { Cell::new(None) };
    }

    /// `run()` with [`active`] reporting `isa` (as far as the CPU supports it) on
    /// this thread only: kernel tests compare paths without changing the
    /// process-wide cap under the other tests (work that rayon sends to other
    /// threads keeps their path).
    pub(crate) fn on_path<R>(isa: Isa, run: impl FnOnce() -> R) -> R {
        let before = THREAD_PATH.with(|path| path.replace(Some(isa)));
        let result = run();
        THREAD_PATH.with(|path| path.set(before));
        result
    }

    /// Every path this CPU supports, most capable first.
    pub(crate) fn supported() -> Vec<Isa> {
        ALL.into_iter().filter(|&isa| isa <= best()).collect()
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for isa in ALL {
            assert_eq!(Isa::from_name(isa.name()), Ok(isa));
        }
        let err = Isa::from_name("avx3").unwrap_err().to_string();
        assert!(
            err.contains("\"avx3\"") && err.contains("avx512, avx2, portable"),
            "{err}"
        );
        assert!(Isa::from_name("AVX2").is_err());
    }

    #[test]
    fn a_cap_above_the_cpu_says_what_the_cpu_supports() {
        assert_eq!(check_cap(Isa::Avx2, Isa::Avx512), Ok(()));
        assert_eq!(check_cap(Isa::Portable, Isa::Portable), Ok(()));
        let err = check_cap(Isa::Avx512, Isa::Avx2).unwrap_err().to_string();
        assert_eq!(
            err,
            "SIMD path \"avx512\" is not supported by this CPU; it supports avx2, portable"
        );
        let err = check_cap(Isa::Avx2, Isa::Portable).unwrap_err().to_string();
        assert!(err.ends_with("it supports portable"), "{err}");
        // Asking for a path the CPU lacks is refused without changing anything
        // (changing the cap here would race the other tests' kernels).
        for isa in ALL.into_iter().filter(|&isa| isa > best()) {
            assert!(set_cap(isa).is_err());
        }
    }

    #[test]
    fn a_thread_can_run_another_path_without_changing_the_cap() {
        for isa in supported() {
            on_path(isa, || {
                assert_eq!(active(), isa);
                assert_eq!(avx512(), isa == Isa::Avx512);
                assert_eq!(avx2(), isa == Isa::Avx2);
            });
        }
        assert_eq!(active(), resolve(cap()));
    }

    #[test]
    fn resolving_never_exceeds_the_cpu() {
        for isa in ALL {
            assert_eq!(resolve(isa), isa.min(best()));
        }
        assert!(supported().contains(&active()));
    }
}
