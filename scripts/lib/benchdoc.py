"""Shared by the benchmark scripts (scripts/lib/bench_*.py): the host
description line and the rewrite of one marked section of docs/performance.md."""

import os
import platform
import re
import subprocess

DOC = "docs/performance.md"


def qemu_version():
    try:
        out = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True)
    except OSError:
        return "qemu ?"
    return out.stdout.splitlines()[0] if out.stdout else "qemu ?"


def host_description():
    """'<node>, <n> CPUs, kernel <release>, <QEMU version>, KVM PVM (software)|hardware'."""
    return "%s, %d CPUs, kernel %s, %s, KVM %s" % (
        platform.node(), os.cpu_count(), platform.release(), qemu_version(),
        "PVM (software)" if os.path.exists("/sys/module/kvm_pvm") else "hardware")


def update_section(name, body, doc=DOC):
    """Replace the text between <!-- NAME:begin --> and <!-- NAME:end --> in doc
    with body (appended as a new marked block if the markers are missing)."""
    begin, end = "<!-- %s:begin -->" % name, "<!-- %s:end -->" % name
    text = open(doc).read() if os.path.exists(doc) else "# Performance\n"
    block = begin + "\n" + body + end
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda m: block, text,
                      flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(doc, "w") as f:
        f.write(text)
