"""virtio devices end to end: the iotest guest against real files, a real tap
in a network namespace this test creates, and the host's entropy."""

import array
import re
import os
import shutil
import subprocess
import tempfile
import time

from kvmtest import Failure, check, guest, main, run

VMM_BIN = os.path.abspath(os.environ.get("VMM", "build/vmm"))
TMP = tempfile.mkdtemp(prefix="vmm-virtio-")
MIB = 1 << 20
MASK = (1 << 64) - 1


def pattern(seed_mul, seed_xor, start, nbytes):
    """The u64 at byte offset o is (o/8 * seed_mul) ^ seed_xor (mod 2^64)."""
    first = start // 8
    return array.array("Q", (((first + i) * seed_mul) & MASK ^ seed_xor
                             for i in range(nbytes // 8))).tobytes()


def host_pattern(start, nbytes):
    return pattern(0x9E3779B97F4A7C15, 0xD15C0DE5, start, nbytes)


def guest_pattern(start, nbytes):
    return pattern(0xC2B2AE3D27D4EB4F, 0x6E657721, start, nbytes)


def make_image(name, mib):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(host_pattern(0, mib * MIB))
    return path


def lines_with(out, prefix):
    return [l for l in out.splitlines() if l.startswith(prefix)]


def kv(line):
    return dict(p.split("=", 1) for p in line.split() if "=" in p)


def test_blk_read_write_flush():
    img = make_image("rw.img", 16)
    r = run(["run", "--kernel", guest("iotest"), "--mem", "256M", "--disk", img,
             "--cmdline", "io.net=0"], timeout=120)
    check(r.code == 0 and "IOTEST result=PASS" in r.out, "iotest passes", r.describe())
    blk = [kv(l) for l in lines_with(r.out, "BLK dev=0")]
    info = blk[0]
    check(info["capacity"] == str(16 * MIB // 512) and info["ro"] == "0", "capacity, rw", r.out)
    check(info["serial"] == "rw.img", "GET_ID is the file name", r.out)
    check(any(l.startswith("BLK dev=0 read_check") and "mismatches=0" in l
              for l in r.out.splitlines()), "host pattern read back intact", r.out)
    # The host checks, byte for byte, what the guest wrote and what it left.
    data = open(img, "rb").read()
    check(len(data) == 16 * MIB, "image size unchanged")
    exp = bytearray(host_pattern(0, 16 * MIB))
    exp[8 * MIB:10 * MIB] = guest_pattern(8 * MIB, 2 * MIB)
    if any(l.startswith("BLK dev=0 write_zeroes") and "ok=1" in l for l in r.out.splitlines()):
        exp[12 * MIB:12 * MIB + 65536] = bytes(65536)
    if data != bytes(exp):
        first = next(i for i in range(len(data)) if data[i] != exp[i])
        raise Failure("image differs from the expected content at byte %d" % first)


def test_blk_read_only():
    img = make_image("ro.img", 16)
    before = open(img, "rb").read()
    r = run(["run", "--kernel", guest("iotest"), "--disk", img + ",ro", "--cmdline", "io.net=0"],
            timeout=120)
    check(r.code == 0 and "IOTEST result=PASS" in r.out, "iotest passes on a ro disk",
          r.describe())
    check(any(l.startswith("BLK dev=0") and "ro=1" in l for l in r.out.splitlines()),
          "the guest sees a read-only disk", r.out)
    check(any(l.startswith("BLK dev=0 ro_write status=1") for l in r.out.splitlines()),
          "a write to a read-only disk fails with IOERR", r.out)
    check(open(img, "rb").read() == before, "a read-only image is not modified")


def test_rng():
    r = run(["run", "--kernel", guest("iotest"), "--rng", "--cmdline", "io.net=0"], timeout=60)
    check(r.code == 0 and "IOTEST result=PASS" in r.out, "iotest passes", r.describe())
    rng = [kv(l) for l in lines_with(r.out, "RNG dev=0")]
    check(rng and rng[0]["bytes"] == "4096" and int(rng[0]["distinct"]) >= 200,
          "4096 random bytes arrive", r.out)


def test_all_devices_together():
    a, b = make_image("a.img", 16), make_image("b.img", 16)
    r = run(["run", "--kernel", guest("iotest"), "--cpus", "2", "--mem", "256M", "--disk", a,
             "--disk", b + ",ro", "--rng", "--cmdline", "io.net=0"], timeout=120)
    check(r.code == 0 and "IOTEST result=PASS" in r.out, "iotest passes", r.describe())
    check("IOTEST devices blk=2 net=0 rng=1" in r.out, "all devices discovered", r.out)


class NetNs:
    """A network namespace with one tap, torn down on exit."""

    def __init__(self, tap="vmtap0"):
        self.name = "vmm-test-%d" % os.getpid()
        self.tap = tap
        sh(["ip", "netns", "add", self.name])
        self.ex(["ip", "tuntap", "add", "dev", tap, "mode", "tap"])
        self.ex(["sysctl", "-qw", "net.ipv6.conf.%s.disable_ipv6=1" % tap])
        self.ex(["ip", "link", "set", tap, "up"])

    def ex(self, cmd):
        sh(["ip", "netns", "exec", self.name] + cmd)

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def close(self):
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)


def sh(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise Failure("%s: %s" % (" ".join(cmd), p.stderr.strip()))


def test_net_frames_both_ways():
    if not shutil.which("ip"):
        raise Failure("iproute2's ip is needed for the network test")
    ns = NetNs()
    echo = None
    try:
        echo = subprocess.Popen(ns.prefix() + ["python3", os.path.join(os.path.dirname(
            os.path.abspath(__file__)), "net_echo.py"), ns.tap], stdout=subprocess.PIPE, text=True)
        check(echo.stdout.readline().strip() == "echo ready", "the host echo started")
        r = run(["run", "--kernel", guest("iotest"), "--net", "tap=%s,mac=52:54:00:12:34:56" % ns.tap,
                 "--cmdline", "io.net.count=200"], timeout=120, prefix=ns.prefix())
        echo.terminate()
        summary = echo.communicate(timeout=10)[0]
        check(r.code == 0 and "IOTEST result=PASS" in r.out, "iotest passes", r.describe())
        check("NET dev=0 mac=52:54:00:12:34:56" in r.out, "the guest reads its MAC", r.out)
        net = [kv(l) for l in lines_with(r.out, "NET dev=0 sent")]
        check(net and net[0]["sent"] == "200" and net[0]["received"] == "200" and
              net[0]["bad"] == "0", "200 frames out, 200 back, none bad", r.out)
        check("bad=0" in summary and "echoed=200" in summary,
              "the host saw 200 good frames from the guest", summary)
    finally:
        if echo and echo.poll() is None:
            echo.kill()
        ns.close()


def test_checkpoint_restore_mid_io():
    """A guest doing disk, network and rng I/O in rounds is checkpointed in
    the middle, restored in a new process, and its I/O goes on and passes."""
    ns = NetNs("vmtap1")
    echo = None
    img = make_image("mid.img", 16)
    snap = os.path.join(TMP, "mid.snap")
    sock = os.path.join(TMP, "mid.sock")
    args = ["--kernel", guest("iotest"), "--mem", "256M", "--disk", img, "--rng",
            "--net", "tap=%s" % ns.tap, "--cmdline", "io.rounds=60 io.round_ms=100 io.net.count=32"]
    try:
        echo = subprocess.Popen(ns.prefix() + ["python3", os.path.join(os.path.dirname(
            os.path.abspath(__file__)), "net_echo.py"), ns.tap], stdout=subprocess.PIPE, text=True)
        check(echo.stdout.readline().strip() == "echo ready", "the host echo started")
        src = subprocess.Popen(ns.prefix() + [VMM_BIN, "run", "--api-sock", sock] + args,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = ""
        while "IOTEST round 5 " not in out:
            line = src.stdout.readline()
            if not line:
                raise Failure("the source guest ended early:\n" + out + src.stderr.read())
            out += line
        p = subprocess.run([VMM_BIN, "checkpoint", "--api-sock", sock, "--out", snap,
                            "--then", "exit"], capture_output=True, text=True, timeout=120)
        check(p.returncode == 0, "checkpoint mid-I/O", p.stdout + p.stderr)
        rest, err = src.communicate(timeout=60)
        check(src.returncode == 0, "the source exits 0", err)
        rounds_before = [int(x) for x in re.findall(r"IOTEST round (\d+) ", out + rest)]
        r = run(["restore", "--from", snap], timeout=300, prefix=ns.prefix())
        check(r.code == 0 and "IOTEST result=PASS" in r.out, "the restored guest's I/O passes",
              r.describe())
        after = [int(x) for x in re.findall(r"IOTEST round (\d+) ", r.out)]
        check(after and after[0] >= max(rounds_before) and max(after) == 60,
              "rounds go on after the restore (%d -> %s...)" % (max(rounds_before), after[:2]),
              r.out[-1500:])
        check("IOTEST devices" not in r.out, "the restored guest did not boot again", r.out[:500])
        data = open(img, "rb").read()
        exp = bytearray(host_pattern(0, 16 * MIB))
        exp[8 * MIB:10 * MIB] = guest_pattern(8 * MIB, 2 * MIB)
        exp[12 * MIB:12 * MIB + 65536] = bytes(65536)
        check(data == bytes(exp), "the disk holds exactly what the guest wrote")
    finally:
        if echo and echo.poll() is None:
            echo.kill()
        ns.close()


def test_net_errors():
    r = run(["run", "--kernel", guest("hello"), "--net", "tap=" + "x" * 20])
    check(r.code == 1 and "at most 15 characters" in r.err, "too long a tap name", r.describe())
    r = run(["run", "--kernel", guest("hello"), "--net", "tap=t0,mac=01:02:03:04:05:06"])
    check(r.code == 2 and "unicast" in r.err, "a multicast MAC is refused", r.describe())


def test_disk_errors():
    r = run(["run", "--kernel", guest("hello"), "--disk", os.path.join(TMP, "missing.img")])
    check(r.code == 1 and "missing.img" in r.err and len(r.err.strip().splitlines()) == 1,
          "a missing disk image: one clear line", r.describe())
    r = run(["run", "--kernel", guest("hello"), "--disk", TMP])
    check(r.code == 1 and len(r.err.strip().splitlines()) == 1 and "--disk" in r.err,
          "a directory as disk: one clear line", r.describe())


if __name__ == "__main__":
    try:
        main([test_blk_read_write_flush, test_blk_read_only, test_rng, test_all_devices_together,
              test_net_frames_both_ways, test_checkpoint_restore_mid_io, test_net_errors,
              test_disk_errors])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
