//! The calling thread's last error, and the wrapper every entry point runs in.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// An entry point's failure: errno and text.
pub type Failure = (c_int, String);

/// Runs `f`, turning an engine error or a panic into a negative errno.
pub fn entry<F: FnOnce() -> Result<c_int, Failure>>(f: F) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => {
            set_last_error("");
            v
        }
        Ok(Err((errno, msg))) => {
            set_last_error(&msg);
            -errno.abs().max(1)
        }
        Err(_) => {
            set_last_error("internal error (panic) in libccr");
            -libc::EFAULT
        }
    }
}

pub fn engine<T>(r: ccr::Result<T>) -> Result<T, Failure> {
    r.map_err(|e| (e.errno(), e.to_string()))
}

pub fn invalid<T>(msg: &str) -> Result<T, Failure> {
    Err((libc::EINVAL, msg.to_string()))
}

/// The calling thread's last failure, human readable ("" after a success).
/// Valid until the next ccr call on this thread.
#[no_mangle]
pub extern "C" fn ccr_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}
