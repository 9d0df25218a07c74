#!/usr/bin/env python3
"""Runs docs/your-own-services.md as a newcomer would: in a scratch directory outside the
repository, it writes every file block (a fenced block whose first line is `// file: PATH` or
`# file: PATH`) and runs every `sh` block, in the order they appear. `NANO` in a file stands for
this checkout. Exits non-zero at the first command that fails.

Usage: guide.py [GUIDE] (default docs/your-own-services.md)
"""
import os, re, subprocess, sys, tempfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
guide = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "docs", "your-own-services.md")
text = open(guide, encoding="utf-8").read()
blocks = re.findall(r"^```(\w+)\n(.*?)^```$", text, flags=re.S | re.M)
if not blocks:
    sys.exit(f"{guide}: no blocks found")

scratch = tempfile.mkdtemp(prefix="nano-guide-")
cwd = scratch
# The guide's crate gets its own lockfile and target directory, as a new team's would.
env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
ran = 0
for lang, body in blocks:
    first, _, rest = body.partition("\n")
    found = re.match(r"^(?://|#) file: (\S+)$", first.strip())
    if found:
        path = os.path.join(cwd, found.group(1))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(rest.replace("NANO/", root + "/"))
        print(f"== wrote {found.group(1)}", flush=True)
    elif lang == "sh":
        for line in body.splitlines():
            command = line.split("#")[0].strip() if not line.lstrip().startswith("./") else line.strip()
            if not command:
                continue
            print(f"== {command}", flush=True)
            if command.startswith("cd "):
                cwd = os.path.join(cwd, command[3:].strip())
                continue
            result = subprocess.run(command, shell=True, cwd=cwd, env=env)
            if result.returncode != 0:
                sys.exit(f"guide command failed ({result.returncode}): {command}")
            ran += 1
print(f"the guide ran: {ran} commands in {scratch}")
