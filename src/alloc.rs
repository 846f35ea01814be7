//! Fallible allocation of the buffers every operator returns or works in: a
//! failed allocation becomes `Error::Memory` (a Python `MemoryError`) instead of
//! aborting the process.

use crate::error::{Error, Result};
use std::mem::MaybeUninit;

/// A zero-filled vector of `len` elements, or `Error::Memory` instead of aborting
/// the process when the allocation fails. Zeroed memory comes from the allocator
/// (`calloc`), so fresh pages are not written twice.
pub fn alloc_zeroed<T: ZeroBits>(len: usize, what: &str) -> Result<Vec<T>> {
    let refuse = || {
        Error::Memory(format!(
            "cannot allocate {what}: {len} elements of {} bytes",
            std::mem::size_of::<T>()
        ))
    };
    let layout = std::alloc::Layout::array::<T>(len).map_err(|_| refuse())?;
    if layout.size() == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has a non-zero size (checked above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(refuse());
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `len`
    // values of `T`, and all-zero bytes are a valid `T` (the `ZeroBits` contract).
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// A vector of `len` uninitialised elements for an output that its kernel writes
/// in full (a zeroed allocation would be written twice: `calloc` clears reused
/// heap memory with a `memset` pass), or `Error::Memory` when the allocation
/// fails. Debug builds fill it with all-ones bytes (NaN, or -1 for integers), so
/// an element a kernel forgets to write shows up in tests instead of passing by
/// luck. Turn it into a `Vec<T>` with [`assume_init`].
pub fn alloc_uninit<T>(len: usize, what: &str) -> Result<Vec<MaybeUninit<T>>> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(len).map_err(|_| {
        Error::Memory(format!(
            "cannot allocate {what}: {len} elements of {} bytes",
            std::mem::size_of::<T>()
        ))
    })?;
    // SAFETY: the capacity is at least `len`, and `MaybeUninit<T>` needs no
    // initialisation.
    unsafe { buffer.set_len(len) };
    #[cfg(debug_assertions)]
    // SAFETY: the first `len` elements are inside the allocation, and any bytes
    // are a valid `MaybeUninit<T>`.
    unsafe {
        std::ptr::write_bytes(buffer.as_mut_ptr(), 0xFF, len)
    };
    Ok(buffer)
}

/// The `Vec<T>` of an [`alloc_uninit`] buffer, without copying.
///
/// # Safety
/// Every element of `buffer` must have been written.
pub unsafe fn assume_init<T>(buffer: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut buffer = std::mem::ManuallyDrop::new(buffer);
    let (ptr, len, capacity) = (buffer.as_mut_ptr(), buffer.len(), buffer.capacity());
    // SAFETY: `MaybeUninit<T>` has the size and alignment of `T`, so the allocation
    // is one of `capacity` values of `T`; the caller guarantees the first `len` are
    // initialised, and `ManuallyDrop` keeps the old vector from freeing it.
    unsafe { Vec::from_raw_parts(ptr.cast::<T>(), len, capacity) }
}

/// Types for which all-zero bytes are a valid value (zero).
///
/// # Safety
/// Implement only for types whose all-zero bit pattern is a valid value.
pub unsafe trait ZeroBits: Copy {}
// SAFETY: all-zero bits are 0.0 for IEEE floats and 0 for integers.
unsafe impl ZeroBits for f32 {}
// SAFETY: as above.
unsafe impl ZeroBits for f64 {}
// SAFETY: as above.
unsafe impl ZeroBits for usize {}
// SAFETY: as above.
unsafe impl ZeroBits for i64 {}
