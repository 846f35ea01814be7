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
    huge_pages(ptr.cast::<u8>(), layout.size());
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `len`
    // values of `T`, and all-zero bytes are a valid `T` (the `ZeroBits` contract).
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// Buffers from this size on ask for transparent huge pages.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

/// Ask the kernel to back the 2 MiB-aligned part of a large buffer with
/// transparent huge pages. Buffers this large are a fresh `mmap` on every call
/// (glibc stops reusing freed blocks above 32 MiB), so their first touch faults
/// in every 4 KiB page: on a virtual machine that was most of a large pooling
/// backward (docs/performance.md). One fault per 2 MiB instead. Only a hint:
/// where THP is off, or on other systems, nothing changes.
fn huge_pages(ptr: *mut u8, bytes: usize) {
    #[cfg(target_os = "linux")]
    if bytes >= HUGE_PAGE_MIN_BYTES {
        let start = (ptr as usize).next_multiple_of(HUGE_PAGE);
        let end = (ptr as usize + bytes) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: the range lies inside the caller's live allocation, and
            // MADV_HUGEPAGE only changes how its pages are backed, never their
            // contents; a failure (THP unavailable) is harmless and ignored.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, bytes);
}

/// A vector of `len` uninitialised elements for an output that its kernel writes
/// in full (a zeroed allocation would be written twice: `calloc` clears reused
/// heap memory with a `memset` pass), or `Error::Memory` when the allocation
/// fails. Debug builds fill it with all-ones bytes (NaN, or -1 for integers), so
/// an element a kernel forgets to write shows up in tests instead of passing by
/// luck. Turn it into a `Vec<T>` with [`assume_init`].
pub fn alloc_uninit<T>(len: usize, what: &str) -> Result<Vec<MaybeUninit<T>>> {
    let mut buffer: Vec<MaybeUninit<T>> = Vec::new();
    buffer.try_reserve_exact(len).map_err(|_| {
        Error::Memory(format!(
            "cannot allocate {what}: {len} elements of {} bytes",
            std::mem::size_of::<T>()
        ))
    })?;
    // SAFETY: the capacity is at least `len`, and `MaybeUninit<T>` needs no
    // initialisation.
    unsafe { buffer.set_len(len) };
    huge_pages(
        buffer.as_mut_ptr().cast::<u8>(),
        len * std::mem::size_of::<T>(),
    );
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
// SAFETY: as above.
unsafe impl ZeroBits for i32 {}
// SAFETY: as above.
unsafe impl ZeroBits for i16 {}
// SAFETY: as above.
unsafe impl ZeroBits for i8 {}
// SAFETY: as above.
unsafe impl ZeroBits for u8 {}
// SAFETY: as above.
unsafe impl ZeroBits for u16 {}
