//! Image messages ↔ engine types. Reading checks what protobuf cannot: every enum
//! holds a value this ccr knows (an unknown one is refused, naming the file and
//! field: a newer or corrupt image is never restored as something else), flags
//! hold known bits, required sub-messages are there.

mod files;
mod inventory;
mod mm;
mod task;

pub use files::{fds_from_pb, files_from_pb, files_to_pb};
pub use inventory::{inventory_from_pb, inventory_to_pb};
pub use mm::{mm_from_pb, mm_to_pb};
pub use task::{core_from_pb, core_to_pb, regs_from_pb, regs_to_pb};

use std::path::{Path, PathBuf};

use super::ImageError;

/// Where a conversion is (the file), for its errors.
pub struct At<'a>(pub &'a Path);

impl At<'_> {
    pub fn invalid(&self, field: impl Into<String>, detail: impl Into<String>) -> ImageError {
        ImageError::Invalid { path: PathBuf::from(self.0), field: field.into(), detail: detail.into() }
    }

    /// An enum field: its known value, or an error naming the field and value.
    pub fn known<E: TryFrom<i32>>(&self, field: impl Into<String>, v: i32) -> Result<E, ImageError> {
        E::try_from(v)
            .map_err(|_| self.invalid(field, format!("unknown value {v} (written by a newer ccr, or corrupt)")))
    }

    /// A sub-message that must be present.
    pub fn required<'m, T>(&self, field: impl Into<String>, v: Option<&'m T>) -> Result<&'m T, ImageError> {
        v.ok_or_else(|| self.invalid(field, "missing"))
    }
}

/// The XSAVE features in an XSAVE area's header (offset 512).
pub fn xstate_features(xs: &[u8]) -> u64 {
    xs.get(512..520).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).unwrap_or(0)
}
