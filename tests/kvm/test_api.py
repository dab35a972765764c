"""The control socket while a guest runs: status, pause, resume, stop, with
the guest's heartbeat proving pause really stops it."""

import json
import os
import socket
import stat
import subprocess
import tempfile
import time

from kvmtest import Vmm, api_call, check, guest, main, run

VMM_BIN = os.environ.get("VMM", "build/vmm")


def client(cmd, sock):
    p = subprocess.run([VMM_BIN, cmd, "--api-sock", sock], capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def start(d, cpus=1):
    sock = os.path.join(d, "api.sock")
    v = Vmm(["run", "--kernel", guest("hello"), "--cpus", str(cpus), "--api-sock", sock,
             "--cmdline", "hello.wait=1"])
    v.wait_for("tick 2")
    return v, sock


def test_status_pause_resume_stop():
    with tempfile.TemporaryDirectory() as d:
        v, sock = start(d, cpus=2)
        try:
            mode = stat.S_IMODE(os.stat(sock).st_mode)
            check(mode == 0o600, "socket mode 0600, got %o" % mode)
            code, out, err = client("status", sock)
            check(code == 0, "status exits 0", err)
            st = json.loads(out)
            check(st["state"] == "running" and st["vcpus"] == 2, "status: running, 2 vCPUs", out)
            check(st["mem_bytes"] == 128 << 20, "status: memory size", out)

            code, out, err = client("pause", sock)
            check(code == 0, "pause exits 0", err)
            v.read_lines(0.3)   # output already in flight
            quiet = v.read_lines(1.0)
            check(not [l for l in quiet if l.startswith("tick")],
                  "no ticks while paused", "\n".join(quiet))
            check(json.loads(client("status", sock)[1])["state"] == "paused", "status: paused")
            check(client("pause", sock)[0] == 0, "pause is idempotent")

            code, out, err = client("resume", sock)
            check(code == 0, "resume exits 0", err)
            v.wait_for("tick", 5)
            check(json.loads(client("status", sock)[1])["state"] == "running",
                  "status: running again")

            code, out, err = client("stop", sock)
            check(code == 0, "stop exits 0", err)
            rc, verr = v.wait(30)
            check(rc == 0, "vmm exits 0 after stop", verr)
            check(not os.path.exists(sock), "socket removed on exit")
        finally:
            v.kill()


def test_protocol_errors():
    with tempfile.TemporaryDirectory() as d:
        v, sock = start(d)
        try:
            resp = json.loads(api_call(sock, "frobnicate"))
            check(resp["error"]["class"] == "CommandNotFound", "unknown command", str(resp))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(sock)
            s.sendall(b'garbage\n{"execute":"status","id":7}\n')
            data = b""
            while data.count(b"\n") < 2:
                data += s.recv(4096)
            first, second = [json.loads(x) for x in data.decode().splitlines()[:2]]
            check("error" in first and "bad request" in first["error"]["desc"], "garbage", data)
            check(second.get("id") == 7 and second["return"]["state"] == "running",
                  "the connection survives a bad line; id echoed", data)
            s.close()
            # The guest is unaffected.
            v.wait_for("tick", 5)
            check(client("stop", sock)[0] == 0, "stop")
            check(v.wait(30)[0] == 0, "exit 0")
        finally:
            v.kill()


def test_socket_in_use_and_stale():
    with tempfile.TemporaryDirectory() as d:
        v, sock = start(d)
        try:
            r = run(["run", "--kernel", guest("hello"), "--api-sock", sock])
            check(r.code == 1 and "in use" in r.err, "a live socket is not stolen", r.describe())
            check(client("status", sock)[0] == 0, "the first vmm still answers")
        finally:
            client("stop", sock)
            v.wait(30)
        # A stale socket file (no listener) is replaced.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(sock)
        s.close()
        r = run(["run", "--kernel", guest("hello"), "--api-sock", sock])
        check(r.code == 0, "stale socket replaced", r.describe())
        # A non-socket file is refused.
        open(sock, "w").close()
        r = run(["run", "--kernel", guest("hello"), "--api-sock", sock])
        check(r.code == 1 and "not a socket" in r.err, "regular file refused", r.describe())


def test_client_errors():
    code, out, err = client("status", "/nonexistent/api.sock")
    check(code == 1 and "cannot connect" in err and len(err.splitlines()) == 1,
          "client without a vmm: one clear line", err)
    p = subprocess.run([VMM_BIN, "status"], capture_output=True, timeout=10)
    check(p.returncode == 2 and b"--api-sock" in p.stderr, "client without --api-sock",
          p.stderr.decode())


if __name__ == "__main__":
    main([test_status_pause_resume_stop, test_protocol_errors, test_socket_in_use_and_stale,
          test_client_errors])
