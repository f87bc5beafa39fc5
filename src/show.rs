//! `ccr show`: any image (or a whole images directory) as JSON.

use std::path::Path;

pub fn to_json(path: &Path) -> crate::Result<String> {
    Err(crate::Error::InvalidArgument(format!(
        "show {} not implemented",
        path.display()
    )))
}
