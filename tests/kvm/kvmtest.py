"""Shared helpers for the kvm suite: run the real build/vmm on guest-kit
guests, with timeouts, and assert on exit codes, console and stderr.

Every test is a standalone program (meson runs each); exit 77 means skipped,
and a skip always prints its reason loudly on stderr."""

import os
import select
import socket
import subprocess
import sys
import time

SKIP = 77

VMM = os.environ.get("VMM", "build/vmm")
GUESTS = os.environ.get("GUESTS", "build/tests/guests")


def guest(name):
    return os.path.join(GUESTS, name)


def skip(reason):
    sys.stderr.write("\n" + "!" * 72 + "\n")
    sys.stderr.write("SKIPPED: %s\n" % reason)
    sys.stderr.write("!" * 72 + "\n")
    sys.exit(SKIP)


def require_kvm():
    if not os.path.exists("/dev/kvm"):
        skip("/dev/kvm does not exist on this host: the kvm suite cannot run")
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        skip("/dev/kvm cannot be opened (%s): the kvm suite cannot run" % e)


class Failure(Exception):
    pass


def check(cond, what, detail=""):
    if not cond:
        raise Failure(what + (("\n" + detail) if detail else ""))


class Result:
    def __init__(self, code, out, err, secs):
        self.code, self.out, self.err, self.secs = code, out, err, secs

    def describe(self):
        return "exit %s after %.2fs\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.code, self.secs, self.out[-4000:], self.err[-4000:])


def run(args, timeout=60, stdin=subprocess.DEVNULL, env=None, prefix=None):
    """Run vmm with args to completion; never hangs past timeout."""
    cmd = (prefix or []) + [VMM] + args
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise Failure("vmm did not finish within %ds: %s\n%s" % (
            timeout, " ".join(cmd), Result(None, out.decode(errors="replace"),
                                           err.decode(errors="replace"), timeout).describe()))
    return Result(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                  time.monotonic() - t0)


class Vmm:
    """A vmm running in the background, its console read line by line."""

    def __init__(self, args, stdin=subprocess.DEVNULL):
        self.p = subprocess.Popen([VMM] + args, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.buf = b""
        self.lines = []

    def read_lines(self, secs):
        """Collect console lines for secs seconds."""
        end = time.monotonic() + secs
        got = []
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if not r:
                break
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                break
            self.buf += chunk
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                got.append(line.decode(errors="replace").rstrip("\r"))
        self.lines += got
        return got

    def wait_for(self, text, secs=30):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            for line in self.read_lines(0.05):
                if text in line:
                    return line
            if self.p.poll() is not None and not self.read_lines(0.05):
                break
        raise Failure("console never showed %r within %ds; last lines:\n%s\nstderr:\n%s" % (
            text, secs, "\n".join(self.lines[-20:]), self.stderr_now()))

    def stderr_now(self):
        if self.p.poll() is None:
            return "(vmm still running)"
        return self.p.stderr.read().decode(errors="replace")

    def wait(self, timeout=30):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Failure("vmm did not exit within %ds" % timeout)
        rest = self.p.stdout.read()
        self.buf += rest
        self.lines += [l.decode(errors="replace") for l in self.buf.split(b"\n") if l]
        self.buf = b""
        return self.p.returncode, self.p.stderr.read().decode(errors="replace")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def api_call(path, execute, timeout=10):
    """One raw request on the control socket; returns the response line."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(('{"execute":"%s"}\n' % execute).encode())
    data = b""
    while b"\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode().strip()


def main(tests):
    """Run each test function; report all failures; exit 1 if any failed."""
    require_kvm()
    failed = 0
    for t in tests:
        t0 = time.monotonic()
        try:
            t()
            print("ok   %s (%.2fs)" % (t.__name__, time.monotonic() - t0), flush=True)
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (t.__name__, e), flush=True)
    print("%d/%d passed" % (len(tests) - failed, len(tests)))
    sys.exit(1 if failed else 0)
