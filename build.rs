//! Generates the protobuf image types (prost) and the kernel UAPI bindings (bindgen).

use std::env;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/common.proto",
    "proto/inventory.proto",
    "proto/core.proto",
    "proto/mm.proto",
    "proto/fds.proto",
    "proto/cgroup.proto",
    "proto/stats.proto",
    "proto/sums.proto",
    "proto/mnt.proto",
];

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let mut cfg = prost_build::Config::new();
    cfg.type_attribute(".", "#[derive(serde::Serialize)]");
    // Compared as a whole inside engine types that derive Eq (mm::Vma).
    cfg.type_attribute(".ccr.images.FileStamp", "#[derive(Eq)]");
    // Raw byte fields print as hex strings, not arrays of numbers.
    for f in [
        "ccr.images.Registers.xsave",
        "ccr.images.PendingSignal.siginfo",
        "ccr.images.Mm.auxv",
        "ccr.images.PipeData.data",
    ] {
        cfg.field_attribute(f, "#[serde(serialize_with = \"crate::image::hex::serialize\")]");
    }
    cfg.compile_protos(PROTOS, &["proto"]).expect("compiling proto/*.proto (is protoc installed?)");

    println!("cargo:rerun-if-changed=src/sys/kernel.h");
    let bindings = bindgen::Builder::default()
        .header("src/sys/kernel.h")
        .allowlist_type("user_regs_struct")
        .allowlist_type("user_fpregs_struct")
        .allowlist_type("ptrace_rseq_configuration")
        .allowlist_type("ptrace_peeksiginfo_args")
        .allowlist_type("ptrace_syscall_info")
        .allowlist_type("prctl_mm_map")
        .allowlist_type("clone_args")
        .allowlist_type("rseq")
        .allowlist_type("_xstate")
        .allowlist_type("_header")
        .allowlist_type("__user_cap_header_struct")
        .allowlist_type("__user_cap_data_struct")
        .allowlist_type("unix_diag_req")
        .allowlist_type("unix_diag_msg")
        .allowlist_type("unix_diag_rqlen")
        .allowlist_type("nlmsghdr")
        .allowlist_type("nlattr")
        // rt_sigaction's struct sigaction (x86_64 layout: handler, flags, restorer,
        // mask; sys::signal mirrors it with integer addresses and checks the
        // layout), sigaltstack's stack_t, getitimer/setitimer's itimerval.
        .allowlist_type("sigaction")
        .allowlist_type("stack_t")
        .allowlist_type("__kernel_old_itimerval")
        // rt_sigreturn's frame: the ucontext with its sigcontext, and the software
        // bytes and magics that mark an xsave area in it.
        // kcmp's object kinds.
        .allowlist_type("kcmp_type")
        .allowlist_type("ucontext")
        .allowlist_type("sigcontext")
        .allowlist_type("_fpx_sw_bytes")
        .allowlist_var("UC_.*")
        .allowlist_var("FP_XSTATE_MAGIC.*")
        .allowlist_type("rseq_flags")
        // timer_create's sigevent and timer_settime/gettime's itimerspec.
        .allowlist_type("sigevent")
        // F_GETOWN_EX / F_SETOWN_EX's owner, and the fcntl commands glibc's libc
        // crate does not name.
        .allowlist_type("f_owner_ex")
        .allowlist_var("F_(GET|SET)OWN_EX")
        .allowlist_var("F_(GET|SET)SIG")
        .allowlist_var("F_OWNER_.*")
        .allowlist_type("__kernel_itimerspec")
        .allowlist_var("UDIAG_.*")
        .allowlist_var("UNIX_DIAG_.*")
        .allowlist_var("NETLINK_SOCK_DIAG")
        .allowlist_var("SOCK_DIAG_BY_FAMILY")
        .allowlist_var("NLM_F_.*")
        // rtnetlink: the links, addresses and routes of a network namespace, and
        // SIOCGSKNS (the namespace a socket was made in).
        .allowlist_type("ifinfomsg")
        .allowlist_type("ifaddrmsg")
        .allowlist_type("ifa_cacheinfo")
        .allowlist_type("rtmsg")
        .allowlist_type("rtattr_type_t")
        .allowlist_var("NETLINK_ROUTE")
        .allowlist_var("RTM_.*")
        .allowlist_var("IFA_.*")
        .allowlist_var("IFLA_.*")
        .allowlist_var("RTPROT_.*")
        .allowlist_var("RTN_.*")
        // A container's veth (its peer on the host): the pair's peer, the main
        // routing table, route scopes and next-hop flags.
        .allowlist_var("VETH_INFO_.*")
        .allowlist_type("rt_class_t")
        .allowlist_type("rt_scope_t")
        .allowlist_var("RTNH_F_.*")
        // Policy routing rules (RTM_GETRULE): a namespace's must be the kernel's.
        .allowlist_type("fib_rule_hdr")
        .allowlist_var("FRA_.*")
        .allowlist_var("SIOCGSKNS")
        // TCP sockets: a listener's backlog and accept queue, any socket's state.
        .allowlist_type("tcp_info")
        // Established TCP connections, read and made again in repair mode.
        .allowlist_type("tcp_repair_opt")
        .allowlist_type("tcp_repair_window")
        .allowlist_var("TCP_REPAIR_WINDOW")
        .allowlist_var("TCPI_OPT_.*")
        // Netlink sockets: their address, groups and options.
        .allowlist_type("sockaddr_nl")
        .allowlist_var("NETLINK_(LIST|ADD)_MEMBERSHIPS?")
        .allowlist_var("NETLINK_(PKTINFO|BROADCAST_ERROR|NO_ENOBUFS|CAP_ACK|EXT_ACK|GET_STRICT_CHK|LISTEN_ALL_NSID)")
        // Packet sockets' options (SOL_PACKET).
        .allowlist_var("PACKET_.*")
        .allowlist_var("SOL_PACKET")
        .allowlist_var("NLA_.*")
        .allowlist_var("NLMSG_.*")
        .allowlist_var("PTRACE_.*")
        // seccomp filters: read with ptrace, installed again by the task.
        .allowlist_type("seccomp_metadata")
        .allowlist_type("sock_fprog")
        .allowlist_type("sock_filter")
        .allowlist_var("SECCOMP_.*")
        .allowlist_var("NT_X86_XSTATE")
        .allowlist_var("NT_PRSTATUS")
        .allowlist_var("ARCH_.*")
        .allowlist_var("PR_.*")
        .allowlist_var("RSEQ_.*")
        .allowlist_var("CLONE_.*")
        .allowlist_var("_LINUX_CAPABILITY_.*")
        .allowlist_var("CAP_LAST_CAP")
        .allowlist_var("SECBIT_.*")
        .allowlist_var("SECURE_.*")
        .allowlist_var("__NR_.*")
        // The new mount API (open_tree, fsopen, move_mount, mount_setattr) and
        // openat2, which restore builds a mount tree with.
        .allowlist_type("mount_attr")
        .allowlist_type("open_how")
        .allowlist_type("fsconfig_command")
        .allowlist_var("OPEN_TREE_.*")
        .allowlist_var("MOVE_MOUNT_.*")
        .allowlist_var("FSOPEN_.*")
        .allowlist_var("FSMOUNT_.*")
        .allowlist_var("MOUNT_ATTR_.*")
        .allowlist_var("RESOLVE_.*")
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen over src/sys/kernel.h (is libclang installed?)");
    bindings.write_to_file(out.join("kernel.rs")).expect("writing kernel.rs");
}
