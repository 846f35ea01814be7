//! A buffer that several tasks write at once, each into elements no other touches.

use std::marker::PhantomData;

/// Shared mutable access to a slice for tasks that write disjoint elements (e.g.
/// one output tile each).
#[derive(Debug)]
pub struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: a `SharedMut` only hands out element ranges through `range`, whose contract
// makes every caller the exclusive user of the elements it receives, so sharing the
// base pointer between threads creates no data race.
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

    /// The elements `offset .. offset + len` (bounds are checked).
    ///
    /// # Safety
    /// While the returned slice lives, no other slice from this buffer may overlap it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range(&self, offset: usize, len: usize) -> &mut [T] {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "SharedMut range {offset}+{len} out of bounds {}",
            self.len
        );
        // SAFETY: in bounds (checked above) of a buffer borrowed mutably for 'a;
        // exclusivity is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(offset), len) }
    }
}
