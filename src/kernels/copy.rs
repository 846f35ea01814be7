//! Short copies the packing and layout code does by the million: whole runs
//! moved in fixed-size blocks the compiler turns into inline vector moves (a
//! call to `memcpy`/`memset` would cost more than a run of one output row).

use super::scalar::Scalar;

/// `out.copy_from_slice(src)` in fixed-size blocks (16, 8, 4, then single
/// elements).
#[inline(always)]
pub fn copy_blocks<T: Scalar>(src: &[T], out: &mut [T]) {
    let done = copy_blocks_of::<T, 16>(src, out, 0);
    let done = copy_blocks_of::<T, 8>(src, out, done);
    let done = copy_blocks_of::<T, 4>(src, out, done);
    for (o, &v) in out[done..].iter_mut().zip(&src[done..]) {
        *o = v;
    }
}

#[inline(always)]
fn copy_blocks_of<T: Scalar, const B: usize>(src: &[T], out: &mut [T], done: usize) -> usize {
    let blocks = (out.len().min(src.len()) - done) / B;
    let dst = out[done..].chunks_exact_mut(B).take(blocks);
    for (o, s) in dst.zip(src[done..].chunks_exact(B)) {
        let o: &mut [T; B] = match o.try_into() {
            Ok(o) => o,
            Err(_) => return done,
        };
        let s: &[T; B] = match s.try_into() {
            Ok(s) => s,
            Err(_) => return done,
        };
        *o = *s;
    }
    done + blocks * B
}

/// `out.fill(0)` in fixed-size blocks.
#[inline(always)]
pub fn fill_zero<T: Scalar>(out: &mut [T]) {
    let mut blocks = out.chunks_exact_mut(16);
    for block in &mut blocks {
        if let Ok(block) = <&mut [T; 16]>::try_from(block) {
            *block = [T::zero(); 16];
        }
    }
    for v in blocks.into_remainder() {
        *v = T::zero();
    }
}
