#!/usr/bin/env python3
"""Turn a kvmmu QEMU console log into per-suite results.

usage: results.py LOG --arch ARCH --layer LAYER [--kunit-tree DIR]
                  [--kunit-suites N] [--allow-taint MASK]

Prints one line per suite and check, then
    RESULT <layer> <arch> <passed> <failed> <skipped>
Every KTAP test line of every selftest counts; so does every KUnit case
(the KUnit KTAP is also run through the kernel tree's own
tools/testing/kunit/kunit.py parse, which must succeed). The run itself
contributes checks: it completed, the kernel log is free of warnings,
oopses, KASAN, lockdep and sleep-in-atomic reports, and the taint is only
what loading an out-of-tree, unsigned module (and running KUnit) causes.
"""
import argparse
import os
import re
import subprocess
import sys

BAD = [
    r"WARNING: CPU:", r"cut here ]", r"BUG:", r"Oops", r"kernel BUG", r"UBSAN:",
    r"general protection fault", r"Kernel panic", r"possible recursive locking",
    r"circular locking dependency", r"inconsistent lock state",
    r"sleeping function called from invalid context", r"scheduling while atomic",
    r"non-static key", r"DEBUG_LOCKS_WARN_ON", r"list_(add|del) corruption",
    r"refcount_t:", r"lock held when returning to user space",
    r"suspicious RCU usage", r"Call Trace",
]
BAD_RE = re.compile("|".join(BAD))
TS_RE = re.compile(r"^\[\s*\d+\.\d+\]\s?")
ANSI_RE = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|c)")
# O (out-of-tree), E (unsigned module), N (KUnit test ran)
DEFAULT_TAINT = (1 << 12) | (1 << 13) | (1 << 18)


class Tally:
    def __init__(self, arch, layer):
        self.arch, self.layer = arch, layer
        self.passed = self.failed = self.skipped = 0

    def line(self, ok, what, detail=""):
        tag = "PASS" if ok else "FAIL"
        print(f"  [{tag}] {self.arch:7} {self.layer:6} {what}{(' ' + detail) if detail else ''}")

    def check(self, ok, what, detail=""):
        self.passed += ok
        self.failed += not ok
        self.line(ok, what, detail)


def ktap_counts(lines, indent=""):
    p = f = s = 0
    names = []
    for ln in lines:
        m = re.match(rf"^{indent}(not ok|ok) \d+ (?:- )?(.*)$", ln)
        if not m:
            continue
        if "# SKIP" in m.group(2):
            s += 1
        elif m.group(1) == "ok":
            p += 1
        else:
            f += 1
            names.append(m.group(2))
    return p, f, s, names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--arch", required=True)
    ap.add_argument("--layer", required=True)
    ap.add_argument("--kunit-tree")
    ap.add_argument("--kunit-suites", type=int, default=0)
    ap.add_argument("--allow-taint", type=int, default=DEFAULT_TAINT)
    a = ap.parse_args()
    t = Tally(a.arch, a.layer)

    raw = open(a.log, errors="replace").read().splitlines()
    # Console lines: strip printk timestamps for matching.
    lines = [TS_RE.sub("", ANSI_RE.sub("", ln)) for ln in raw]
    lines = [ln[ln.index("KVMMU-"):] if "KVMMU-" in ln else ln for ln in lines]

    t.check(any(ln.startswith("KVMMU-BEGIN") for ln in lines), "boot reached /init")
    for ln in lines:
        if ln.startswith("KVMMU-FAIL"):
            t.check(False, "init step", ln[len("KVMMU-FAIL "):])

    # Selftests.
    i = 0
    while i < len(lines):
        m = re.match(r"^KVMMU-SELFTEST-BEGIN (\S+)", lines[i])
        if not m:
            i += 1
            continue
        name, body, rc = m.group(1), [], None
        i += 1
        while i < len(lines):
            e = re.match(r"^KVMMU-SELFTEST-END (\S+) rc=(\d+)", lines[i])
            if e:
                rc = int(e.group(2))
                break
            body.append(lines[i])
            i += 1
        p, f, s, bad = ktap_counts(body)
        t.passed += p
        t.failed += f
        t.skipped += s
        extra = ""
        if rc is None:
            t.failed += 1
            extra = "(did not finish)"
        elif rc != 0 and f == 0:
            t.failed += 1
            extra = f"(exit status {rc})"
        ok = rc == 0 and f == 0
        t.line(ok, f"selftest {name}", f"({p} passed, {f} failed, {s} skipped) {extra}"
               + ("".join(f"\n           not ok: {b}" for b in bad)))

    # KUnit: suites' KTAP from debugfs, between markers.
    suites = []
    i = 0
    while i < len(lines):
        m = re.match(r"^KVMMU-KUNIT-BEGIN (\S+)", lines[i])
        if not m:
            i += 1
            continue
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith("KVMMU-KUNIT-END"):
            body.append(lines[i])
            i += 1
        suites.append((m.group(1), body))
    for name, body in suites:
        p, f, s, bad = ktap_counts(body, indent=r"\s+")
        t.passed += p
        t.failed += f
        t.skipped += s
        t.line(f == 0 and p + s > 0, f"kunit {name}", f"({p} passed, {f} failed, {s} skipped)"
               + ("".join(f"\n           not ok: {b}" for b in bad)))
    if a.kunit_suites:
        t.check(len(suites) == a.kunit_suites, "kunit all suites ran",
                f"({len(suites)} of {a.kunit_suites})")
    if suites and a.kunit_tree:
        # Renumber the suites' own top-level result lines into one document.
        doc = ["KTAP version 1", f"1..{len(suites)}"]
        for n, (name, body) in enumerate(suites, 1):
            for ln in body:
                # debugfs repeats a document header per suite; keep one.
                if ln == "KTAP version 1" or re.match(r"^1\.\.\d+$", ln):
                    continue
                if re.match(r"^(ok|not ok) \d+ ", ln):
                    ln = re.sub(r"^(ok|not ok) \d+ ", rf"\g<1> {n} ", ln)
                doc.append(ln)
        tool = os.path.join(a.kunit_tree, "tools/testing/kunit/kunit.py")
        r = subprocess.run([sys.executable, tool, "parse"], input="\n".join(doc) + "\n",
                           capture_output=True, text=True)
        summary = [ln for ln in r.stdout.splitlines() if "Testing complete" in ln]
        t.check(r.returncode == 0, "kunit.py parse",
                re.sub(r"\x1b\[[0-9;]*m", "", summary[-1].strip()) if summary else r.stderr[-300:])

    done = any(ln.startswith("KVMMU-DONE") for ln in lines)
    timeout = any(ln.startswith("KVMMU-TIMEOUT") for ln in lines)
    t.check(done, "run completed", "(timeout)" if timeout else "" if done else "(crashed or hung)")
    hits = [ln for ln in lines if BAD_RE.search(ln)]
    t.check(not hits, "kernel log clean (no WARN/BUG/oops/KASAN/lockdep/atomic-sleep)",
            "".join(f"\n           {h}" for h in hits[:12]))
    taint = [ln for ln in lines if ln.startswith("KVMMU-TAINT ")]
    if taint:
        v = int(taint[-1].split()[1])
        allow = a.allow_taint
        # VFIO's no-IOMMU mode (selftests/passthrough/vfio_test) taints
        # the kernel TAINT_USER by design, and says so on the console.
        if any("Adding kernel taint for vfio-noiommu group" in ln for ln in lines):
            allow |= 1 << 6
        t.check(v & ~allow == 0, "taint only out-of-tree/unsigned/test (and vfio-noiommu)",
                f"(tainted={v})")
    else:
        t.check(False, "taint read")
    print(f"RESULT {a.layer} {a.arch} {t.passed} {t.failed} {t.skipped}")


if __name__ == "__main__":
    main()
