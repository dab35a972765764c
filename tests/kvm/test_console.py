"""The console on a real terminal (a pty): raw mode while the guest runs,
the terminal restored afterwards whatever the ending, input reaching the
guest, Ctrl-A x ending vmm."""

import os
import pty
import select
import signal
import tempfile
import subprocess
import termios
import time

from kvmtest import check, guest, main, run

VMM_BIN = os.environ.get("VMM", "build/vmm")


class PtyVmm:
    def __init__(self, args):
        self.master, self.slave = pty.openpty()
        self.before = termios.tcgetattr(self.slave)
        self.p = subprocess.Popen([VMM_BIN] + args, stdin=self.slave, stdout=self.slave,
                                  stderr=subprocess.PIPE, start_new_session=True)
        self.out = b""

    def read_until(self, text, secs=30):
        end = time.monotonic() + secs
        while text.encode() not in self.out:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("never saw %r; got %r" % (text, self.out[-2000:]))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    break
        return self.out

    def raw_now(self):
        attrs = termios.tcgetattr(self.slave)
        return not (attrs[3] & termios.ICANON) and not (attrs[3] & termios.ECHO)

    def finish(self, timeout=30):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("vmm did not exit")
        after = termios.tcgetattr(self.slave)
        err = self.p.stderr.read().decode()
        os.close(self.master)
        os.close(self.slave)
        return self.p.returncode, after, err


def test_raw_mode_restored_after_clean_exit():
    v = PtyVmm(["run", "--kernel", guest("hello"), "--cmdline", "hello.wait=1"])
    v.read_until("tick 1")
    check(v.raw_now(), "the terminal is raw while the guest runs")
    os.write(v.master, b"\x01x")   # Ctrl-A x
    code, after, err = v.finish()
    check(code == 0, "Ctrl-A x ends vmm with 0", err)
    check(after == v.before, "terminal settings restored exactly")


def test_raw_mode_restored_after_signal_and_crash():
    v = PtyVmm(["run", "--kernel", guest("hello"), "--cmdline", "hello.wait=1"])
    v.read_until("tick 1")
    v.p.send_signal(signal.SIGTERM)
    code, after, err = v.finish()
    check(code == 128 + signal.SIGTERM, "SIGTERM: exit 143, got %d" % code, err)
    check("signal" in err, "says it was stopped by a signal", err)
    check(after == v.before, "terminal restored after SIGTERM")

    v = PtyVmm(["run", "--kernel", guest("hello"), "--cmdline", "hello.crash=1"])
    code, after, err = v.finish()
    check(code == 3, "guest crash: exit 3", err)
    check(after == v.before, "terminal restored after a guest crash")


def test_ctrl_a_passthrough():
    # Ctrl-A Ctrl-A sends one Ctrl-A and does not end vmm.
    v = PtyVmm(["run", "--kernel", guest("hello"), "--cmdline", "hello.wait=1"])
    v.read_until("tick 1")
    os.write(v.master, b"\x01\x01")
    n = v.out.count(b"tick")
    v.read_until("tick %d" % (n + 2))
    check(v.p.poll() is None, "vmm still running after Ctrl-A Ctrl-A")
    os.write(v.master, b"\x01x")
    code, after, err = v.finish()
    check(code == 0, "exit 0", err)


def echo_lines(out):
    return [l[len("echo: "):] for l in out.splitlines() if l.startswith("echo: ")][1:]


def test_input_from_pipe_and_file():
    lines = ["first", "a longer line with spaces", "quit"]
    data = ("\n".join(lines) + "\n").encode()
    p = subprocess.run([VMM_BIN, "run", "--kernel", guest("hello"), "--cmdline", "hello.echo=1"],
                       input=data, capture_output=True, timeout=60)
    check(p.returncode == 0, "exit 0 after 'quit' from a pipe", p.stderr.decode())
    check(echo_lines(p.stdout.decode()) == lines, "every line reached the guest",
          p.stdout.decode())
    # A regular file cannot be polled by epoll; it must work all the same.
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.seek(0)
        p = subprocess.run([VMM_BIN, "run", "--kernel", guest("hello"), "--cmdline",
                            "hello.echo=1"], stdin=f, capture_output=True, timeout=60)
    check(p.returncode == 0 and echo_lines(p.stdout.decode()) == lines,
          "stdin from a regular file", p.stdout.decode() + p.stderr.decode())


def test_input_back_pressure_loses_nothing():
    # 40 KiB, ten times the UART's receive FIFO: vmm must hold back, not drop.
    lines = ["line %04d %s" % (i, "x" * 90) for i in range(400)] + ["quit"]
    data = ("\n".join(lines) + "\n").encode()
    p = subprocess.run([VMM_BIN, "run", "--kernel", guest("hello"), "--cmdline", "hello.echo=1"],
                       input=data, capture_output=True, timeout=120)
    got = echo_lines(p.stdout.decode())
    check(p.returncode == 0, "exit 0", p.stderr.decode())
    check(got == lines, "all %d lines arrived intact (got %d)" % (len(lines), len(got)))


def test_input_from_terminal():
    v = PtyVmm(["run", "--kernel", guest("hello"), "--cmdline", "hello.echo=1"])
    v.read_until("echo: ready")
    os.write(v.master, b"typed on a tty\r")   # raw mode: Enter sends CR
    v.read_until("echo: typed on a tty")
    os.write(v.master, b"quit\r")
    code, after, err = v.finish()
    check(code == 0, "exit 0 after quit", err)
    check(after == v.before, "terminal restored")


if __name__ == "__main__":
    main([test_raw_mode_restored_after_clean_exit, test_raw_mode_restored_after_signal_and_crash,
          test_ctrl_a_passthrough, test_input_from_pipe_and_file,
          test_input_back_pressure_loses_nothing, test_input_from_terminal])
