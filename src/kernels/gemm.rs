//! Bounds-checked strided matrix views over slices, and `C = alpha A B + beta C`.
//!
//! The views check at construction that every element they address lies inside
//! their slice, so the unsafe call into the GEMM micro-kernels is sound whatever
//! shapes reach it. A failed check is a bug in ferroconv (shapes are validated
//! before any kernel runs), never a consequence of user input.

use crate::element::Element;
use std::marker::PhantomData;

fn addresses_fit(
    len: usize,
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) -> bool {
    if rows == 0 || cols == 0 {
        return offset <= len;
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)))
        .and_then(|rc| rc.checked_add(offset));
    matches!(last, Some(last) if last < len)
}

/// A read-only `rows x cols` matrix at `data[offset + i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    offset: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    pub fn new(
        data: &'a [T],
        offset: usize,
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Self {
        assert!(
            addresses_fit(data.len(), offset, rows, cols, rs, cs),
            "MatRef out of bounds: len {} offset {offset} {rows}x{cols} strides ({rs}, {cs})",
            data.len()
        );
        Self {
            data,
            offset,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    fn ptr(&self) -> *const T {
        // `offset <= len` was checked; for an empty matrix the pointer is not read.
        self.data[self.offset..].as_ptr()
    }
}

/// A writable `rows x cols` matrix; either borrowed from a `&mut [T]` or carved out
/// of a [`SharedMut`] by a task that owns that block exclusively.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    ptr: *mut T,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
    _borrow: PhantomData<&'a mut T>,
}

impl<'a, T> MatMut<'a, T> {
    pub fn new(
        data: &'a mut [T],
        offset: usize,
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> Self {
        assert!(
            addresses_fit(data.len(), offset, rows, cols, rs, cs),
            "MatMut out of bounds: len {} offset {offset} {rows}x{cols} strides ({rs}, {cs})",
            data.len()
        );
        Self {
            ptr: data[offset..].as_mut_ptr(),
            rows,
            cols,
            rs,
            cs,
            _borrow: PhantomData,
        }
    }
}

/// A buffer that several tasks write into at the same time, each into a block of
/// elements no other task touches (e.g. one output tile each).
#[derive(Debug)]
pub struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: a `SharedMut` only hands out matrices through `block`, whose contract makes
// every caller the exclusive writer of the elements it addresses, so sharing the base
// pointer between threads creates no data race.
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}
// SAFETY: as above; the buffer itself is borrowed mutably for `'a`.
unsafe impl<T: Send> Send for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    pub fn new(data: &'a mut [T]) -> Self {
        Self {
            ptr: data.as_mut_ptr(),
            len: data.len(),
            _borrow: PhantomData,
        }
    }

    /// A writable matrix view of part of the buffer (bounds are checked).
    ///
    /// # Safety
    /// While the returned view lives, no other view may address any of its elements.
    pub unsafe fn block(
        &self,
        offset: usize,
        rows: usize,
        cols: usize,
        rs: usize,
        cs: usize,
    ) -> MatMut<'_, T> {
        assert!(
            addresses_fit(self.len, offset, rows, cols, rs, cs),
            "SharedMut block out of bounds: len {} offset {offset} {rows}x{cols} strides ({rs}, {cs})",
            self.len
        );
        MatMut {
            // SAFETY: offset <= len was checked just above.
            ptr: unsafe { self.ptr.add(offset) },
            rows,
            cols,
            rs,
            cs,
            _borrow: PhantomData,
        }
    }
}

fn stride(s: usize) -> isize {
    // Strides come from in-bounds views of slices, and a slice never exceeds
    // isize::MAX bytes, so this cannot truncate.
    s as isize
}

/// `c = alpha * a * b + beta * c`.
pub fn gemm<T: Element>(alpha: T, a: MatRef<'_, T>, b: MatRef<'_, T>, beta: T, c: MatMut<'_, T>) {
    assert!(
        a.rows == c.rows && b.cols == c.cols && a.cols == b.rows,
        "gemm shapes: {}x{} * {}x{} -> {}x{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    // SAFETY: the three views were bounds-checked at construction, `c` is an exclusive
    // borrow (or an exclusively owned block of a SharedMut), and `a`/`b` are shared
    // borrows of other buffers, so `c` aliases neither.
    unsafe {
        T::gemm_raw(
            c.rows,
            a.cols,
            c.cols,
            alpha,
            a.ptr(),
            stride(a.rs),
            stride(a.cs),
            b.ptr(),
            stride(b.rs),
            stride(b.cs),
            beta,
            c.ptr,
            stride(c.rs),
            stride(c.cs),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_naive_product_with_transposes_and_offsets() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k + 2).map(|v| v as f64 * 0.5 - 3.0).collect();
        let b: Vec<f64> = (0..k * n).map(|v| (v as f64).sin()).collect();
        let mut c = vec![1.0f64; m * n];
        // a is stored transposed (k x m), starting at offset 2.
        let a_view = MatRef::new(&a, 2, k, m, m, 1).t();
        let b_view = MatRef::new(&b, 0, k, n, n, 1);
        gemm(2.0, a_view, b_view, 1.0, MatMut::new(&mut c, 0, m, n, n, 1));
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|p| a[2 + p * m + i] * b[p * n + j]).sum();
                assert!((c[i * n + j] - (1.0 + 2.0 * dot)).abs() < 1e-12);
            }
        }
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn views_past_the_end_are_refused() {
        let data = [0.0f32; 10];
        let _ = MatRef::new(&data, 2, 3, 3, 3, 1);
    }
}
