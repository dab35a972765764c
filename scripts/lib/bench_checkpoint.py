"""The measuring half of scripts/bench-checkpoint (see there)."""

import argparse
import csv
import json
import os
import re
import shlex
import socket
import statistics
import subprocess
import sys
import threading
import time

from benchdoc import host_description, update_section

VMM = "build-bench/vmm"
GUEST = "build-bench/tests/guests/memtest"
CSV_PATH = "docs/data/bench-checkpoint.csv"
# Guest RAM (MiB) -> MiB memtest fills. The fill must lie in one e820 RAM
# range below 4 GiB (vmm: [1 MiB, 3 GiB), then 4 GiB+; QEMU's 32-bit boot
# maps only the low 4 GiB), so 4 GiB guests get ~3 GiB of data.
FILL = {1024: 921, 4096: 3040}
HB_MS = 10
FILL_TIMEOUT = 300
STEP_TIMEOUT = 300

QEMU = ["qemu-system-x86_64", "-M", "microvm", "-cpu", "host,-arch-capabilities",
        "-enable-kvm", "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio"]

FIELDS = ["ram_mib", "fill_mib", "peer", "run", "op", "seconds", "bytes", "MBps", "pause_ms",
          "reported_s", "pages", "zero_pages", "first_line"]

CKPT_RE = re.compile(r"checkpoint: (.*): ([\d.]+) MiB in ([\d.]+) s \(([\d.]+) MB/s\), "
                     r"guest paused ([\d.]+) ms")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def guest_cmdline(fill):
    return "mem.mib=%d mem.secs=0 mem.idle=1 mem.hb_ms=%d" % (fill, HB_MS)


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def rm(*paths):
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


class Console:
    """The guest console on a pipe: a thread reads it and timestamps every line."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []     # (perf_counter, text)
        self.eof = False
        self.cv = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        fd, buf = self.proc.stdout.fileno(), b""
        while True:
            chunk = os.read(fd, 65536)
            t = time.perf_counter()
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            if done:
                with self.cv:
                    self.lines += [(t, l.decode(errors="replace")) for l in done]
                    self.cv.notify_all()
        with self.cv:
            self.eof = True
            self.cv.notify_all()

    def wait(self, pred, what, timeout):
        """(time, line) of the first line matching pred."""
        deadline = time.perf_counter() + timeout
        i = 0
        with self.cv:
            while True:
                for t, line in self.lines[i:]:
                    if "PANIC" in line:
                        raise RuntimeError("guest: %s" % line)
                    if pred(line):
                        return t, line
                i = len(self.lines)
                left = deadline - time.perf_counter()
                if self.eof or left <= 0:
                    raise RuntimeError("no %s on the console (%s); last lines:\n%s" % (
                        what, "exited" if self.eof else "timeout",
                        "\n".join(l for _, l in self.lines[-5:])))
                self.cv.wait(left)


def start(cmd, errlog):
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=open(errlog, "w"))


def finish(p, want, errlog, what):
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise RuntimeError("%s did not exit" % what)
    if rc != want:
        raise RuntimeError("%s exited %d:\n%s" % (what, rc, open(errlog).read()[-2000:]))


# ----------------------------------------------------------------- QMP ---

class Qmp:
    def __init__(self, path, timeout=30):
        deadline = time.perf_counter() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.perf_counter() > deadline:
                    raise RuntimeError("QMP socket %s: no answer" % path)
                time.sleep(0.002)
        self.f = self.s.makefile("rw")
        self.f.readline()   # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.f.write(json.dumps(req) + "\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                if name == "quit":
                    return {}
                raise RuntimeError("QMP: connection closed during %s" % name)
            r = json.loads(line)
            if "event" in r:
                continue
            if "error" in r:
                raise RuntimeError("QMP %s: %s" % (name, r["error"]))
            return r["return"]

    def close(self):
        self.s.close()


# ----------------------------------------------------------------- vmm ---

def vmm_run(d, ram, fill, run):
    snap, sock, err = d + "/vmm.snap", d + "/vmm.sock", d + "/vmm.err"
    rm(snap)
    p = start([VMM, "run", "--kernel", GUEST, "--mem", "%dM" % ram, "--cpus", "1",
               "--api-sock", sock, "--console", "stdio", "--cmdline", guest_cmdline(fill)], err)
    con = Console(p)
    con.wait(lambda l: l.startswith("MEMTEST filled"), "'MEMTEST filled'", FILL_TIMEOUT)
    con.wait(lambda l: l.startswith("HB "), "heartbeat", 30)
    t0 = time.perf_counter()
    c = subprocess.run([VMM, "checkpoint", "--api-sock", sock, "--out", os.path.abspath(snap),
                        "--then", "exit"], capture_output=True, text=True, timeout=STEP_TIMEOUT)
    t1 = time.perf_counter()
    if c.returncode:
        p.kill()
        raise RuntimeError("vmm checkpoint exited %d: %s" % (c.returncode, c.stderr))
    m = CKPT_RE.search(c.stdout)
    if not m:
        raise RuntimeError("vmm checkpoint: unexpected output %r" % c.stdout)
    finish(p, 0, err, "vmm run")
    size = os.path.getsize(snap)
    rows = [{"op": "checkpoint", "seconds": t1 - t0, "bytes": size,
             "pause_ms": float(m.group(5)), "reported_s": float(m.group(3))}]
    # Restores, right after the checkpoint (warm) and after drop_caches (cold).
    for op in ("restore-warm", "restore-cold"):
        if op == "restore-cold":
            drop_caches()
        rsock = d + "/vmm-r.sock"
        t0 = time.perf_counter()
        p = start([VMM, "restore", "--from", snap, "--console", "stdio", "--api-sock", rsock], err)
        con = Console(p)
        t1, line = con.wait(lambda l: True, "line after restore", STEP_TIMEOUT)
        subprocess.run([VMM, "stop", "--api-sock", rsock], check=True, capture_output=True,
                       timeout=60)
        finish(p, 0, err, "vmm restore")
        rows.append({"op": op, "seconds": t1 - t0, "bytes": size, "first_line": line[:60]})
    # Integrity and page count (reads the whole file: after the timed restores).
    ins = json.loads(subprocess.run([VMM, "inspect", "--json", snap], capture_output=True,
                                    text=True, check=True, timeout=STEP_TIMEOUT).stdout)
    if ins.get("checksums") != "ok":
        raise RuntimeError("vmm inspect: %s" % ins)
    pages = ins["ram_payload_bytes"] // 4096
    rows[0].update(pages=pages, zero_pages=ram * 256 - pages)
    rm(snap)
    return rows


# ---------------------------------------------------------------- QEMU ---

def qemu_cmd(d, ram, fill):
    return QEMU + ["-m", "%dM" % ram, "-qmp", "unix:%s,server=on,wait=off" % (d + "/qmp.sock"),
                   "-kernel", GUEST, "-append", guest_cmdline(fill)]


def qemu_run(d, ram, fill, run):
    snap, done, err = d + "/qemu.snap", d + "/qemu.snap.done", d + "/qemu.err"
    rm(snap, done)
    p = start(qemu_cmd(d, ram, fill), err)
    con = Console(p)
    con.wait(lambda l: l.startswith("MEMTEST filled"), "'MEMTEST filled'", FILL_TIMEOUT)
    con.wait(lambda l: l.startswith("HB "), "heartbeat", 30)
    q = Qmp(d + "/qmp.sock")
    q.cmd("migrate-set-capabilities", capabilities=[{"capability": "multifd", "state": False}])
    q.cmd("migrate-set-parameters", **{"max-bandwidth": 100 * 10**9})  # bytes/s; default 128 MiB/s
    # The marker file tells when cat has written its last byte, not only
    # when QEMU has handed it to the pipe.
    uri = "exec:cat > %s && touch %s" % (shlex.quote(snap), shlex.quote(done))
    t0 = time.perf_counter()
    q.cmd("stop")
    q.cmd("migrate", uri=uri)
    deadline = t0 + STEP_TIMEOUT
    while True:
        info = q.cmd("query-migrate")
        if info.get("status") == "completed" and os.path.exists(done):
            break
        if info.get("status") in ("failed", "cancelled") or time.perf_counter() > deadline:
            raise RuntimeError("QEMU migrate: %s" % info)
        time.sleep(0.001)
    t1 = time.perf_counter()
    # QEMU does not sync: what vmm's commit does (fsync file, then directory).
    fd = os.open(snap, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
    t2 = time.perf_counter()
    q.cmd("quit")
    q.close()
    finish(p, 0, err, "QEMU")
    size = os.path.getsize(snap)
    ram_info = info.get("ram", {})
    rows = [{"op": "checkpoint", "seconds": t1 - t0, "bytes": size, "pause_ms": (t1 - t0) * 1000,
             "reported_s": info.get("total-time", 0) / 1000, "pages": ram_info.get("normal"),
             "zero_pages": ram_info.get("duplicate")},
            {"op": "checkpoint+sync", "seconds": t2 - t0, "bytes": size,
             "pause_ms": (t1 - t0) * 1000}]
    for op in ("restore-warm", "restore-cold"):
        if op == "restore-cold":
            drop_caches()
        t0 = time.perf_counter()
        p = start(qemu_cmd(d, ram, fill) + ["-incoming", "exec:cat %s" % shlex.quote(snap)], err)
        con = Console(p)
        q = Qmp(d + "/qmp.sock")
        deadline = t0 + STEP_TIMEOUT
        while True:
            st = q.cmd("query-status")["status"]
            if st != "inmigrate":
                break
            if time.perf_counter() > deadline:
                raise RuntimeError("QEMU -incoming: still inmigrate")
            time.sleep(0.001)
        if st != "running":
            q.cmd("cont")
        t1, line = con.wait(lambda l: True, "line after restore", STEP_TIMEOUT)
        q.cmd("quit")
        q.close()
        finish(p, 0, err, "QEMU -incoming")
        rows.append({"op": op, "seconds": t1 - t0, "bytes": size, "first_line": line[:60]})
    rm(snap, done)
    return rows


# ----------------------------------------------------------------- fio ---

def fio_one(path, rw, size):
    p = subprocess.run(["fio", "--name=ckpt", "--filename=" + path, "--rw=" + rw, "--bs=4M",
                        "--size=%d" % size, "--ioengine=io_uring", "--direct=1", "--iodepth=8",
                        "--end_fsync=1", "--output-format=json"],
                       capture_output=True, text=True, timeout=STEP_TIMEOUT)
    if p.returncode:
        raise RuntimeError("fio %s: %s" % (rw, p.stderr))
    job = json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]
    r = job[rw]
    return {"op": rw, "seconds": r["runtime"] / 1000, "bytes": r["io_bytes"]}


def fio_run(d, ram, fill, run):
    path = d + "/fio.dat"
    rm(path)    # a new file every run, as vmm's snapshot is
    size = ((fill + 2) << 20) + (4 << 20) - 1 & ~((4 << 20) - 1)
    rows = [fio_one(path, "write", size)]
    drop_caches()
    rows.append(fio_one(path, "read", size))
    rm(path)
    return rows


# -------------------------------------------------------------- report ---

def rotate(peers, k):
    k %= len(peers)
    return peers[k:] + peers[:k]


def med(rows, ram, peer, op, key="seconds"):
    vals = [r[key] for r in rows if r["ram_mib"] == ram and r["peer"] == peer and r["op"] == op
            and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def mbps(rows, ram, peer, op):
    vals = [r["MBps"] for r in rows if r["ram_mib"] == ram and r["peer"] == peer and r["op"] == op]
    return statistics.median(vals) if vals else None


def f(x, fmt="%.0f"):
    return fmt % x if x is not None else "—"


def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "—"


def tables(rows, sizes):
    ck = ["| guest RAM (filled) | vmm file MiB | vmm s | vmm MB/s | vmm pause ms | fio write MB/s "
          "| QEMU file MiB | QEMU s (no sync) | QEMU MB/s (no sync) | QEMU s (+sync) "
          "| QEMU MB/s (+sync) | vmm/fio | vmm/QEMU (no sync) | vmm/QEMU (+sync) | target |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rs = ["| guest RAM (filled) | vmm warm s | vmm cold s | vmm MB/s (cold) | fio read MB/s "
          "| QEMU warm s | QEMU cold s | vmm/fio | QEMU/vmm warm | QEMU/vmm cold | target |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    pages = []
    for ram in sizes:
        fill = FILL[ram]
        label = "%d GiB (%d MiB)" % (ram >> 10, fill)
        vb, qb = med(rows, ram, "vmm", "checkpoint", "bytes"), med(rows, ram, "qemu", "checkpoint", "bytes")
        vs, vm = med(rows, ram, "vmm", "checkpoint"), mbps(rows, ram, "vmm", "checkpoint")
        fw, fr = mbps(rows, ram, "fio", "write"), mbps(rows, ram, "fio", "read")
        qs, qm = med(rows, ram, "qemu", "checkpoint"), mbps(rows, ram, "qemu", "checkpoint")
        qss, qsm = med(rows, ram, "qemu", "checkpoint+sync"), mbps(rows, ram, "qemu", "checkpoint+sync")
        met = vm and fw and qm and vm >= 0.9 * fw and vm >= 2.5 * qm
        ck.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, f(vb and vb / 2**20), f(vs, "%.2f"), f(vm), f(med(rows, ram, "vmm", "checkpoint", "pause_ms")),
            f(fw), f(qb and qb / 2**20), f(qs, "%.2f"), f(qm), f(qss, "%.2f"), f(qsm),
            ratio(vm, fw), ratio(vm, qm), ratio(vm, qsm),
            "≥ 0.9× fio, ≥ 2.5× QEMU (no sync): %s" % ("met" if met else "**missed**")))
        vw, vc = med(rows, ram, "vmm", "restore-warm"), med(rows, ram, "vmm", "restore-cold")
        vcm = mbps(rows, ram, "vmm", "restore-cold")
        qw, qc = med(rows, ram, "qemu", "restore-warm"), med(rows, ram, "qemu", "restore-cold")
        met = vcm and fr and vw and vc and qw and qc and vcm >= 0.9 * fr and qw >= 2 * vw and qc >= 2 * vc
        rs.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, f(vw, "%.2f"), f(vc, "%.2f"), f(vcm), f(fr), f(qw, "%.2f"), f(qc, "%.2f"),
            ratio(vcm, fr), ratio(qw, vw), ratio(qc, vc),
            "≥ 0.9× fio, ≥ 2× faster than QEMU warm and cold: %s" % ("met" if met else "**missed**")))
        pages.append("%d GiB: vmm stored %s pages (%s zero pages skipped), QEMU sent %s pages "
                     "(%s zero pages as flags)" % (
                         ram >> 10, f(med(rows, ram, "vmm", "checkpoint", "pages")),
                         f(med(rows, ram, "vmm", "checkpoint", "zero_pages")),
                         f(med(rows, ram, "qemu", "checkpoint", "pages")),
                         f(med(rows, ram, "qemu", "checkpoint", "zero_pages"))))
    return ("Checkpoint (MB/s = file bytes / wall time):\n\n" + "\n".join(ck) +
            "\n\nRestore to a running guest (s = process start to the guest's first console "
            "line; MB/s = file bytes / s):\n\n" + "\n".join(rs) + "\n\nPages written: " +
            "; ".join(pages) + ".\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 run, 1 GiB only: a smoke test")
    ap.add_argument("--sizes", default="1024,4096", help="guest RAM sizes in MiB (1024, 4096)")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--dir", default="build-bench/ckpt")
    args = ap.parse_args()
    runs = 1 if args.quick else args.runs
    sizes = [1024] if args.quick else [int(s) for s in args.sizes.split(",")]
    for s in sizes:
        if s not in FILL:
            sys.exit("--sizes: %d: only %s" % (s, ",".join(map(str, FILL))))
    cmdline = "./scripts/bench-checkpoint" + (" --quick" if args.quick else " --runs %d" % runs)
    if not args.quick and args.sizes != "1024,4096":
        cmdline += " --sizes " + args.sizes

    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    t_start = time.time()
    rows, skipped = [], []
    try:
        for ram in list(sizes):
            fill = FILL[ram]
            st = os.statvfs(d)
            free = st.f_bavail * st.f_frsize
            need = int(fill * 1.1 + 1024) << 20   # one snapshot at a time, plus slack
            if free < need:
                msg = ("%d GiB guest SKIPPED: %s has %d MiB free, needs %d MiB" % (
                    ram >> 10, d, free >> 20, need >> 20))
                log("!" * 70 + "\n!! " + msg + "\n" + "!" * 70)
                skipped.append(msg)
                sizes.remove(ram)
                continue
            for run in range(runs):
                for peer in rotate(("fio", "vmm", "qemu"), run):
                    fn = {"fio": fio_run, "vmm": vmm_run, "qemu": qemu_run}[peer]
                    for r in fn(d, ram, fill, run):
                        r.update(ram_mib=ram, fill_mib=fill, peer=peer, run=run)
                        r["MBps"] = round(r["bytes"] / r["seconds"] / 1e6, 1)
                        r["seconds"] = round(r["seconds"], 4)
                        rows.append(r)
                        log("%d MiB run %d %-5s %-16s %8.3f s %8.1f MB/s%s" % (
                            ram, run, peer, r["op"], r["seconds"], r["MBps"],
                            "  pause %.1f ms" % r["pause_ms"] if r.get("pause_ms") else ""))
    finally:
        for name in ("vmm.snap", "qemu.snap", "qemu.snap.done", "fio.dat", "vmm.sock",
                     "vmm-r.sock", "qmp.sock", "vmm.err", "qemu.err"):
            rm(os.path.join(d, name))
        try:
            os.rmdir(d)
        except OSError:
            pass

    os.makedirs(os.path.dirname(CSV_PATH), exist_ok=True)
    with open(CSV_PATH, "w", newline="") as fcsv:
        w = csv.DictWriter(fcsv, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)

    body = tables(rows, sizes)
    if skipped:
        body += "\n**" + "; ".join(skipped) + ".**\n"
    note = ("\nMeasured %s on %s by `%s` (%.0f s). Medians of %d run%s, each with a fresh guest: "
            "`memtest` (1 vCPU, `mem.idle=1 mem.hb_ms=%d`) fills the given MiB with non-zero "
            "pseudo-random data from ring 3, then idles printing a heartbeat. vmm: `vmm checkpoint "
            "--then exit` timed from its start to its exit, **durable** (file and directory "
            "fsynced before it reports); pause = its own report. QEMU 7.2 `-M microvm`: `stop` + "
            "`migrate exec:cat > FILE` with `max-bandwidth` 100 GB/s and multifd off, timed until "
            "`query-migrate` says completed and `cat` has exited; that figure (\"no sync\") leaves "
            "the data in the page cache, **not durable**; \"+sync\" adds fsync of the file and its "
            "directory, as vmm does. QEMU's guest is stopped for the whole migration (its pause). "
            "fio 3: one job, `--rw=write|read --bs=4M --ioengine=io_uring --direct=1 --iodepth=8 "
            "--end_fsync=1` on a new file of the same size in the same directory (ext4), caches "
            "dropped before the read. Restores: vmm `restore --from FILE`, QEMU `-incoming "
            "exec:cat FILE` then `cont` over QMP; warm = right after the checkpoint, cold = after "
            "`sync; echo 3 > /proc/sys/vm/drop_caches`; vmm reads with O_DIRECT, so the page cache "
            "does not help it. Raw runs: `%s`.\n" % (
                time.strftime("%Y-%m-%d"), host_description(), cmdline, time.time() - t_start,
                runs, "" if runs == 1 else "s", HB_MS, CSV_PATH))
    print(body + note)
    if not args.no_docs:
        update_section("bench-checkpoint", body + note)


if __name__ == "__main__":
    main()
