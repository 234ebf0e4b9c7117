#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compare the hand-written genetlink tables with ynl-gen's output.

  nl-policy-check.py YNL_GEN.c drivers/vfio-mig/nl_policy.c

Every nla_policy array must have the same entries, and every command the
same handlers (do/dump), policy, maxattr and admin permission. ynl-gen
emits split ops (6.2+); we use genl_ops, which also build on 6.1, so a
command's do and dump share the do's policy. Prints TAP lines.
"""
import re
import sys

POLICY = re.compile(r'const struct nla_policy (\w+)\[([^\]]+)\] = \{(.*?)\n\};',
                    re.S)
ENTRY = re.compile(r'\[(\w+)\]\s*=\s*(.+?),\s*$', re.M)
OPS = re.compile(r'struct genl_(?:split_)?ops \w+\[\] = \{(.*?)\n\};', re.S)
BLOCK = re.compile(r'\{(.*?)\}', re.S)
FIELD = re.compile(r'\.(\w+)\s*=\s*([^,\n]+),')


def norm(s):
    return re.sub(r'\s+', ' ', s.strip())


def policies(text):
    out = {}
    for name, size, body in POLICY.findall(text):
        out[name] = (norm(size), {k: norm(v) for k, v in ENTRY.findall(body)})
    return out


def ops(text):
    m = OPS.search(text)
    out = {}
    for block in BLOCK.findall(m.group(1)) if m else []:
        f = {k: norm(v) for k, v in FIELD.findall(block + ',')}
        cmd = f.get('cmd')
        if not cmd:
            continue
        o = out.setdefault(cmd, {'do': False, 'dump': False, 'admin': False,
                                 'policy': None, 'maxattr': None})
        o['do'] |= 'doit' in f
        o['dump'] |= 'dumpit' in f
        o['admin'] |= 'GENL_ADMIN_PERM' in f.get('flags', '')
        if 'policy' in f and ('doit' in f or o['policy'] is None):
            o['policy'] = f['policy']
            o['maxattr'] = f.get('maxattr')
    return out


def main(gen_path, ours_path):
    gen, ours = open(gen_path).read(), open(ours_path).read()
    ok = True
    gp, op = policies(gen), policies(ours)
    for name, (size, entries) in sorted(gp.items()):
        good = name in op and op[name] == (size, entries)
        ok &= good
        print('%s - netlink policy %s matches the spec' %
              ('ok' if good else 'not ok', name))
        if not good:
            print('#   ynl-gen: %s %s' % (size, entries))
            print('#   ours:    %s' % (op.get(name),))
    extra = sorted(set(op) - set(gp))
    print('%s - no netlink policy beyond the spec%s' %
          ('not ok' if extra else 'ok', (' (%s)' % ', '.join(extra)) if extra else ''))
    ok &= not extra
    go, oo = ops(gen), ops(ours)
    for cmd, g in sorted(go.items()):
        o = oo.get(cmd)
        good = o is not None and all(o[k] == g[k] for k in
                                     ('do', 'dump', 'admin', 'policy', 'maxattr'))
        ok &= good
        print('%s - netlink operation %s matches the spec' %
              ('ok' if good else 'not ok', cmd))
        if not good:
            print('#   ynl-gen: %s\n#   ours:    %s' % (g, o))
    extra = sorted(set(oo) - set(go))
    print('%s - no netlink operation beyond the spec%s' %
          ('not ok' if extra else 'ok', (' (%s)' % ', '.join(extra)) if extra else ''))
    ok &= not extra
    return 0 if ok else 1


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
