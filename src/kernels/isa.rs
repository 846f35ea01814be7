//! Which instruction set the kernels run with: detected once per call site from
//! the CPU's features, in this one place. Every SIMD kernel has a portable twin
//! that computes the same sums, so a CPU without AVX-512 gets correct results.

/// The instruction-set paths the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// 512-bit kernels (x86-64 with AVX-512F).
    Avx512,
    /// Plain Rust, vectorised by the compiler for the build's baseline target.
    Portable,
}

impl Isa {
    /// The name users see (`explain_conv`, `python -m ferroconv info`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Portable => "portable",
        }
    }
}

/// The path the kernels take on this CPU.
pub fn active() -> Isa {
    if avx512() {
        Isa::Avx512
    } else {
        Isa::Portable
    }
}

/// Whether the AVX-512 kernels run on this CPU (the standard library caches the
/// detection, so this is one relaxed load).
#[inline]
pub fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
