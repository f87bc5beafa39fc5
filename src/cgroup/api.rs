//! Entry points of the cgroup work, called from `crate::api`.

use crate::error::{Error, Result};
use crate::opts::Opts;

pub fn freeze(_opts: &Opts) -> Result<()> {
    Err(Error::InvalidArgument(
        "freeze is not implemented yet".into(),
    ))
}

pub fn thaw(_opts: &Opts) -> Result<()> {
    Err(Error::InvalidArgument("thaw is not implemented yet".into()))
}

pub fn save(_opts: &Opts) -> Result<()> {
    Err(Error::InvalidArgument(
        "cgroup-save is not implemented yet".into(),
    ))
}

pub fn restore(_opts: &Opts) -> Result<()> {
    Err(Error::InvalidArgument(
        "cgroup-restore is not implemented yet".into(),
    ))
}
