/* UAPI headers whose structs and constants ccr uses; bindgen turns them into Rust. */
#include <stddef.h>
#include <sys/user.h>
#include <linux/types.h>
#include <linux/ptrace.h>
#include <linux/elf.h>
#include <linux/rseq.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <asm/prctl.h>
#include <asm/sigcontext.h>
#include <asm/unistd.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
