#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Collect TAP from the test suites and sum it up.

  tap.py vm KVER OUTDIR        guest.log + console.log -> OUTDIR/results.tap
  tap.py log SUITE LOG RC OUT  a host suite's output (and exit code) -> OUT
  tap.py summary FILE...       one line: N passed, N failed[, N skipped]
  tap.py reports CONSOLE_LOG   each kernel report in a console log, with
                               its context (make check-debug)

Every results file holds 'ok - ...' / 'not ok - ...' lines, one per test
case, and '# ...' comments, so the summary is a plain count.
"""
import re
import sys

RESULT = re.compile(r'^(not ok|ok)\s+\d+\s*-?\s*(.*)$')
PLAN = re.compile(r'^1\.\.(\d+)')
# What a healthy guest kernel never prints. The lockdep lines are for
# the debug kernel (make check-debug): its other reports (KASAN, "BUG:
# sleeping function called from invalid context", "WARNING: possible
# circular locking dependency") are caught by the general patterns.
BAD_KERNEL = re.compile(
    r'(Oops|BUG:|WARNING:|Kernel panic|general protection fault|'
    r'Call Trace:|UBSAN:|KASAN:|INFO: task .* blocked|soft lockup|'
    r'hard LOCKUP|rcu_.* self-detected|cut here \]|'
    r'INFO: possible|INFO: lockdep|DEBUG_LOCKS_WARN_ON|'
    r'inconsistent lock state|turning off the locking correctness)')
# Lines of a report's context shown by 'reports'.
REPORT_BEFORE, REPORT_AFTER = 3, 60


def parse_block(name, lines, rc):
    """Test cases of one TAP producer; crashes and missing cases fail."""
    out, plan, failed = [], None, 0
    for line in lines:
        m = PLAN.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            continue
        m = RESULT.match(line)
        if not m:
            continue
        ok, desc = m.group(1) == 'ok', m.group(2).strip()
        failed += not ok
        out.append('%s - %s: %s' % ('ok' if ok else 'not ok', name, desc))
    if plan is not None and len(out) < plan:
        for i in range(len(out), plan):
            out.append('not ok - %s: case %d never reported (crash?)'
                       % (name, i + 1))
            failed += 1
    if rc != 0 and failed == 0:
        out.append('not ok - %s: exited with status %s' % (name, rc))
    if plan is None and not out:
        out.append('not ok - %s: printed no TAP' % name)
    return out


def vm(kver, outdir):
    try:
        guest = open(outdir + '/guest.log', errors='replace').read()
    except OSError:
        guest = ''
    try:
        console = open(outdir + '/console.log', errors='replace').read()
    except OSError:
        console = ''
    results, name, block = [], None, []
    for line in guest.splitlines():
        if line.startswith('=== VMIG-BEGIN '):
            name, block = line.split()[2], []
        elif line.startswith('=== VMIG-END ') and name:
            rc = line.rsplit('rc=', 1)[-1]
            rc = int(rc) if rc.isdigit() else 1
            results += parse_block('%s %s' % (kver, name), block, rc)
            name = None
        elif name:
            block.append(line)
    if name:
        results += parse_block('%s %s' % (kver, name), block, 1)
        results.append('not ok - %s %s: guest stopped inside this test'
                       % (kver, name))
    setup_ok = 'VMIG-BOOTED' in guest and 'VMIG-SETUP-FAILED' not in guest
    results.append('%s - %s: guest booted and test bed set up'
                   % ('ok' if setup_ok else 'not ok', kver))
    done = 'VMIG-DONE' in guest
    results.append('%s - %s: guest finished within its time limit'
                   % ('ok' if done else 'not ok', kver))
    bad = [l for l in console.splitlines() if BAD_KERNEL.search(l)]
    results.append('%s - %s: kernel log free of oops, WARN, panic, hang%s'
                   % ('not ok' if bad else 'ok', kver,
                      (' (first: %s)' % bad[0].strip()) if bad else ''))
    # Boots that never reached init (selftests/vm/machine.sh) and were
    # tried again: shown, as TAP comments, not counted.
    try:
        retries = open(outdir + '/boot_retries', errors='replace').read()
    except OSError:
        retries = ''
    for line in retries.splitlines():
        results.append('# %s: %s' % (kver, line))
    with open(outdir + '/results.tap', 'w') as f:
        f.write('\n'.join(results) + '\n')
    for r in results:
        if r.startswith('not ok') or r.startswith('#'):
            print(r)


def log(suite, path, rc, out):
    lines = open(path, errors='replace').read().splitlines()
    # Several binaries may print one plan each: count cases, not plans.
    results = []
    for line in lines:
        m = RESULT.match(line)
        if m:
            results.append('%s - %s: %s' % (m.group(1), suite,
                                            m.group(2).strip()))
    if int(rc) != 0 and not any(r.startswith('not ok') for r in results):
        results.append('not ok - %s: exited with status %s' % (suite, rc))
    if not results:
        results.append('not ok - %s: printed no TAP' % suite)
    with open(out, 'w') as f:
        f.write('\n'.join(results) + '\n')


def reports(path):
    lines = open(path, errors='replace').read().splitlines()
    shown = -1
    for i, line in enumerate(lines):
        if i <= shown or not BAD_KERNEL.search(line):
            continue
        first = max(i - REPORT_BEFORE, shown + 1)
        shown = min(i + REPORT_AFTER, len(lines) - 1)
        print('--- %s:%d' % (path, i + 1))
        for text in lines[first:shown + 1]:
            print(text.rstrip('\r'))


def summary(files):
    passed = failed = skipped = 0
    for path in files:
        for line in open(path, errors='replace'):
            if line.startswith('not ok'):
                failed += 1
            elif line.startswith('ok'):
                if re.search(r'#\s*SKIP', line, re.I):
                    skipped += 1
                else:
                    passed += 1
    s = '%d passed, %d failed' % (passed, failed)
    if skipped:
        s += ', %d skipped' % skipped
    print(s)
    return 1 if failed or not passed else 0


def main(argv):
    if len(argv) == 4 and argv[1] == 'vm':
        vm(argv[2], argv[3])
        return 0
    if len(argv) == 6 and argv[1] == 'log':
        log(argv[2], argv[3], argv[4], argv[5])
        return 0
    if len(argv) == 3 and argv[1] == 'reports':
        reports(argv[2])
        return 0
    if len(argv) >= 2 and argv[1] == 'summary':
        return summary(argv[2:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
