//! Conversions between kernel structs and their image form.

use crate::image::pb;
use crate::sys::ptrace::Regs;

pub fn regs_to_pb(r: &Regs) -> pb::GpRegs {
    pb::GpRegs {
        r15: r.r15,
        r14: r.r14,
        r13: r.r13,
        r12: r.r12,
        bp: r.rbp,
        bx: r.rbx,
        r11: r.r11,
        r10: r.r10,
        r9: r.r9,
        r8: r.r8,
        ax: r.rax,
        cx: r.rcx,
        dx: r.rdx,
        si: r.rsi,
        di: r.rdi,
        orig_ax: r.orig_rax,
        ip: r.rip,
        cs: r.cs,
        flags: r.eflags,
        sp: r.rsp,
        ss: r.ss,
        fs_base: r.fs_base,
        gs_base: r.gs_base,
        ds: r.ds,
        es: r.es,
        fs: r.fs,
        gs: r.gs,
    }
}

pub fn regs_from_pb(p: &pb::GpRegs) -> Regs {
    Regs {
        r15: p.r15,
        r14: p.r14,
        r13: p.r13,
        r12: p.r12,
        rbp: p.bp,
        rbx: p.bx,
        r11: p.r11,
        r10: p.r10,
        r9: p.r9,
        r8: p.r8,
        rax: p.ax,
        rcx: p.cx,
        rdx: p.dx,
        rsi: p.si,
        rdi: p.di,
        orig_rax: p.orig_ax,
        rip: p.ip,
        cs: p.cs,
        eflags: p.flags,
        rsp: p.sp,
        ss: p.ss,
        fs_base: p.fs_base,
        gs_base: p.gs_base,
        ds: p.ds,
        es: p.es,
        fs: p.fs,
        gs: p.gs,
    }
}

/// The xfeatures bitmap in an XSAVE area's header (offset 512).
pub fn xstate_features(xs: &[u8]) -> u64 {
    xs.get(512..520).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regs_round_trip() {
        let r = Regs { rax: 1, rip: 2, rsp: 3, fs_base: 4, orig_rax: u64::MAX, eflags: 0x246, ..Default::default() };
        let back = regs_from_pb(&regs_to_pb(&r));
        assert_eq!(format!("{r:?}"), format!("{back:?}"));
    }
}
