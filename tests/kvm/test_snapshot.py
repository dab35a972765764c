"""Full checkpoints end to end: the memory workload on 2 vCPUs is
checkpointed, restored in a new process and carries on where it was, its
memory checks clean; damaged snapshots are refused; a failed checkpoint
leaves no file and the guest running."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from kvmtest import Failure, Vmm, check, guest, main, run

VMM_BIN = os.path.abspath(os.environ.get("VMM", "build/vmm"))
TMP = tempfile.mkdtemp(prefix="vmm-snap-")
MEMTEST = ["--kernel", guest("memtest"), "--cpus", "2", "--mem", "256M",
           "--cmdline", "mem.mib=32 mem.secs=6 mem.hb_ms=250 mem.rate=20"]


def client(*args):
    p = subprocess.run([VMM_BIN] + list(args), capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def start_memtest(name):
    sock = os.path.join(TMP, name + ".sock")
    v = Vmm(["run", "--api-sock", sock] + MEMTEST)
    v.wait_for("HB cpu=1 seq=3", 30)
    return v, sock


def last_seq(lines):
    seqs = [int(m.group(1)) for l in lines for m in [re.search(r"HB cpu=0 seq=(\d+)", l)] if m]
    return max(seqs) if seqs else 0


def checkpoint(sock, path, then="exit"):
    code, out, err = client("checkpoint", "--api-sock", sock, "--out", path, "--then", then)
    check(code == 0, "vmm checkpoint succeeds", out + err)
    check(re.search(r"checkpoint: .* MiB in .* s .*guest paused", out), "result line", out)
    return out


def test_checkpoint_exit_restore_carries_on():
    v, sock = start_memtest("a")
    snap = os.path.join(TMP, "a.snap")
    try:
        checkpoint(sock, snap, "exit")
        rc, err = v.wait(60)
        check(rc == 0, "--then exit ends the source vmm with 0", err)
        before = last_seq(v.lines)
    finally:
        v.kill()
    check(os.path.exists(snap) and not [f for f in os.listdir(TMP) if ".tmp" in f],
          "the snapshot exists, no temporary file left")
    r = run(["restore", "--from", snap], timeout=120)
    check(r.code == 0, "the restored guest runs to its end and exits 0", r.describe())
    check("MEMTEST start" not in r.out, "the restored guest did not start over", r.out)
    check("MEMTEST result=PASS" in r.out and "MISMATCH" not in r.out,
          "its memory checks stay clean", r.out)
    after = [int(x) for x in re.findall(r"HB cpu=0 seq=(\d+)", r.out)]
    check(after and min(after) > before, "heartbeats go on from %d (got %s)" % (before, after[:3]),
          r.out)
    # The same snapshot restored a second time runs just as well.
    r2 = run(["restore", "--from", snap], timeout=120)
    check(r2.code == 0 and "MEMTEST result=PASS" in r2.out, "a second restore", r2.describe())


def test_checkpoint_resume_keeps_running():
    v, sock = start_memtest("b")
    snap = os.path.join(TMP, "b.snap")
    try:
        checkpoint(sock, snap, "resume")
        code, out, _ = client("status", "--api-sock", sock)
        check(code == 0 and json.loads(out)["state"] == "running", "running after checkpoint")
        v.wait_for("MEMTEST result=PASS", 60)
        rc, err = v.wait(30)
        check(rc == 0 and not [l for l in v.lines if "MISMATCH" in l], "source unharmed", err)
    finally:
        v.kill()
    # Refuse to overwrite without --force.
    v, sock = start_memtest("b2")
    try:
        code, out, err = client("checkpoint", "--api-sock", sock, "--out", snap)
        check(code == 1 and "exists" in err, "an existing file is not replaced silently", err)
        code, out, err = client("checkpoint", "--api-sock", sock, "--out", snap, "--force")
        check(code == 0, "--force replaces it", err)
        client("stop", "--api-sock", sock)
        v.wait(30)
    finally:
        v.kill()


def test_pipe_checkpoint_to_pipe_restore():
    v, sock = start_memtest("p")
    try:
        ck = subprocess.Popen([VMM_BIN, "checkpoint", "--api-sock", sock, "--out", "-",
                               "--then", "exit"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        rs = subprocess.Popen([VMM_BIN, "restore", "--from", "-"], stdin=ck.stdout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ck.stdout.close()
        out, err = rs.communicate(timeout=120)
        ck_err = ck.communicate(timeout=30)[1].decode()
        check(ck.returncode == 0 and "checkpoint: -:" in ck_err, "checkpoint to a pipe", ck_err)
        check(rs.returncode == 0 and "MEMTEST result=PASS" in out and "MEMTEST start" not in out,
              "restore from a pipe carries on and passes", out[-2000:] + err)
        check(v.wait(30)[0] == 0, "the source ended with 0")
    finally:
        v.kill()


def test_restore_paused_then_resume():
    v, sock = start_memtest("q")
    snap = os.path.join(TMP, "q.snap")
    try:
        checkpoint(sock, snap, "exit")
        v.wait(60)
    finally:
        v.kill()
    sock2 = os.path.join(TMP, "q2.sock")
    r = Vmm(["restore", "--from", snap, "--paused", "--api-sock", sock2])
    try:
        deadline = time.time() + 20
        while not os.path.exists(sock2) and time.time() < deadline:
            time.sleep(0.05)
        code, out, _ = client("status", "--api-sock", sock2)
        check(code == 0 and json.loads(out)["state"] == "paused", "restored paused", out)
        check(not [l for l in r.read_lines(0.5) if l.startswith("HB")], "no heartbeat while paused")
        check(client("resume", "--api-sock", sock2)[0] == 0, "resume")
        r.wait_for("MEMTEST result=PASS", 60)
        check(r.wait(30)[0] == 0, "exit 0")
    finally:
        r.kill()


def test_inspect_and_damage():
    v, sock = start_memtest("c")
    snap = os.path.join(TMP, "c.snap")
    try:
        checkpoint(sock, snap, "exit")
        v.wait(60)
    finally:
        v.kill()
    code, out, err = client("inspect", snap)
    check(code == 0 and "every checksum verified" in out, "inspect verifies", out + err)
    for name in ["configuration", "cpu", "irqchip", "serial", "i8042"]:
        check(name in out, "inspect lists " + name, out)
    code, out, err = client("inspect", snap, "--json")
    info = json.loads(out)
    check(code == 0 and info["vcpus"] == 2 and info["checksums"] == "ok", "inspect --json", out)
    data = open(snap, "rb").read()
    for what, damaged in [("a flipped byte in RAM", bytearray(data)),
                          ("a flipped byte in a header", bytearray(data)),
                          ("truncated", data[: len(data) * 2 // 3])]:
        if what == "a flipped byte in RAM":
            damaged[len(data) // 2] ^= 0x40
        elif what == "a flipped byte in a header":
            damaged[70] ^= 0x01
        bad = os.path.join(TMP, "bad.snap")
        open(bad, "wb").write(bytes(damaged))
        code, out, err = client("inspect", bad)
        check(code == 1 and len(err.strip().splitlines()) == 1, "inspect refuses " + what, err)
        r = run(["restore", "--from", bad, "--console", "none"], timeout=60)
        check(r.code == 1 and "restore" in r.err, "restore refuses " + what, r.describe())
    open(os.path.join(TMP, "text.snap"), "w").write("not a snapshot\n" * 10)
    code, out, err = client("inspect", os.path.join(TMP, "text.snap"))
    check(code == 1 and "not a vmm snapshot" in err, "a text file", err)


def test_enospc_leaves_guest_running_and_no_file():
    # A 16 MiB tmpfs in a private mount namespace, where this vmm runs.
    mnt = os.path.join(TMP, "small")
    os.makedirs(mnt)
    sock = os.path.join(TMP, "d.sock")
    script = "mount -t tmpfs -o size=16m none %s && exec %s run --api-sock %s %s" % (
        mnt, VMM_BIN, sock, " ".join("'%s'" % a for a in MEMTEST))
    p = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1)
        code, out, err = client("checkpoint", "--api-sock", sock, "--out",
                                os.path.join(mnt, "x.snap"))
        check(code == 1 and "No space left" in err, "the checkpoint fails with ENOSPC", err)
        code, out, _ = client("status", "--api-sock", sock)
        check(code == 0 and json.loads(out)["state"] == "running", "the guest runs on")
        ls = subprocess.run(["nsenter", "-t", str(p.pid), "-m", "ls", "-A", mnt],
                            capture_output=True, text=True).stdout.split()
        check(ls == [], "no file left on the full file system (%s)" % ls)
        out, err = p.communicate(timeout=60)
        check(p.returncode == 0 and "MEMTEST result=PASS" in out, "the guest finishes clean",
              out[-2000:] + err)
    finally:
        if p.poll() is None:
            p.kill()


if __name__ == "__main__":
    try:
        main([test_checkpoint_exit_restore_carries_on, test_checkpoint_resume_keeps_running,
              test_pipe_checkpoint_to_pipe_restore, test_restore_paused_then_resume,
              test_inspect_and_damage, test_enospc_leaves_guest_running_and_no_file])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
