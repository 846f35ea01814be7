//! Ctrl-C during a long call: the GIL is released while the core computes, so
//! Python's own SIGINT handler would only run once the call returns (seconds
//! later on a large layer). Around a call from Python's main thread, while Python's
//! default SIGINT handler is in place, a handler of ours asks the call's parallel
//! loops to stop between tasks ([`crate::threads::Interruptible`]); the call then
//! raises `KeyboardInterrupt` and its output is discarded. Other threads, a custom
//! Python handler, and platforms without `sigaction` keep Python's behaviour.

use crate::threads::Interruptible;
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;

/// Run `f` with the GIL released, interruptible by Ctrl-C where possible.
pub(crate) fn detach<R: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> crate::Result<R> + Send,
) -> PyResult<R> {
    let guard = SigintGuard::install(py)?;
    let result = py.detach(f);
    // A SIGINT that arrived after the last task still interrupts: Python would
    // have raised it at its next check too.
    if guard.is_some_and(SigintGuard::finish) {
        return Err(PyKeyboardInterrupt::new_err(()));
    }
    result.map_err(PyErr::from)
}

/// Whether Python's default SIGINT handler (`signal.default_int_handler`) is set.
fn default_python_handler(py: Python<'_>) -> PyResult<bool> {
    let signal = py.import("signal")?;
    let current = signal.call_method1("getsignal", (signal.getattr("SIGINT")?,))?;
    Ok(current.is(&signal.getattr("default_int_handler")?))
}

#[cfg(target_os = "linux")]
fn on_main_thread() -> bool {
    // SAFETY: getpid and the gettid syscall take no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) == libc::getpid() as libc::c_long }
}

#[cfg(target_os = "macos")]
fn on_main_thread() -> bool {
    // SAFETY: pthread_main_np takes no arguments and cannot fail.
    unsafe { libc::pthread_main_np() != 0 }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn on_main_thread() -> bool {
    false
}

#[cfg(unix)]
extern "C" fn on_sigint(_signal: libc::c_int) {
    crate::threads::request_interrupt();
}

/// Our SIGINT handler, installed for one call; the previous one is restored on drop.
struct SigintGuard {
    #[cfg(unix)]
    previous: libc::sigaction,
    scope: Interruptible,
}

impl SigintGuard {
    #[cfg(unix)]
    fn install(py: Python<'_>) -> PyResult<Option<Self>> {
        if !on_main_thread() || !default_python_handler(py)? {
            return Ok(None);
        }
        let scope = Interruptible::enter();
        // SAFETY: sigaction structs are plain data, valid when zeroed; the handler
        // only stores to an atomic (async-signal-safe); `previous` receives the
        // handler in place (Python's), restored by `drop`.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGINT, &action, &mut previous) != 0 {
                return Ok(None);
            }
            Ok(Some(SigintGuard { previous, scope }))
        }
    }

    #[cfg(not(unix))]
    fn install(_py: Python<'_>) -> PyResult<Option<Self>> {
        Ok(None)
    }

    /// Restore the previous handler; whether a SIGINT came meanwhile.
    fn finish(self) -> bool {
        let fired = self.scope.fired();
        drop(self);
        fired
    }
}

#[cfg(unix)]
impl Drop for SigintGuard {
    fn drop(&mut self) {
        // SAFETY: `previous` is the action sigaction returned when this guard was
        // installed; restoring it only reads it.
        unsafe {
            libc::sigaction(libc::SIGINT, &self.previous, std::ptr::null_mut());
        }
    }
}
