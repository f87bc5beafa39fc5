use super::*;

const SMAPS: &str = "\
55d0c0a00000-55d0c0a02000 r--p 00000000 fe:00 1311                       /usr/bin/sleep
Size:                  8 kB
VmFlags: rd mr mw me dw sd
7ffd1a5b2000-7ffd1a5d3000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
VmFlags: rd wr mr mw me gd ac
7f00aa000000-7f00aa001000 rw-s 00000000 00:01 2050                       /dev/zero (deleted)
VmFlags: rd wr sh mr mw me ms sd
7f00ab000000-7f00ab001000 ---p 00000000 00:00 0 
VmFlags: mr mw me sd
";

#[test]
fn smaps_entries() {
    let m = parse_smaps(SMAPS).unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!(m[0].start, 0x55d0c0a00000);
    assert_eq!((m[0].dev_major, m[0].dev_minor, m[0].inode), (0xfe, 0, 1311));
    assert_eq!(m[0].name, "/usr/bin/sleep");
    assert!(m[1].has_flag("gd") && m[1].write && !m[1].shared);
    assert_eq!(m[2].name, "/dev/zero (deleted)");
    assert!(m[2].shared);
    assert_eq!(m[3].name, "");
    assert!(!m[3].read && !m[3].write && !m[3].exec);
}

#[test]
fn stat_with_odd_comm() {
    let text = "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 2269184 200 18446744073709551615 94000000000000 94000000004000 140720000000000 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94000000010000 94000000011000 94000000020000 140720000001000 140720000001100 140720000001100 140720000001200 0\n";
    let s = parse_stat(text).unwrap();
    assert_eq!(s.pid, 4242);
    assert_eq!(s.comm, "a b) c)");
    assert_eq!(s.state, 'S');
    assert_eq!((s.ppid, s.pgid, s.sid), (1, 4242, 4242));
    assert_eq!(s.num_threads, 1);
    assert_eq!(s.start_code, 94000000000000);
    assert_eq!(s.exit_signal, 17);
    assert_eq!(s.start_brk, 94000000020000);
    assert_eq!(s.env_end, 140720000001200);
    assert_eq!(s.exit_code, 0);
}

#[test]
fn status_fields() {
    let s = parse_status("Umask:\t0022\nUid:\t0\t1\t2\t3\nGroups:\t10 20 \nCapEff:\t000001ffffffffff\n", "x");
    assert_eq!(s.octal("Umask").unwrap(), 0o22);
    assert_eq!(s.numbers("Uid").unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(s.numbers("Groups").unwrap(), vec![10, 20]);
    assert_eq!(s.hex("CapEff").unwrap(), 0x1ffffffffff);
    assert!(s.hex("CapBnd").is_err());
}

#[test]
fn fdinfo_fields() {
    let f = parse_fdinfo("pos:\t12345\nflags:\t0102002\nmnt_id:\t27\nino:\t99\n").unwrap();
    assert_eq!(f.pos, 12345);
    assert_eq!(f.flags, 0o102002);
    assert_eq!(f.mnt_id, 27);
    assert_eq!(f.extra, vec![("ino".to_string(), "99".to_string())]);
}

#[test]
fn limits_table() {
    let text = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             95724                95724                processes 
Max open files            1024                 524288               files     
";
    let l = parse_limits(text).unwrap();
    assert_eq!(l.len(), 8);
    assert_eq!(l[3], (3, 8388608, u64::MAX));
    assert_eq!(l[7], (7, 1024, 524288));
}

#[test]
fn anon_fdinfo() {
    let e = parse_fdinfo("pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1038\neventfd-count:               1f\neventfd-id: 1\neventfd-semaphore: 1\n").unwrap();
    assert_eq!(fdinfo_num(&e, "eventfd-count", 16), Some(31));
    assert_eq!(fdinfo_num(&e, "eventfd-semaphore", 10), Some(1));
    let t = parse_fdinfo("clockid: 1\nticks: 3\nsettime flags: 00\nit_value: (99, 999923457)\nit_interval: (1, 0)\n")
        .unwrap();
    assert_eq!(fdinfo_timespec(&t, "it_value"), Some(99_999_923_457));
    assert_eq!(fdinfo_timespec(&t, "it_interval"), Some(1_000_000_000));
    let p = parse_fdinfo("pos:\t0\nflags:\t02000002\ntfd:        3 events: 80000019 data:                3  pos:0 ino:40e sdev:10\ntfd:       12 events:       1 data: ffffffffffffffff  pos:0 ino:40f sdev:10\n").unwrap();
    assert_eq!(fdinfo_epoll(&p), vec![(3, 0x80000019, 3), (12, 1, u64::MAX)]);
}

#[test]
fn inotify_fdinfo() {
    let f = parse_fdinfo("pos:\t0\nflags:\t00\ninotify wd:2 ino:263 sdev:fe00000 mask:2 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:6302000000000000\n").unwrap();
    let w = fdinfo_inotify(&f);
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].wd, w[0].mask, w[0].sdev, w[0].handle_type), (2, 2, 0xfe00000, 1));
    assert_eq!(w[0].handle, vec![0x63, 0x02, 0, 0, 0, 0, 0, 0]);
}
