//! The thread pool every operator runs on, and the helpers that split work over it.
//!
//! One rayon pool owned by ferroconv (not rayon's global pool), so the thread count
//! can change at run time. It is rebuilt lazily when the process id changes: a child
//! created by `fork()` inherits the pool's bookkeeping but none of its threads, and
//! would deadlock waiting for them.
//!
//! Work is always cut into the same tasks whatever the thread count, and every
//! reduction runs in a fixed order, so results are bit-identical for any number of
//! threads; threads only change which worker runs which task.

use crate::error::{Error, Result};
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Below this many multiply-adds (or element visits) an operator runs on the calling
/// thread: waking the pool costs more than the work.
pub const SERIAL_WORK_THRESHOLD: usize = 1 << 17;

/// Environment variable holding the default thread count.
pub const THREADS_ENV: &str = "FERROCONV_NUM_THREADS";

/// Environment variable that turns worker pinning off when it holds `0`.
pub const PIN_ENV: &str = "FERROCONV_PIN_THREADS";

struct PoolState {
    threads: Option<usize>,
    pool: Option<Arc<ThreadPool>>,
    pid: u32,
}

static STATE: Mutex<PoolState> = Mutex::new(PoolState {
    threads: None,
    pool: None,
    pid: 0,
});

fn lock_state() -> MutexGuard<'static, PoolState> {
    // A panic while holding the lock leaves consistent data (plain fields), so a
    // poisoned lock is still usable.
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The default thread count: `FERROCONV_NUM_THREADS` if it holds a positive integer,
/// else the number of cores available to the process.
pub fn default_num_threads() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// Number of threads the next operator will use.
pub fn get_num_threads() -> usize {
    let mut state = lock_state();
    *state.threads.get_or_insert_with(default_num_threads)
}

/// Set the number of threads (>= 1) used by every later operator.
pub fn set_num_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        return Err(Error::Value(
            "set_num_threads: threads must be >= 1, got 0".to_string(),
        ));
    }
    if threads > 4096 {
        return Err(Error::Value(format!(
            "set_num_threads: threads must be <= 4096, got {threads}"
        )));
    }
    let mut state = lock_state();
    if state.threads != Some(threads) {
        state.threads = Some(threads);
        state.pool = None;
    }
    Ok(())
}

/// The pool for the current thread count and process, building it if needed.
fn pool() -> Result<Arc<ThreadPool>> {
    let mut state = lock_state();
    let pid = std::process::id();
    if state.pid != pid {
        // Forked child: the old pool's threads do not exist here. Leak it rather
        // than drop it, since dropping would signal threads that are gone.
        if let Some(old) = state.pool.take() {
            std::mem::forget(old);
        }
        state.pid = pid;
    }
    if let Some(pool) = &state.pool {
        return Ok(Arc::clone(pool));
    }
    let threads = *state.threads.get_or_insert_with(default_num_threads);
    let cpus = pinned_cpus(threads);
    let pool = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ferroconv-{i}"))
        .start_handler(move |i| {
            if let Some(&cpu) = cpus.get(i) {
                pin_current_thread(cpu);
            }
        })
        .build()
        .map_err(|e| Error::Value(format!("could not start {threads} worker threads: {e}")))?;
    let pool = Arc::new(pool);
    state.pool = Some(Arc::clone(&pool));
    Ok(pool)
}

/// The CPU each worker is pinned to, or nothing when they float.
///
/// Workers are pinned only when the pool has exactly one worker per CPU the process
/// may run on (the default: the whole machine, or the whole `taskset`), so pinning
/// never takes a CPU the process would not use anyway. Unpinned, the scheduler now
/// and then stacked both workers on one core of a 2-core machine for a series of
/// calls, so a memory-bound call ran at one-thread speed (docs/performance.md).
/// `FERROCONV_PIN_THREADS=0` turns pinning off.
fn pinned_cpus(threads: usize) -> Vec<usize> {
    if std::env::var(PIN_ENV).is_ok_and(|v| v.trim() == "0") {
        return Vec::new();
    }
    let cpus = allowed_cpus();
    if cpus.len() == threads {
        cpus
    } else {
        Vec::new()
    }
}

/// The CPUs the calling thread may run on (empty when unknown).
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain bits, valid when zeroed; sched_getaffinity writes at
    // most size_of::<cpu_set_t>() bytes into it, and CPU_ISSET only reads indices
    // below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Pin the calling thread to `cpu`; a failure leaves it floating (pinning only
/// steadies the timing, never changes a result).
#[cfg(target_os = "linux")]
fn pin_current_thread(cpu: usize) {
    // SAFETY: as in `allowed_cpus`; `cpu` came from that list, so it is below
    // CPU_SETSIZE, and sched_setaffinity only reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(not(target_os = "linux"))]
fn pin_current_thread(_cpu: usize) {}

/// Set by the SIGINT handler the binding installs around a call from Python's main
/// thread ([`Interruptible`]); the parallel loops of that call stop between tasks.
static INTERRUPT: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether the calling thread's loops watch [`INTERRUPT`] (only inside an
    /// [`Interruptible`] scope, so calls from other threads never stop for it).
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

/// A scope in which Ctrl-C stops the calling thread's parallel loops between
/// tasks: they then return [`Error::Interrupted`]. Whoever delivers the signal
/// calls [`request_interrupt`]; [`Interruptible::fired`] says whether it came.
pub struct Interruptible {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Interruptible {
    /// Start watching on the calling thread, with no interrupt pending.
    pub fn enter() -> Self {
        INTERRUPT.store(false, Ordering::SeqCst);
        WATCHED.with(|w| w.set(true));
        Interruptible {
            _not_send: std::marker::PhantomData,
        }
    }

    /// Whether an interrupt was requested inside the scope.
    pub fn fired(&self) -> bool {
        INTERRUPT.load(Ordering::SeqCst)
    }
}

impl Drop for Interruptible {
    fn drop(&mut self) {
        WATCHED.with(|w| w.set(false));
    }
}

/// Ask the watched loops to stop (async-signal-safe: one atomic store).
pub fn request_interrupt() {
    INTERRUPT.store(true, Ordering::SeqCst);
}

/// Whether the loops of the calling thread should stop now.
fn stop_requested(watched: bool) -> bool {
    watched && INTERRUPT.load(Ordering::Relaxed)
}

/// Whether work of this size should run on the calling thread.
pub fn runs_serially(work: usize) -> bool {
    work < SERIAL_WORK_THRESHOLD || get_num_threads() == 1
}

/// Run `body(workspace, task)` for every task in `0..tasks`, in parallel when `work`
/// (an estimate of the total multiply-adds) is large enough. Each worker gets its own
/// workspace from `init`.
pub fn for_each_task<W, I, F>(tasks: usize, work: usize, init: I, body: F) -> Result<()>
where
    I: Fn() -> W + Sync + Send,
    F: Fn(&mut W, usize) + Sync + Send,
{
    let watched = WATCHED.with(|w| w.get());
    if tasks <= 1 || runs_serially(work) {
        let mut workspace = init();
        for task in 0..tasks {
            if stop_requested(watched) {
                return Err(Error::Interrupted);
            }
            body(&mut workspace, task);
        }
        return Ok(());
    }
    // Every worker builds one workspace and claims task indices from a shared
    // counter until none are left: no per-task allocation, and no imbalance when a
    // few tasks are slower. An interrupt stops the claiming (never a task midway).
    let next = AtomicUsize::new(0);
    pool()?.broadcast(|_| {
        let mut workspace = init();
        loop {
            let task = next.fetch_add(1, Ordering::Relaxed);
            if task >= tasks || stop_requested(watched) {
                break;
            }
            body(&mut workspace, task);
        }
    });
    if stop_requested(watched) {
        return Err(Error::Interrupted);
    }
    Ok(())
}

/// Run `body(workspace, index, chunk)` for every `chunk_len`-long chunk of `data`, in
/// parallel when `work` is large enough.
pub fn for_each_chunk_mut<T, W, I, F>(
    data: &mut [T],
    chunk_len: usize,
    work: usize,
    init: I,
    body: F,
) -> Result<()>
where
    T: Send,
    I: Fn() -> W + Sync + Send,
    F: Fn(&mut W, usize, &mut [T]) + Sync + Send,
{
    if chunk_len == 0 || data.is_empty() {
        return Ok(());
    }
    let watched = WATCHED.with(|w| w.get());
    if data.len() <= chunk_len || runs_serially(work) {
        let mut workspace = init();
        for (i, chunk) in data.chunks_mut(chunk_len).enumerate() {
            if stop_requested(watched) {
                return Err(Error::Interrupted);
            }
            body(&mut workspace, i, chunk);
        }
        return Ok(());
    }
    pool()?.install(|| {
        data.par_chunks_mut(chunk_len)
            .enumerate()
            .for_each_init(&init, |workspace, (i, chunk)| {
                if !stop_requested(watched) {
                    body(workspace, i, chunk);
                }
            });
    });
    if stop_requested(watched) {
        return Err(Error::Interrupted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_threads_is_refused() {
        assert!(set_num_threads(0).is_err());
    }

    #[test]
    fn every_task_runs_once() {
        let counts: Vec<std::sync::atomic::AtomicUsize> =
            (0..100).map(|_| Default::default()).collect();
        for_each_task(
            100,
            usize::MAX,
            || (),
            |_, i| {
                counts[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
        )
        .unwrap();
        assert!(counts
            .iter()
            .all(|c| c.load(std::sync::atomic::Ordering::Relaxed) == 1));
    }
}
