#!/usr/bin/env python3
"""ccr benchmarks, side by side with the machine's limits and the incumbent (criu).

Run through bench/run.sh (which builds everything first), as root:

    bash bench/run.sh [--runs N] [--only NAME,...] [--json FILE] [--skip-2g]

For every workload (bench/workloads/) and every run it:
  1. starts the workload, waits for "ready", dumps it to a tmpfs mounted for this
     run, restores it from there (page cache hot), checks it is alive, sends
     SIGTERM and takes its exit status (the workload verifies its own state);
  2. starts it again, dumps it to a directory under /var/tmp (disk), syncs, drops
     the caches, restores it (cold) and verifies it the same way.
Times come from ccr's own stats.img (dump.frozen_us, dump.total_us,
restore.total_us, restore.pid_wait_us); wall times are kept in the JSON too.

It also measures the floors of this machine (memcpy, fresh-page allocation on
tmpfs, disk write with fsync, disk read after drop_caches) and reports every
throughput as a ratio to the floor it is bound by. If `criu check` passes, the
same cycles run through criu, alternating with ccr; otherwise one line says why.

Nothing here asserts a timing: targets are printed as met / not met.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "bench", "workloads", "bin")
MIB = 1 << 20
READY_TIMEOUT = 120.0
EXIT_TIMEOUT = 120.0

# name, argv (relative to BIN), image-size class
WORKLOADS = [
    ("tiny", ["tiny"]),
    ("mem-64M", ["memfill", "64"]),
    ("mem-512M", ["memfill", "512"]),
    ("mem-2G", ["memfill", "2048"]),
    ("tree-50", ["tree", "50"]),
    ("tree-200", ["tree", "200"]),
    ("threads-20", ["threads", "20"]),
]

PHASES = ["dump-tmpfs", "dump-disk", "restore-hot", "restore-cold"]
# The floor each phase's throughput is bound by.
PHASE_FLOOR = {
    "dump-tmpfs": "fresh_page",
    "dump-disk": "disk_write",
    "restore-hot": "fresh_page",
    "restore-cold": "disk_read",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Failed(Exception):
    """A dump or restore that did not work; `unsupported` when ccr says so."""

    def __init__(self, text, unsupported=False):
        super().__init__(text)
        self.unsupported = unsupported


# --- processes -----------------------------------------------------------


class Procs:
    """Every PID this run started (workloads, restored tasks), killed at the end."""

    def __init__(self):
        self.pids = set()

    def add(self, pid):
        self.pids.add(pid)

    @staticmethod
    def descendants(pid):
        out = []
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return out
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            for k in kids:
                out.append(k)
                out.extend(Procs.descendants(k))
        return out

    def kill(self, pid):
        """SIGKILLs pid and every descendant, by PID, and waits until they are gone."""
        victims = self.descendants(pid) + [pid]
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pids.discard(pid)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in victims) and time.monotonic() < deadline:
            time.sleep(0.005)

    def kill_all(self):
        for pid in list(self.pids):
            self.kill(pid)


def alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise Failed(f"timed out waiting for {what}")
        time.sleep(0.0005)


def start_workload(argv, out_path, procs):
    """Starts a workload the way ccr can dump it and waits for "ready"."""
    with open(out_path, "w") as out:
        p = subprocess.Popen(
            [os.path.join(BIN, argv[0])] + argv[1:],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            close_fds=True,
            start_new_session=True,
            cwd=os.path.dirname(out_path),
        )
    procs.add(p.pid)

    def ready():
        if p.poll() is not None:
            raise Failed(f"{argv[0]} exited with {p.returncode} before ready")
        with open(out_path) as f:
            return "ready\n" in f.read()

    wait_for(ready, READY_TIMEOUT, f"{argv[0]} to be ready")
    return p


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def dir_size(path):
    return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path))


def last_line(path):
    try:
        with open(path) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


# --- the tools -----------------------------------------------------------


class Ccr:
    name = "ccr"

    def __init__(self, binary):
        self.bin = binary

    def dump(self, pid, images, logdir):
        err = os.path.join(logdir, "ccr-dump.err")
        t = time.monotonic()
        with open(err, "w") as e:
            rc = subprocess.run(
                [self.bin, "dump", "-t", str(pid), "-D", images],
                stdin=subprocess.DEVNULL,
                stdout=e,
                stderr=e,
            ).returncode
        wall = time.monotonic() - t
        if rc != 0:
            text = last_line(err).removeprefix("ccr: ")
            raise Failed(text, unsupported="not supported" in text)
        d = self.stats(images)["dump"]
        return {
            "wall_ms": wall * 1e3,
            "frozen_ms": d.get("frozen_us", 0) / 1e3,
            "total_ms": d.get("total_us", 0) / 1e3,
            "mem_ms": d.get("memdump_us", 0) / 1e3,
            "bytes": d.get("pages_written", 0) * 4096,
        }

    def restore(self, images, logdir, procs):
        """Restores (ccr stays the parent); returns (result, pid, popen)."""
        pidfile = os.path.join(logdir, "ccr-restore.pid")
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        err = os.path.join(logdir, "ccr-restore.err")
        t = time.monotonic()
        with open(err, "w") as e:
            p = subprocess.Popen(
                [self.bin, "restore", "-D", images, "--pidfile", pidfile],
                stdin=subprocess.DEVNULL,
                stdout=e,
                stderr=e,
                close_fds=True,
            )

        def done():
            if os.path.exists(pidfile) and os.path.getsize(pidfile) > 0:
                return True
            if p.poll() is not None:
                text = last_line(err).removeprefix("ccr: ")
                raise Failed(f"restore: {text}", unsupported="not supported" in text)
            return False

        wait_for(done, EXIT_TIMEOUT, "ccr restore")
        wall = time.monotonic() - t
        with open(pidfile) as f:
            pid = int(f.read().strip())
        procs.add(pid)
        r = self.stats(images)["restore"]
        total = r.get("total_us", 0) / 1e3
        wait = r.get("pid_wait_us", 0) / 1e3
        return (
            {
                "wall_ms": wall * 1e3,
                "total_ms": total,
                "pid_wait_ms": wait,
                "excl_wait_ms": total - wait,
                "mem_ms": r.get("memrestore_us", 0) / 1e3,
                "fork_ms": r.get("fork_us", 0) / 1e3,
                "bytes": r.get("pages_restored", 0) * 4096,
            },
            pid,
            p,
        )

    def stats(self, images):
        out = subprocess.run(
            [self.bin, "show", os.path.join(images, "stats.img")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return json.loads(out)


class Criu:
    """criu through its own CLI; times are wall times (no stats decoding)."""

    name = "criu"

    def __init__(self, binary):
        self.bin = binary

    def dump(self, pid, images, logdir):
        os.makedirs(images, exist_ok=True)
        t = time.monotonic()
        rc = subprocess.run(
            [self.bin, "dump", "-t", str(pid), "-D", images, "-o", "dump.log"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
        ).returncode
        wall = time.monotonic() - t
        if rc != 0:
            raise Failed("criu dump: " + last_line(os.path.join(images, "dump.log")))
        return {"wall_ms": wall * 1e3, "total_ms": wall * 1e3, "bytes": 0}

    def restore(self, images, logdir, procs):
        pidfile = os.path.join(logdir, "criu-restore.pid")
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        t = time.monotonic()
        rc = subprocess.run(
            [self.bin, "restore", "-d", "-D", images, "-o", "restore.log",
             "--pidfile", pidfile],
            stdin=subprocess.DEVNULL,
            capture_output=True,
        ).returncode
        wall = time.monotonic() - t
        if rc != 0:
            raise Failed("criu restore: " + last_line(os.path.join(images, "restore.log")))
        with open(pidfile) as f:
            pid = int(f.read().strip())
        procs.add(pid)
        ms = wall * 1e3
        return ({"wall_ms": ms, "total_ms": ms, "excl_wait_ms": ms, "bytes": 0}, pid, None)


def criu_usable():
    """(binary, None) when `criu check` passes, else (None, why)."""
    binary = shutil.which("criu")
    if not binary:
        return None, "criu: not installed (apt-get install criu), no comparison"
    r = subprocess.run([binary, "check"], capture_output=True, text=True)
    if r.returncode == 0:
        return binary, None
    # The first error that is not criu's own "a helper exited" line says why.
    lines = [ln.strip() for ln in (r.stdout + r.stderr).splitlines()
             if "Error" in ln and "exited, status" not in ln]
    ver = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    ver = ver.split()[1] if len(ver.split()) > 1 else "?"
    why = lines[0] if lines else (r.stdout + r.stderr).strip()[-200:]
    return None, f"criu {ver}: `criu check` fails on this kernel ({os.uname().release}): {why}"


# --- one cycle -----------------------------------------------------------


def finish_restored(tool, pid, popen, procs):
    """Checks the restored task is alive, then SIGTERMs it and takes its verdict."""
    if not alive(pid):
        raise Failed(f"restored pid {pid} is not alive")
    if popen is None:  # detached (criu): no exit status to take
        procs.kill(pid)
        return True
    os.kill(pid, signal.SIGTERM)
    try:
        rc = popen.wait(EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        procs.kill(pid)
        popen.wait()
        raise Failed(f"restored pid {pid} did not exit on SIGTERM") from None
    procs.pids.discard(pid)
    if rc != 0:
        raise Failed(f"restored {tool.name} task failed its self-check (status {rc})")
    return True


def cycle(tool, wl_argv, where, workdir, procs, cold, record):
    """start → dump into `where` → restore (dropping caches first if `cold`) → verify.

    record(what, result) gets the dump's result, then the restore's, as soon as
    each is known, so a failing restore still leaves the dump's numbers."""
    logdir = tempfile.mkdtemp(dir=workdir, prefix=f"{tool.name}-")
    images = os.path.join(where, os.path.basename(logdir))
    p = start_workload(wl_argv, os.path.join(logdir, "out"), procs)
    try:
        dump = tool.dump(p.pid, images, logdir)
    except Failed:
        procs.kill(p.pid)
        p.wait()
        raise
    p.wait()  # killed by the dump: reap it so its PID frees up
    procs.pids.discard(p.pid)
    dump["image_bytes"] = dir_size(images)
    if cold:
        # The dump leaves its pages in the page cache; the sync makes them durable,
        # which is what the disk-write floor (write + fsync) measures.
        t = time.monotonic()
        os.sync()
        dump["durable_ms"] = dump["total_ms"] + (time.monotonic() - t) * 1e3
        drop_caches()
    record("dump", dump)
    try:
        rest, pid, popen = tool.restore(images, logdir, procs)
        finish_restored(tool, pid, popen, procs)
    finally:
        shutil.rmtree(images, ignore_errors=True)
    record("restore", rest)


# --- floors --------------------------------------------------------------


def floors_run(args):
    out = subprocess.run([os.path.join(BIN, "floors")] + args,
                         capture_output=True, text=True, check=True).stdout
    nbytes, secs = out.split()
    return int(nbytes) / MIB / float(secs)


def measure_floors(tmpfs, diskdir, runs):
    """MiB/s medians of each floor; also the min/max."""
    res = {k: [] for k in ("memcpy", "fresh_page", "fresh_page_big", "disk_write", "disk_read")}
    for _ in range(runs):
        res["memcpy"].append(floors_run(["memcpy", "1024"]))
        f = os.path.join(tmpfs, "floor.dat")
        res["fresh_page"].append(floors_run(["write", f, "1024"]))
        os.unlink(f)
        # On a VM whose memory the host backs lazily, pages beyond a small hot pool
        # come much slower: the rate of 2 GiB more while 2 GiB are held.
        g = os.path.join(tmpfs, "floor-held.dat")
        floors_run(["write", g, "2048"])
        res["fresh_page_big"].append(floors_run(["write", f, "2048"]))
        os.unlink(f)
        os.unlink(g)
        f = os.path.join(diskdir, "floor.dat")
        res["disk_write"].append(floors_run(["write", f, "1024", "sync"]))
        drop_caches()
        res["disk_read"].append(floors_run(["read", f]))
        os.unlink(f)
    return {k: summarize(v) for k, v in res.items()}


# --- reporting -----------------------------------------------------------


def summarize(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def fmt_ms(s):
    if s is None:
        return "-"
    return f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})"


def phase_summary(runs):
    """Summaries of one phase's list of per-run dicts."""
    out = {}
    for key in ("frozen_ms", "total_ms", "excl_wait_ms", "durable_ms", "pid_wait_ms",
                "mem_ms", "fork_ms", "wall_ms"):
        vals = [r[key] for r in runs if key in r]
        if vals:
            out[key] = summarize(vals)
    return out


def throughput(phase, summ, nbytes, floors):
    """(MiB/s, ratio to floor) from the median time of the phase."""
    key = {"restore-hot": "excl_wait_ms", "restore-cold": "excl_wait_ms",
           "dump-disk": "durable_ms"}.get(phase, "total_ms")
    if not nbytes or key not in summ or summ[key]["median"] <= 0:
        return None, None
    rate = nbytes / MIB / (summ[key]["median"] / 1e3)
    return rate, rate / floors[PHASE_FLOOR[phase]]["median"]


def print_table(results, floors, criu_note):
    print()
    print("floors of this machine (MiB/s, median of runs, min-max):")
    names = {
        "memcpy": "memcpy 1 GiB (faulted in)",
        "fresh_page": "fresh pages (1 GiB write(2) to tmpfs)",
        "fresh_page_big": "fresh pages, 2 GiB more while 2 GiB held",
        "disk_write": "disk write + fsync (/var/tmp)",
        "disk_read": "disk read after drop_caches",
    }
    for k, label in names.items():
        s = floors[k]
        print(f"  {label:40s} {s['median']:8.0f}  ({s['min']:.0f}-{s['max']:.0f})")
    print()
    print("ccr: times in ms from its stats.img, median (min-max) of the runs. 'excl.wait|+sync':")
    print("restore time without the wait for the dumped PID to be freed; for dump-disk, the")
    print("dump plus the sync that makes its image durable. 'memory': memdump/memrestore.")
    print("MiB/s and x floor (its floor: dump-tmpfs, restore-hot: fresh pages; dump-disk:")
    print("disk write; restore-cold: disk read) from the medians of total, excl.wait|+sync;")
    print("xbig: the same throughput against the 'fresh pages, 2 GiB more' floor.")
    hdr = (f"{'workload':11s} {'image':>9s} {'phase':12s} {'frozen':>18s} {'total':>20s}"
           f" {'excl.wait|+sync':>20s} {'memory':>18s} {'MiB/s':>7s} {'xfloor':>6s} {'xbig':>5s}"
           f" {'ok':>3s}")
    print(hdr)
    print("-" * len(hdr))
    for name, r in results.items():
        if "error" in r:
            print(f"{name:11s} {'':>9s} {'all':12s} {r['error']}")
            continue
        img = r.get("image_bytes")
        img_s = f"{img / MIB:.1f}M" if img else "-"
        said = False
        for i, phase in enumerate(PHASES):
            ph = r["phases"].get(phase)
            if ph is None:
                if r.get("partial_error") and not said:
                    print(f"{'':11s} {'':>9s} {phase:12s} {r['partial_error']}")
                    said = True
                continue
            label = img_s if i == 0 else ""
            if "skipped" in ph:
                print(f"{name if i == 0 else '':11s} {label:>9s} {phase:12s} {ph['skipped']}")
                continue
            s = ph["summary"]
            rate, ratio, big = ph.get("mib_s"), ph.get("x_floor"), ph.get("x_floor_big")
            print(f"{name if i == 0 else '':11s} {label:>9s} {phase:12s}"
                  f" {fmt_ms(s.get('frozen_ms')):>18s} {fmt_ms(s.get('total_ms')):>20s}"
                  f" {fmt_ms(s.get('excl_wait_ms') or s.get('durable_ms')):>20s} {fmt_ms(s.get('mem_ms')):>18s}"
                  f" {f'{rate:.0f}' if rate else '-':>7s}"
                  f" {f'{ratio:.2f}' if ratio else '-':>6s}"
                  f" {f'{big:.2f}' if big else '-':>5s} {ph['ok']:>3s}")
    print()
    if criu_note:
        print(criu_note)
    else:
        print("ccr/criu (wall time ratios, median; < 1 means ccr is faster):")
        for name, r in results.items():
            for phase, ratio in sorted(r.get("vs_criu", {}).items()):
                print(f"  {name:11s} {phase:12s} {ratio}")


def median_of(results, name, phase, key):
    try:
        return results[name]["phases"][phase]["summary"][key]["median"]
    except KeyError:
        return None


def targets(results):
    """[(text, met or None for n/a, detail)]"""
    out = []

    def why_na(name):
        r = results.get(name)
        if r is None:
            return "not run"
        return r.get("error") or r.get("partial_error") or "no data"

    for phase, label in (("dump-tmpfs", "dump"), ("restore-hot", "restore")):
        ph = results.get("mem-2G", {}).get("phases", {}).get(phase, {})
        ratio = ph.get("x_floor")
        t = f"2 GiB {label} throughput >= 0.8 x fresh-page floor"
        big = ph.get("x_floor_big")
        out.append((t, None, why_na("mem-2G")) if ratio is None
                   else (t, ratio >= 0.8, f"{ratio:.2f} x floor"
                         + (f" ({big:.2f} x the 2-GiB-more floor)" if big else "")))
    for name, limit in (("tiny", 10.0), ("tree-50", 70.0)):
        for phase, key, label in (("dump-tmpfs", "total_ms", "dump"),
                                  ("restore-hot", "excl_wait_ms", "restore")):
            v = median_of(results, name, phase, key)
            t = f"{name} {label} <= {limit:.0f} ms"
            out.append((t, None, why_na(name)) if v is None
                       else (t, v <= limit, f"{v:.1f} ms"))
    for phase, key, label in (("dump-tmpfs", "total_ms", "dump"),
                              ("restore-hot", "excl_wait_ms", "restore")):
        a = median_of(results, "tree-50", phase, key)
        b = median_of(results, "tree-200", phase, key)
        t = f"tree-200 {label} scales linearly (<= 4 x tree-50)"
        if a is None or b is None:
            out.append((t, None, why_na("tree-200" if b is None else "tree-50")))
        else:
            out.append((t, b <= 4 * a, f"{b / a:.2f} x"))
    return out


# --- main ----------------------------------------------------------------


def run_workload(name, argv, tools, dirs, runs, procs, floors, skip_disk):
    """All runs of one workload, alternating the tools; returns its result dict."""
    per = {t.name: {p: [] for p in PHASES} for t in tools}
    errors = {t.name: None for t in tools}
    image = []
    for i in range(runs):
        for tool in tools:
            if errors[tool.name]:
                continue
            def record(phases, what, res, tool=tool):
                per[tool.name][phases[what]].append(res)
                if tool.name == "ccr" and what == "dump" and "image_bytes" in res:
                    image.append(res["image_bytes"])

            try:
                log(f"  {name} run {i + 1}/{runs}: {tool.name} tmpfs")
                hot = {"dump": "dump-tmpfs", "restore": "restore-hot"}
                cycle(tool, argv, dirs["tmpfs"], dirs["work"], procs, False,
                      lambda w, r: record(hot, w, r))
                if skip_disk:
                    continue
                log(f"  {name} run {i + 1}/{runs}: {tool.name} disk")
                cold = {"dump": "dump-disk", "restore": "restore-cold"}
                cycle(tool, argv, dirs["disk"], dirs["work"], procs, True,
                      lambda w, r: record(cold, w, r))
            except Failed as e:
                kind = "unsupported" if e.unsupported else "failed"
                errors[tool.name] = f"{kind}: {e}"
                log(f"  {name}: {tool.name}: {kind}: {e}")
    result = {"argv": argv}
    if errors["ccr"] and not image:
        result["error"] = errors["ccr"]
    else:
        if errors["ccr"]:
            result["partial_error"] = errors["ccr"]
        result["image_bytes"] = statistics.median(image) if image else None
        result["phases"] = {}
        for phase in PHASES:
            rs = per["ccr"][phase]
            if not rs:
                if phase.endswith(("disk", "cold")) and skip_disk:
                    result["phases"][phase] = {"skipped": skip_disk}
                continue
            summ = phase_summary(rs)
            nbytes = statistics.median(r["bytes"] for r in rs)
            rate, ratio = throughput(phase, summ, nbytes, floors)
            big = None
            if rate and PHASE_FLOOR[phase] == "fresh_page":
                big = rate / floors["fresh_page_big"]["median"]
            result["phases"][phase] = {
                "runs": rs, "summary": summ, "mib_s": rate, "x_floor": ratio,
                "x_floor_big": big,
                "ok": f"{len(rs)}/{runs}",
            }
    if len(tools) > 1:
        result["criu"] = {"error": errors["criu"], "runs": per["criu"]}
        vs = {}
        for phase in PHASES:
            c, k = per["criu"][phase], per["ccr"][phase]
            if c and k:
                vs[phase] = round(statistics.median(x["wall_ms"] for x in k)
                                  / statistics.median(x["wall_ms"] for x in c), 3)
            elif errors["criu"] or errors["ccr"]:
                vs[phase] = errors["criu"] or errors["ccr"]
        result["vs_criu"] = vs
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--json", help="where to write the results (default under /var/tmp)")
    ap.add_argument("--ccr", default=os.path.join(ROOT, "build", "bin", "ccr"))
    ap.add_argument("--skip-2g", action="store_true", help="leave out the 2 GiB workload")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: must run as root")

    json_path = args.json or time.strftime("/var/tmp/ccr-bench-%Y%m%d-%H%M%S.json")
    tmpfs = f"/tmp/ccr-bench-tmpfs-{os.getpid()}"
    work = tempfile.mkdtemp(dir="/var/tmp", prefix="ccr-bench-")
    disk = os.path.join(work, "images")
    os.makedirs(disk)
    os.makedirs(tmpfs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8g,mode=0700", "ccr-bench", tmpfs],
                   check=True)
    procs = Procs()
    dirs = {"tmpfs": tmpfs, "disk": disk, "work": work}

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        criu_bin, criu_note = criu_usable()
        tools = [Ccr(args.ccr)] + ([Criu(criu_bin)] if criu_bin else [])
        log(criu_note or f"criu: {criu_bin} passes `criu check`, comparing")
        log("measuring floors...")
        floors = measure_floors(tmpfs, disk, args.runs)
        st = os.statvfs(disk)
        free_gib = st.f_bavail * st.f_frsize / (1 << 30)
        results = {}
        only = set(args.only.split(",")) if args.only else None
        for name, argv in WORKLOADS:
            if only and name not in only:
                continue
            if name == "mem-2G" and args.skip_2g:
                continue
            skip_disk = None
            if name == "mem-2G" and free_gib < 10:
                skip_disk = f"skipped: {free_gib:.1f} GiB free under /var/tmp (< 10 GiB)"
            log(f"{name}:")
            results[name] = run_workload(name, argv, tools, dirs, args.runs, procs,
                                         floors, skip_disk)
        print_table(results, floors, criu_note)
        tg = targets(results)
        print()
        print("targets:")
        for text, met, detail in tg:
            verdict = "n/a" if met is None else ("met" if met else "NOT met")
            print(f"  {verdict:8s} {text}: {detail}")
        doc = {
            "kernel": os.uname().release,
            "runs": args.runs,
            "floors_mib_s": floors,
            "criu": criu_note or criu_bin,
            "workloads": results,
            "targets": [{"target": t, "met": m, "detail": d} for t, m, d in tg],
            "elapsed_s": time.monotonic() - started,
        }
        with open(json_path, "w") as f:
            json.dump(doc, f, indent=1)
        print()
        print(f"JSON: {json_path}  ({time.monotonic() - started:.0f} s)")
    finally:
        procs.kill_all()
        subprocess.run(["umount", tmpfs], check=False)
        os.rmdir(tmpfs)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
