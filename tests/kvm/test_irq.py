"""Device interrupts reach the guest: virtio-rng completions signalled through
the in-kernel IOAPIC (edge), none lost, none repeated, to either vCPU."""

import re

from kvmtest import check, guest, main, run


def irq_lines(out):
    return [l for l in out.splitlines() if l.startswith("IRQ rng mode=")]


def test_rng_interrupts_one_vcpu():
    r = run(["run", "--kernel", guest("irqtest"), "--rng"], timeout=120)
    check(r.code == 0 and "IRQTEST result=PASS" in r.out, "irqtest passes", r.describe())
    edge = [l for l in irq_lines(r.out) if "mode=edge" in l]
    check(edge, "edge-triggered runs reported", r.out)
    for l in edge:
        m = re.search(r"requests=(\d+) interrupts=(\d+)", l)
        check(m and m.group(1) == m.group(2), "one interrupt per request: " + l, r.out)


def test_rng_interrupts_to_second_vcpu():
    r = run(["run", "--kernel", guest("irqtest"), "--rng", "--cpus", "2"], timeout=120)
    check(r.code == 0 and "IRQTEST result=PASS" in r.out, "irqtest passes on 2 vCPUs",
          r.describe())
    check(any("dest=1" in l for l in irq_lines(r.out)), "routed to APIC id 1", r.out)


if __name__ == "__main__":
    main([test_rng_interrupts_one_vcpu, test_rng_interrupts_to_second_vcpu])
