"""Every user error and guest failure of `vmm run`: one clear line on stderr
naming the problem, a non-zero exit, never a crash or a hang."""

import os
import shutil
import struct
import subprocess
import tempfile

from kvmtest import check, guest, main, run

TMP = tempfile.mkdtemp(prefix="vmm-errors-")


def one_line_error(r, code, *words):
    lines = [l for l in r.err.splitlines() if l.strip()]
    check(r.code == code, "expected exit %d" % code, r.describe())
    check(len(lines) == 1, "expected exactly one line on stderr", r.describe())
    check(lines[0].startswith("vmm: "), "error lines start with 'vmm: '", r.describe())
    for w in words:
        check(w in lines[0], "error should mention %r" % w, r.describe())
    check(r.code < 128, "no crash (killed by a signal)", r.describe())


def write(name, data, mode=0o644):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def elf64(segments, entry=0x100000, machine=62, cls=2):
    """A minimal ELF executable: segments = [(paddr, data, memsz)]."""
    phoff, n = 64, len(segments)
    off = phoff + 56 * n
    eh = b"\x7fELF" + bytes([cls, 1, 1]) + bytes(9)
    eh += struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, entry, phoff, 0, 0, 64, 56, n, 0, 0, 0)
    ph, body = b"", b""
    for paddr, data, memsz in segments:
        ph += struct.pack("<IIQQQQQQ", 1, 7, off + len(body), paddr, paddr, len(data), memsz,
                          0x1000)
        body += data
    return eh + ph + body


def test_missing_kernel():
    r = run(["run", "--kernel", os.path.join(TMP, "nope")])
    one_line_error(r, 1, "nope", "No such file")


def test_kernel_is_directory():
    r = run(["run", "--kernel", TMP])
    one_line_error(r, 1, "not a regular file")


def test_unreadable_kernel():
    # Root reads anything, so drop to an unprivileged user who may use KVM:
    # a private mount namespace gets a /dev/kvm node that user can open.
    if not shutil.which("unshare") or not shutil.which("setpriv"):
        raise AssertionError("unshare/setpriv (util-linux) are needed")
    path = write("secret.elf", open(guest("hello"), "rb").read(), 0o600)
    os.chmod(TMP, 0o755)
    vmm = os.path.abspath(os.environ.get("VMM", "build/vmm"))
    script = ("set -e; d=$(mktemp -d); mknod $d/kvm c 10 232; chmod 666 $d/kvm; "
              "mount --bind $d/kvm /dev/kvm; "
              "exec setpriv --reuid=65534 --regid=65534 --clear-groups %s run --kernel %s"
              % (vmm, path))
    p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, timeout=60)
    from kvmtest import Result
    r = Result(p.returncode, p.stdout.decode(), p.stderr.decode(), 0)
    one_line_error(r, 1, "secret.elf", "Permission denied")


def test_no_dev_kvm():
    vmm = os.path.abspath(os.environ.get("VMM", "build/vmm"))
    script = "set -e; mount -t tmpfs none /dev; exec %s run --kernel %s" % (
        vmm, os.path.abspath(guest("hello")))
    p = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, timeout=60)
    from kvmtest import Result
    r = Result(p.returncode, p.stdout.decode(), p.stderr.decode(), 0)
    one_line_error(r, 1, "/dev/kvm", "No such file")


def test_not_elf():
    r = run(["run", "--kernel", write("text.txt", b"just some text\n" * 100)])
    one_line_error(r, 1, "neither an ELF64 executable nor a Linux bzImage")
    r = run(["run", "--kernel", write("empty", b"")])
    one_line_error(r, 1, "neither an ELF64")


def test_wrong_elf_kind():
    r = run(["run", "--kernel", write("elf32", elf64([(0x100000, b"\xf4", 1)], cls=1))])
    one_line_error(r, 1, "not a 64-bit x86-64 ELF")
    r = run(["run", "--kernel", write("arm64", elf64([(0x100000, b"\xf4", 1)], machine=183))])
    one_line_error(r, 1, "not a 64-bit x86-64 ELF")


def test_truncated_elf():
    data = open(guest("hello"), "rb").read()
    # Cut inside the first loadable segment's data, wherever debug info lies.
    phoff, phnum = struct.unpack_from("<Q", data, 32)[0], struct.unpack_from("<H", data, 56)[0]
    for i in range(phnum):
        ptype, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", data, phoff + 56 * i)
        if ptype == 1 and filesz > 16:
            cut = off + filesz // 2
            break
    r = run(["run", "--kernel", write("trunc", data[:cut])])
    one_line_error(r, 1, "trunc")
    r = run(["run", "--kernel", write("trunc-hdr", data[:40])])
    one_line_error(r, 1, "truncated ELF header")


def test_mem_too_small_for_image():
    path = write("high.elf", elf64([(0x300000, b"\xf4" * 16, 0x100000)], entry=0x300000))
    r = run(["run", "--kernel", path, "--mem", "2M"])
    one_line_error(r, 1, "does not fit", "raise --mem")
    r = run(["run", "--kernel", path, "--mem", "1M"])
    one_line_error(r, 2, "--mem", "too small")


def test_mem_larger_than_host():
    r = run(["run", "--kernel", guest("hello"), "--mem", "64T"])
    one_line_error(r, 1, "--mem", "more than this host")


def test_bad_cpus():
    r = run(["run", "--kernel", guest("hello"), "--cpus", "0"])
    one_line_error(r, 2, "--cpus")
    r = run(["run", "--kernel", guest("hello"), "--cpus", "100000"])
    one_line_error(r, 1, "--cpus", "out of range")


def test_bad_command_line():
    for args, word in [([], "unknown"), (["bogus"], "unknown command"),
                       (["run"], "--kernel"), (["run", "--kernel"], "needs a value"),
                       (["run", "--kernel", "x", "--frobnicate"], "--frobnicate"),
                       (["run", "--kernel", "x", "--console", "tty"], "--console"),
                       (["run", "--kernel", "x", "--mem", "lots"], "--mem")]:
        r = run(args)
        if not args:
            check(r.code == 2 and "Usage" in r.err, "vmm without a command prints usage",
                  r.describe())
            continue
        one_line_error(r, 2, word)


def test_guest_triple_fault():
    r = run(["run", "--kernel", guest("hello"), "--cmdline", "hello.crash=1"], timeout=60)
    check("hello from vmm guest" in r.out, "guest output before the crash", r.describe())
    one_line_error(r, 3, "triple-fault")


if __name__ == "__main__":
    try:
        main([test_missing_kernel, test_kernel_is_directory, test_unreadable_kernel,
              test_no_dev_kvm, test_not_elf, test_wrong_elf_kind, test_truncated_elf,
              test_mem_too_small_for_image, test_mem_larger_than_host, test_bad_cpus,
              test_bad_command_line, test_guest_triple_fault])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
