//! Fault injection for tests: with `CCR_FAULT=NAME:N` in the environment, the
//! N-th pass through the point NAME kills the process with SIGKILL, as a kill
//! from outside would at that very moment. Without the variable a point costs one
//! atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
static PASSES: AtomicU64 = AtomicU64::new(0);

fn armed() -> &'static Option<(String, u64)> {
    ARMED.get_or_init(|| {
        let v = std::env::var("CCR_FAULT").ok()?;
        let (name, n) = v.rsplit_once(':')?;
        Some((name.to_string(), n.parse().ok()?))
    })
}

/// A moment at which a test may kill ccr.
pub fn point(name: &str) {
    if let Some((want, n)) = armed() {
        if want == name && PASSES.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }
}
