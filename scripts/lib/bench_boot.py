"""The measuring half of scripts/bench-boot (see there)."""

import argparse
import csv
import os
import select
import statistics
import subprocess
import sys
import time

from benchdoc import host_description, update_section

VMM = "build-bench/vmm"
GUEST = "build-bench/tests/guests/hello"
FIRST_LINE = b"hello from vmm guest"
MEM = "128M"
CSV_PATH = "docs/data/bench-boot.csv"

QEMU_COMMON = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host,-arch-capabilities",
               "-m", MEM, "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-no-reboot",
               # Guest RAM in a memfd, as vmm has it, so RSS splits the same way.
               "-object", "memory-backend-memfd,id=ram,size=" + MEM,
               "-machine", "memory-backend=ram"]

PEERS = {
    "vmm": [VMM, "run", "--kernel", GUEST, "--mem", MEM, "--cpus", "1"],
    # The fair peer: microvm boots the guest's PVH entry with qboot, no BIOS/PCI.
    "qemu-microvm": QEMU_COMMON[:1] + ["-M", "microvm"] + QEMU_COMMON[1:] + ["-kernel", GUEST],
    # The ordinary PC machine with SeaBIOS and the multiboot header.
    "qemu-pc": QEMU_COMMON[:1] + ["-M", "pc"] + QEMU_COMMON[1:] + ["-kernel", GUEST],
}
# qemu-pc spends seconds in emulated firmware on PVM hosts: fewer runs.
RUNS_CAP = {"qemu-pc": 5}


def status_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def one_run(cmd):
    """Start cmd; return (ms to first line, ms to exit, own RSS KiB, peak RSS KiB
    (VmHWM at the first line, guest RAM the guest touched included)).
    Own RSS = RssAnon + RssFile sampled at the first line: guest RAM is a memfd
    (RssShmem) in both VMMs, so it is left out."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    buf, first, own, hwm = b"", None, None, None
    fd = p.stdout.fileno()
    deadline = t0 + 60
    while first is None:
        r, _, _ = select.select([fd], [], [], max(0, deadline - time.perf_counter()))
        if not r:
            p.kill()
            raise RuntimeError("%s: no first line within 60 s" % cmd[0])
        chunk = os.read(fd, 65536)
        if not chunk:
            raise RuntimeError("%s exited before its first line" % cmd[0])
        buf += chunk
        if FIRST_LINE in buf:
            first = time.perf_counter()
            anon, fil = status_kib(p.pid, "RssAnon"), status_kib(p.pid, "RssFile")
            own = anon + fil if anon is not None and fil is not None else None
            # VmHWM, not wait4's ru_maxrss: the latter also counts the forked
            # Python interpreter before exec.
            hwm = status_kib(p.pid, "VmHWM")
    while os.read(fd, 65536):
        pass
    _, status, _ = os.wait4(p.pid, 0)
    end = time.perf_counter()
    p.returncode = os.waitstatus_to_exitcode(status)
    return (first - t0) * 1000, (end - t0) * 1000, own, hwm


def measure(name, cmd, runs):
    rows = []
    one_run(cmd)  # warm the page cache; not counted
    for i in range(min(runs, RUNS_CAP.get(name, runs))):
        first, total, own, peak = one_run(cmd)
        rows.append({"vmm": name, "run": i, "first_line_ms": round(first, 3),
                     "exit_ms": round(total, 3), "own_rss_kib": own, "peak_rss_kib": peak})
    return rows


def med(rows, key):
    vals = [r[key] for r in rows if r[key] is not None]
    return statistics.median(vals) if vals else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()

    rows = []
    for name, cmd in PEERS.items():
        print("measuring %s ..." % name, file=sys.stderr, flush=True)
        rows += measure(name, cmd, args.runs)
    os.makedirs(os.path.dirname(CSV_PATH), exist_ok=True)
    with open(CSV_PATH, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    base = {k: med([r for r in rows if r["vmm"] == "vmm"], k)
            for k in ("first_line_ms", "exit_ms", "own_rss_kib", "peak_rss_kib")}
    lines = ["| VMM | runs | first line (ms) | exit (ms) | own RSS (MiB) | peak RSS (MiB) "
             "| first line vs vmm |",
             "|---|---|---|---|---|---|---|"]
    for name in PEERS:
        sel = [r for r in rows if r["vmm"] == name]
        fl, ex = med(sel, "first_line_ms"), med(sel, "exit_ms")
        own, peak = med(sel, "own_rss_kib"), med(sel, "peak_rss_kib")
        lines.append("| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1fx |" % (
            name, len(sel), fl, ex, own / 1024, peak / 1024, fl / base["first_line_ms"]))
    table = "\n".join(lines) + "\n"
    host = host_description()
    note = ("\nMeasured %s on %s by `./scripts/bench-boot --runs %d`. Medians; guest `hello` with %s RAM, 1 vCPU; "
            "own RSS = RssAnon + RssFile at the first line (guest RAM, a memfd in both, "
            "left out); peak RSS = VmHWM at the first line, touched guest RAM included. Raw runs: `%s`.\n" % (
                time.strftime("%Y-%m-%d"), host, args.runs, MEM, CSV_PATH))
    print(table + note)
    if not args.no_docs:
        update_section("bench-boot", table + note)


if __name__ == "__main__":
    main()
