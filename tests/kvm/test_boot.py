"""Boot: guest-kit guests under the real vmm, console modes, exit codes."""

import os
import re
import tempfile

from kvmtest import check, guest, main, run


def test_hello_one_vcpu():
    r = run(["run", "--kernel", guest("hello")])
    check(r.code == 0, "hello should exit 0 through the i8042 reset", r.describe())
    lines = r.out.splitlines()
    check(lines and lines[0] == "hello from vmm guest", "first console line", r.describe())
    check("cpu 0 online" in lines, "cpu 0 online", r.describe())
    check("all 1 vCPUs done" in lines, "summary line", r.describe())
    check(r.err == "", "vmm should be silent on a clean run", r.describe())


def test_cmdline_and_mem_reach_the_guest():
    r = run(["run", "--kernel", guest("hello"), "--mem", "256M",
             "--cmdline", "alpha=1 beta=two  gamma"])
    check(r.code == 0, "exit 0", r.describe())
    m = re.search(r'hello: 1 vCPUs, (\d+) MiB RAM, cmdline "(.*)"', r.out)
    check(m, "summary line with RAM and cmdline", r.describe())
    check(m.group(2) == "alpha=1 beta=two  gamma", "cmdline passed verbatim", r.describe())
    # e820 RAM is --mem minus the legacy hole below 1 MiB.
    check(255 <= int(m.group(1)) <= 256, "RAM size from e820 matches --mem", r.describe())


def test_mem_above_4g_hole():
    r = run(["run", "--kernel", guest("hello"), "--mem", "5G"])
    check(r.code == 0, "exit 0 with RAM split around the MMIO hole", r.describe())
    m = re.search(r"(\d+) MiB RAM", r.out)
    check(m and 5119 <= int(m.group(1)) <= 5120, "all 5 GiB visible in e820", r.describe())


def test_console_file_and_none():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "console.log")
        r = run(["run", "--kernel", guest("hello"), "--console", "file=" + path])
        check(r.code == 0, "exit 0", r.describe())
        check(r.out == "", "console=file writes nothing to stdout", r.describe())
        with open(path) as f:
            text = f.read()
        check(text.startswith("hello from vmm guest\n"), "console file content", text)
        check("all 1 vCPUs done" in text, "console file complete", text)
    r = run(["run", "--kernel", guest("hello"), "--console", "none"])
    check(r.code == 0 and r.out == "", "console=none: silent, exit 0", r.describe())


def test_boot_is_fast():
    # Not a benchmark (scripts/bench-boot is); a guard against gross regressions.
    r = run(["run", "--kernel", guest("hello")])
    check(r.code == 0 and r.secs < 5, "hello should finish in well under 5 s", r.describe())


def test_help():
    r = run(["--help"])
    check(r.code == 0 and "run" in r.out and "status" in r.out, "vmm --help", r.describe())
    r = run(["run", "--help"])
    for opt in ["--kernel", "--cmdline", "--mem", "--cpus", "--api-sock", "--console"]:
        check(opt in r.out, "vmm run --help documents " + opt, r.describe())
    check(r.code == 0, "vmm run --help exits 0", r.describe())


if __name__ == "__main__":
    main([test_hello_one_vcpu, test_cmdline_and_mem_reach_the_guest, test_mem_above_4g_hole,
          test_console_file_and_none, test_boot_is_fast, test_help])
