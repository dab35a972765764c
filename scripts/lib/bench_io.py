"""The measuring half of scripts/bench-io (see there)."""

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time

from benchdoc import host_description, update_section

VMM = "build-bench/vmm"
GUEST = "build-bench/tests/guests/iobench"
NETTOOL = "build-bench/bench-io-net"
MEM = "512M"
CSV_PATH = "docs/data/bench-io.csv"
NETNS = "vmmbench%d" % os.getpid()
TAP = "tapbench0"
RUN_TIMEOUT = 180

QEMU = ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-cpu", "host,-arch-capabilities",
        "-enable-kvm", "-m", MEM, "-nodefaults", "-no-user-config", "-nographic",
        "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-no-reboot",
        # Version-2 transports, listed on the command line (acpi=off) for the kit.
        "-global", "virtio-mmio.force-legacy=false", "-kernel", GUEST]

# name, guest mode, fio rw, bs, qd, timed (seconds, 0 = one pass over the span)
BLK_TESTS = [
    ("blk-seqread", "seqread", "read", 1 << 20, 16, 0),
    ("blk-seqwrite", "seqwrite", "write", 1 << 20, 16, 0),
    ("blk-randread", "randread", "randread", 4096, 32, 3),
    ("blk-randwrite", "randwrite", "randwrite", 4096, 32, 3),
]
NET_TESTS = [("net-tx", "tx"), ("net-rx", "rx")]
NET_SECS = 3
FRAME = 1514

FIELDS = ["test", "peer", "run", "bs", "qd", "ops", "bytes", "ns", "MBps", "IOPS",
          "frames", "Mbps", "host_frames", "host_bytes"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def parse_bench(out, kind):
    """The key=value pairs of the guest's 'BENCH <kind> ...' line."""
    for line in out.splitlines():
        if line.startswith("BENCH %s " % kind):
            return dict(tok.split("=", 1) for tok in line.split()[2:] if "=" in tok)
    raise RuntimeError("no 'BENCH %s' line in the guest output:\n%s" % (kind, out[-2000:]))


def run_guest(cmd, kind, netns=False):
    if netns:
        cmd = ["ip", "netns", "exec", NETNS] + cmd
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=RUN_TIMEOUT)
    # vmm exits 0 on the guest's i8042 reset; QEMU 1 through isa-debug-exit.
    want = 1 if "qemu-system-x86_64" in cmd else 0
    if p.returncode != want or "PANIC" in p.stdout:
        raise RuntimeError("%s failed (status %d):\n%s\n%s" % (
            " ".join(cmd), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return parse_bench(p.stdout, kind)


def vmm_cmd(cmdline, disk=None, tap=None):
    cmd = [VMM, "run", "--kernel", GUEST, "--mem", MEM, "--cpus", "1", "--console", "stdio"]
    if disk:
        cmd += ["--disk", disk]
    if tap:
        cmd += ["--net", "tap=" + tap]
    return cmd + ["--cmdline", cmdline]


def qemu_cmd(cmdline, disk=None, tap=None):
    cmd = list(QEMU)
    if disk:
        # Buffered (page cache) and io_uring, as vmm opens and serves its disk.
        cmd += ["-drive", "file=%s,format=raw,if=none,id=d0,cache=writeback,aio=io_uring" % disk,
                "-device", "virtio-blk-device,drive=d0"]
    if tap:
        # Userspace virtio-net (no vhost), like vmm.
        cmd += ["-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap,
                "-device", "virtio-net-device,netdev=n0"]
    return cmd + ["-append", cmdline]


def tsc_khz():
    """The TSC rate vmm puts in CPUID 0x40000010 (KVM_GET_TSC_KHZ). QEMU's
    -cpu host leaves that leaf out here, so its guest gets it on the command line."""
    p = subprocess.run(vmm_cmd("bench.blk=none"), capture_output=True, text=True, timeout=60)
    for line in p.stdout.splitlines():
        if line.startswith("IOBENCH start"):
            return int(dict(t.split("=", 1) for t in line.split()[2:] if "=" in t)["tsc_khz"])
    raise RuntimeError("iobench did not start under vmm:\n%s%s" % (p.stdout, p.stderr))


# ---------------------------------------------------------------- block ---

def make_image(path, mib):
    if os.path.exists(path) and os.path.getsize(path) == mib << 20:
        return
    log("creating %s: %d MiB of random data ..." % (path, mib))
    with open(path + ".tmp", "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
    os.rename(path + ".tmp", path)


def prepare_cache(path):
    """Same start for every peer: no dirty pages anywhere, the whole image in
    the page cache (read once)."""
    os.sync()
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def fio_run(img, rw, bs, qd, secs, span):
    cmd = ["fio", "--name=bench", "--filename=" + img, "--ioengine=io_uring", "--direct=0",
           "--invalidate=0", "--rw=" + rw, "--bs=%d" % bs, "--iodepth=%d" % qd,
           "--size=%d" % span, "--output-format=json"]
    if secs:
        cmd += ["--time_based", "--runtime=%d" % secs, "--norandommap", "--randrepeat=0"]
    if "write" in rw:
        cmd += ["--end_fsync=1"]   # the flush counts, as in the guest
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=True)
    job = json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]
    d = job["write" if "write" in rw else "read"]
    ns = d["runtime"] * 1000000    # ms; includes end_fsync
    return {"ops": d["total_ios"], "bytes": d["io_bytes"], "ns": ns}


def blk_results(test, peer, run, bs, qd, r):
    ns, nbytes, ops = int(r["ns"]), int(r["bytes"]), int(r["ops"])
    return {"test": test, "peer": peer, "run": run, "bs": bs, "qd": qd, "ops": ops,
            "bytes": nbytes, "ns": ns, "MBps": round(nbytes * 1000 / ns, 1),
            "IOPS": round(ops * 1e9 / ns, 1)}


def blk_run(img, span_mib, test, mode, rw, bs, qd, secs, peer, run, khz):
    prepare_cache(img)
    span = span_mib << 20
    if peer == "fio":
        return blk_results(test, peer, run, bs, qd, fio_run(img, rw, bs, qd, secs, span))
    cmdline = "bench.blk=%s bench.bs=%d bench.qd=%d bench.mib=%d bench.secs=%d bench.tsc_khz=%d" % (
        mode, bs, qd, span_mib, secs, khz)
    cmd = vmm_cmd(cmdline, disk=img) if peer == "vmm" else qemu_cmd(cmdline, disk=img)
    r = run_guest(cmd, "blk")
    if int(r["errors"]) or ("write" in mode and r["flush"] != "0"):
        raise RuntimeError("%s under %s: errors=%s flush=%s" % (test, peer, r["errors"], r["flush"]))
    return blk_results(test, peer, run, bs, qd, r)


# -------------------------------------------------------------- network ---

def netns_setup():
    sh(["ip", "netns", "add", NETNS])
    ns = ["ip", "netns", "exec", NETNS]
    sh(ns + ["ip", "tuntap", "add", TAP, "mode", "tap"])
    sh(ns + ["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % TAP])
    sh(ns + ["ip", "link", "set", TAP, "up"])


def netns_cleanup():
    subprocess.run(["ip", "netns", "del", NETNS], stderr=subprocess.DEVNULL)


def tap_stats():
    out = subprocess.run(["ip", "netns", "exec", NETNS, "sh", "-c",
                          "cd /sys/class/net/%s/statistics && cat rx_packets rx_bytes" % TAP],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def net_run(test, mode, peer, run, khz, secs):
    cmdline = "bench.net=%s bench.net.secs=%d bench.net.size=%d bench.tsc_khz=%d" % (
        mode, secs, FRAME, khz)
    cmd = vmm_cmd(cmdline, tap=TAP) if peer == "vmm" else qemu_cmd(cmdline, tap=TAP)
    host_frames = host_bytes = None
    if mode == "tx":
        f0, b0 = tap_stats()
        r = run_guest(cmd, "net", netns=True)
        f1, b1 = tap_stats()
        host_frames, host_bytes = f1 - f0, b1 - b0
        # Every frame the guest saw complete must have reached the tap.
        if host_frames < int(r["frames"]):
            raise RuntimeError("%s under %s: guest sent %s frames, the tap got %d" % (
                test, peer, r["frames"], host_frames))
    else:
        blaster = subprocess.Popen(["ip", "netns", "exec", NETNS, NETTOOL, "blast", TAP,
                                    str(FRAME)], stdout=subprocess.PIPE, text=True)
        try:
            r = run_guest(cmd, "net", netns=True)
        finally:
            blaster.send_signal(signal.SIGTERM)
            out = blaster.communicate(timeout=30)[0]
        sent = dict(t.split("=", 1) for t in out.split() if "=" in t)
        host_frames, host_bytes = int(sent.get("sent", 0)), int(sent.get("bytes", 0))
    ns, nbytes = int(r["ns"]), int(r["bytes"])
    return {"test": test, "peer": peer, "run": run, "frames": int(r["frames"]), "bytes": nbytes,
            "ns": ns, "Mbps": round(nbytes * 8000 / ns, 1),
            "IOPS": round(int(r["frames"]) * 1e9 / ns, 1),
            "host_frames": host_frames, "host_bytes": host_bytes}


# --------------------------------------------------------------- report ---

def rotate(peers, k):
    k %= len(peers)
    return peers[k:] + peers[:k]


def med(rows, test, peer, key):
    vals = [r[key] for r in rows if r["test"] == test and r["peer"] == peer]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "—"


def table(rows, tests):
    metric = {"blk-seqread": ("MBps", "MB/s"), "blk-seqwrite": ("MBps", "MB/s"),
              "blk-randread": ("IOPS", "IOPS"), "blk-randwrite": ("IOPS", "IOPS"),
              "net-tx": ("Mbps", "Mbit/s"), "net-rx": ("Mbps", "Mbit/s")}
    what = {"blk-seqread": "read 1 MiB, qd 16, one pass",
            "blk-seqwrite": "write 1 MiB, qd 16, one pass + flush",
            "blk-randread": "read 4 KiB random, qd 32, 3 s",
            "blk-randwrite": "write 4 KiB random, qd 32, 3 s + flush",
            "net-tx": "guest → tap, 1514-byte frames, 3 s",
            "net-rx": "tap → guest, 1514-byte frames, 3 s"}
    lines = ["| test | unit | vmm | QEMU | fio (host) | vmm/fio | vmm/QEMU | target |",
             "|---|---|---|---|---|---|---|---|"]
    for t in tests:
        key, unit = metric[t]
        v, q, f = (med(rows, t, p, key) for p in ("vmm", "qemu", "fio"))
        if t in ("blk-seqread", "blk-seqwrite"):
            met = v and f and q and v >= 0.9 * f and v >= q
            target = "≥ 0.9× fio, ≥ QEMU: %s" % ("met" if met else "**missed**")
        elif t.startswith("net"):
            target = "≥ QEMU: %s" % ("met" if v and q and v >= q else "**missed**")
        else:
            target = "—"
        fmt = (lambda x: "%.0f" % x if x is not None else "—")
        lines.append("| %s (%s) | %s | %s | %s | %s | %s | %s | %s |" % (
            t, what[t], unit, fmt(v), fmt(q), fmt(f), ratio(v, f), ratio(v, q), target))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true",
                    help="1 run, 256 MiB sequential span, 1 s timed tests: a smoke test")
    ap.add_argument("--no-net", action="store_true")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--image", default="build-bench/bench-io.img")
    args = ap.parse_args()
    runs = 1 if args.quick else args.runs
    span_mib = 256 if args.quick else 1024
    secs = 1 if args.quick else None
    cmdline = "./scripts/bench-io" + (" --quick" if args.quick else " --runs %d" % runs) + \
        (" --no-net" if args.no_net else "")

    t_start = time.time()
    make_image(args.image, 1024)
    khz = tsc_khz()
    log("guest TSC: %d kHz" % khz)
    rows = []
    tests = [t[0] for t in BLK_TESTS]
    for run in range(runs):
        for test, mode, rw, bs, qd, tsecs in BLK_TESTS:
            s = (secs if tsecs else 0) if secs is not None else tsecs
            # Rotate the order from run to run: no peer always goes first.
            for peer in rotate(("fio", "vmm", "qemu"), run):
                r = blk_run(args.image, span_mib, test, mode, rw, bs, qd, s, peer, run, khz)
                log("run %d %-13s %-5s %9.1f MB/s %10.1f IOPS" % (run, test, peer, r["MBps"], r["IOPS"]))
                rows.append(r)
    if not args.no_net:
        tests += [t[0] for t in NET_TESTS]
        netns_cleanup()
        try:
            netns_setup()
            for run in range(runs):
                for test, mode in NET_TESTS:
                    for peer in rotate(("vmm", "qemu"), run):
                        r = net_run(test, mode, peer, run, khz, secs or NET_SECS)
                        log("run %d %-13s %-5s %9.1f Mbit/s %9.0f frames/s (host: %s frames)" % (
                            run, test, peer, r["Mbps"], r["IOPS"], r["host_frames"]))
                        rows.append(r)
        finally:
            netns_cleanup()

    os.makedirs(os.path.dirname(CSV_PATH), exist_ok=True)
    with open(CSV_PATH, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)

    body = table(rows, tests)
    note = ("\nMeasured %s on %s by `%s` (%.0f s). Medians of %d run%s; the same guest "
            "(`iobench`, 512 MiB, 1 vCPU, ring-3 polling drivers, no interrupts) under vmm and "
            "QEMU `-M microvm` with virtio-mmio; fio 3 with io_uring on the host file, the same "
            "bs and iodepth. Disk: a %d MiB raw image of random data (sequential tests: %d MiB "
            "pass), opened buffered by all three (vmm: io_uring; QEMU: `cache=writeback,"
            "aio=io_uring`; fio: `direct=0`); before every run the whole image is read once "
            "(warm page cache) and `sync`ed, so reads come from the page cache and writes end "
            "in a FLUSH / `end_fsync` that is part of the time. Net: one tap in a private "
            "network namespace (IPv6 off), userspace virtio-net in both (no vhost); tx counts "
            "frames the device completed (the tap's rx counters confirm each arrived), rx counts "
            "frames the guest received from `bench-io-net` (AF_PACKET `sendmmsg` on the tap). "
            "Raw runs: `%s`.\n" % (
                time.strftime("%Y-%m-%d"), host_description(), cmdline, time.time() - t_start,
                runs, "" if runs == 1 else "s", 1024, span_mib, CSV_PATH))
    print(body + note)
    if not args.no_docs:
        update_section("bench-io", body + note)


if __name__ == "__main__":
    main()
