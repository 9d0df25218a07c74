#!/usr/bin/env python3
"""Counts the code lines of a crate's sources the way ARCHITECTURE.md states them: non-blank lines
that are not comments, outside #[cfg(test)] modules. Usage: core-lines.py [--max N] [DIR...]
(default nano/src); with --max, exits 1 when the total is over N."""
import sys,re,os
def count(path):
    lines=open(path).read().split('\n')
    n=0; skip_depth=None; depth=0; pending_cfg=False
    for l in lines:
        s=l.strip()
        if skip_depth is not None:
            depth+=l.count('{')-l.count('}')
            if depth<=skip_depth: skip_depth=None
            continue
        if s=='#[cfg(test)]': pending_cfg=True; continue
        if pending_cfg:
            pending_cfg=False
            if s.startswith('mod '):
                skip_depth=depth; depth+=l.count('{')-l.count('}'); continue
        depth+=l.count('{')-l.count('}')
        if not s or s.startswith('//'): continue
        n+=1
    return n
args=sys.argv[1:]
limit=None
if args[:1]==["--max"]:
    limit=int(args[1]); args=args[2:]
tot=0
for d in (args or ["nano/src"]):
    for root,_,fs in os.walk(d):
        for f in sorted(fs):
            if f.endswith('.rs'):
                c=count(os.path.join(root,f)); tot+=c; print(c,os.path.join(root,f))
print(tot)
if limit is not None and tot>limit:
    sys.exit(f"the core has {tot} code lines, over its limit of {limit} (ARCHITECTURE.md)")
