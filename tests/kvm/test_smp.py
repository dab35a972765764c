"""Several vCPUs doing real work at once: hello's per-vCPU sums and the
memory workload's page rewrites on every vCPU."""

import re

from kvmtest import check, guest, main, run


def test_hello_two_vcpus():
    r = run(["run", "--kernel", guest("hello"), "--cpus", "2"])
    check(r.code == 0, "exit 0", r.describe())
    for line in ["cpu 0 online", "cpu 1 online", "all 2 vCPUs done"]:
        check(line in r.out.splitlines(), "console shows %r" % line, r.describe())
    check("hello: 2 vCPUs" in r.out, "the guest counts 2 vCPUs", r.describe())


def test_hello_four_vcpus_overcommitted():
    # More vCPUs than host cores: threads must still all make progress.
    r = run(["run", "--kernel", guest("hello"), "--cpus", "4"], timeout=120)
    check(r.code == 0 and "all 4 vCPUs done" in r.out, "4 vCPUs on 2 cores", r.describe())


def test_memtest_two_vcpus():
    r = run(["run", "--kernel", guest("memtest"), "--cpus", "2", "--mem", "256M",
             "--cmdline", "mem.mib=64 mem.secs=3 mem.hb_ms=500"], timeout=120)
    check(r.code == 0, "memtest exits 0", r.describe())
    check("MEMTEST result=PASS" in r.out, "memtest passes", r.describe())
    check("MISMATCH" not in r.out, "no mismatches", r.describe())
    rewrites = {}
    for m in re.finditer(r"HB cpu=(\d+) seq=\d+ t_ms=\d+ rewrites=(\d+) verified=(\d+) errors=(\d+)",
                         r.out):
        cpu, rw, errs = int(m.group(1)), int(m.group(2)), int(m.group(4))
        check(errs == 0, "heartbeat reports no errors", r.describe())
        rewrites[cpu] = max(rewrites.get(cpu, 0), rw)
    check(set(rewrites) == {0, 1}, "heartbeats from both vCPUs", r.describe())
    check(all(v > 1000 for v in rewrites.values()),
          "both vCPUs rewrote pages (%s)" % rewrites, r.describe())


if __name__ == "__main__":
    main([test_hello_two_vcpus, test_hello_four_vcpus_overcommitted, test_memtest_two_vcpus])
