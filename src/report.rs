//! What a plan does and what it costs, as `explain_conv` and `explain_pool`
//! report it: per pass, the algorithm that runs, its estimated cost, and every
//! other algorithm that could run the pass with its own estimate.

use crate::arrays::Shape5;

/// The estimated cost of one algorithm for one pass: counts from the shapes,
/// not timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    /// Operations the kernels execute: multiply-adds for a convolution (counting
    /// the rows and columns their register blocks pad to and the positions
    /// computed and dropped), element visits (a compare or an add) for pooling.
    pub ops: u64,
    /// Bytes copied into buffers (gathered columns, phase planes, padded rows,
    /// transformed tiles); zero for an algorithm that reads its operands in place.
    pub copied_bytes: u64,
    /// Bytes of buffers held at once: the shared ones plus one set per worker.
    pub workspace_bytes: u64,
    /// Parallel tasks the pass is cut into.
    pub tasks: u64,
    /// Whether it runs on the calling thread (too little work to wake the pool,
    /// a single task, or one thread).
    pub serial: bool,
}

/// The plan of one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// `"forward"`, `"input_grad"` or `"weight_grad"`.
    pub pass: &'static str,
    /// The algorithm that runs.
    pub algorithm: String,
    pub cost: Cost,
    /// The other algorithms that could run this pass, with their estimates.
    pub alternatives: Vec<(String, Cost)>,
    /// Floating-point operations of the pass (two per useful multiply-add of a
    /// convolution; one per element visit of pooling).
    pub flops: u64,
}

/// The plan of every pass of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Shapes as 5-D `(N, C, D, H, W)`; the weight of a convolution is
    /// `(C_out, C_in / groups, kD, kH, kW)` (transposed: `(C_in, C_out / groups,
    /// ...)`); pooling has none.
    pub x_shape: Shape5,
    pub weight_shape: Option<Shape5>,
    pub out_shape: Shape5,
    /// NumPy's name of the element type.
    pub dtype: &'static str,
    /// Convolutions: the precision the plan respects (`"default"`, `"highest"`).
    pub precision: Option<&'static str>,
    /// The instruction set the kernels run with (`"avx512"`, `"avx2"` or
    /// `"portable"`).
    pub isa: &'static str,
    /// Threads the pool uses.
    pub threads: usize,
    pub passes: Vec<PassReport>,
}
