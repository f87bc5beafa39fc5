//! External files: something of the host the task holds (the console, a tty a
//! container manager bind-mounted in) that the dump lets go and the caller hands
//! back on restore as an inherited fd (`--inherit-fd fd[N]:KEY`). The dump marks
//! an fd external when the caller names it (`--external tty[RDEV:DEV]`: the tty
//! device and the filesystem it is on, in hex as stat gives them, so two ptys of
//! different devpts instances are told apart); a tty's settings go with it and
//! are given to the one handed over. Each file comes back as a description of
//! its own on the tty handed over (reopened with its saved access mode and
//! flags), so files that were apart stay apart. Each file comes back as a description of
//! its own on the tty handed over (reopened with its saved access mode and
//! flags), so files that were apart stay apart.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::{DumpCx, FdProbe, FileDesc, FileState, OpenCx};
use crate::error::{Error, Result};
use crate::image::pb;
use crate::sys::tty;

/// The key of a tty device `rdev` on the filesystem `dev`.
pub fn tty_key(rdev: u64, dev: u64) -> String {
    format!("tty[{rdev:x}:{dev:x}]")
}

/// The device number a `tty[RDEV:DEV]` key names.
pub fn tty_rdev(key: &str) -> Option<u64> {
    let inner = key.strip_prefix("tty[")?.strip_suffix(']')?;
    u64::from_str_radix(inner.split_once(':')?.0, 16).ok()
}

/// The key among `externals` that names the file of `md`, if one does.
pub fn key_of(externals: &[String], md: &std::fs::Metadata) -> Option<String> {
    if !md.file_type().is_char_device() {
        return None;
    }
    let key = tty_key(md.rdev(), md.dev());
    externals.iter().find(|k| **k == key).cloned()
}

pub fn settings_to_pb(s: &tty::Settings) -> pb::TtySettings {
    let t = &s.termios;
    pb::TtySettings {
        iflag: t.c_iflag,
        oflag: t.c_oflag,
        cflag: t.c_cflag,
        lflag: t.c_lflag,
        line: t.c_line as u32,
        cc: t.c_cc.to_vec(),
        ispeed: t.c_ispeed,
        ospeed: t.c_ospeed,
        rows: s.winsize.ws_row as u32,
        cols: s.winsize.ws_col as u32,
        xpixel: s.winsize.ws_xpixel as u32,
        ypixel: s.winsize.ws_ypixel as u32,
    }
}

pub fn settings_from_pb(p: &pb::TtySettings) -> tty::Settings {
    let mut cc = [0u8; libc::NCCS];
    for (d, s) in cc.iter_mut().zip(&p.cc) {
        *d = *s;
    }
    tty::Settings {
        termios: libc::termios {
            c_iflag: p.iflag,
            c_oflag: p.oflag,
            c_cflag: p.cflag,
            c_lflag: p.lflag,
            c_line: p.line as u8,
            c_cc: cc,
            c_ispeed: p.ispeed,
            c_ospeed: p.ospeed,
        },
        winsize: libc::winsize {
            ws_row: p.rows as u16,
            ws_col: p.cols as u16,
            ws_xpixel: p.xpixel as u16,
            ws_ypixel: p.ypixel as u16,
        },
    }
}

file_kind! { External: "external file", External, BeforeFork;

    fn claims(&self, p: &FdProbe) -> bool {
        p.external.is_some()
    }

    fn dump(&self, _cx: &mut DumpCx<'_>, p: &FdProbe, _id: u32) -> Result<FileState> {
        let key = p.external.clone().expect("claimed");
        // Read through an open of its own (never a controlling tty of ccr's).
        let link = std::path::PathBuf::from(format!("/proc/{}/fd/{}", p.pid, p.fd));
        let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC;
        let f = crate::sys::fd::open(&link, flags, 0)?;
        let settings = tty::settings(f.as_fd()).map_err(|e| p.refuse(&format!("external tty whose settings cannot be read ({e})")))?;
        Ok(FileState::External(pb::ExternalFile { key, tty: Some(settings_to_pb(&settings)) }))
    }

    fn open(&self, cx: &mut OpenCx<'_>, f: &FileDesc) -> Result<OwnedFd> {
        let FileState::External(e) = &f.state else { unreachable!("owned by External") };
        let fd = cx.inherited.get(&e.key).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "file {} is the external file {}: hand it over with --inherit-fd fd[N]:{}",
                f.id, e.key, e.key
            ))
        })?;
        // Opened again, a master would be a new pty: the task held a slave.
        if e.key.starts_with("tty[") && tty::is_pty_master(*fd) {
            return Err(Error::InvalidArgument(format!(
                "file {}: the fd handed over for {} is a pty master: hand over the slave (the tty the tree is to hold)",
                f.id, e.key
            )));
        }
        // A description of its own, as the task had: several files on one tty (a
        // console init got from its manager, opened again by a getty) keep their
        // access modes and flags (O_NONBLOCK) apart, as before the dump.
        let own = crate::sys::fd::reopen(*fd, super::reopen_flags(f)).map_err(|err| {
            Error::InvalidArgument(format!(
                "file {}: the fd handed over for {} cannot be opened again as the file was: {err}",
                f.id, e.key
            ))
        })?;
        if let Some(t) = &e.tty {
            tty::set_settings(own.as_fd(), &settings_from_pb(t)).map_err(|err| {
                Error::InvalidArgument(format!("the fd handed over for {} is no tty whose settings can be set: {err}", e.key))
            })?;
        }
        Ok(own)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tty_keys() {
        let k = super::tty_key(libc::makedev(136, 0), libc::makedev(0, 26));
        assert_eq!(k, "tty[8800:1a]");
        assert_eq!(super::tty_rdev(&k), Some(libc::makedev(136, 0)));
        assert_eq!(super::tty_rdev("mnt[x]"), None);
    }
}
