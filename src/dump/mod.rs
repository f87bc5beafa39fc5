//! Dump: live tasks → images directory.

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("pid {pid}: {detail}")]
    Unsupported { pid: i32, detail: String },
}

impl DumpError {
    pub fn errno(&self) -> i32 {
        libc::EOPNOTSUPP
    }
}

pub fn run(opts: &crate::Opts) -> crate::Result<()> {
    Err(crate::Error::InvalidArgument(format!("dump not implemented ({:?})", opts.pid)))
}
