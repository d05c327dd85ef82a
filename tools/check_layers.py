#!/usr/bin/env python3
"""Fails when a module includes a salvo module it may not depend on (tools/layers.toml),
or another module's private header. Run from anywhere; prints one line per violation."""
import pathlib
import re
import sys
import tomllib

root = pathlib.Path(__file__).resolve().parent.parent
allowed = tomllib.loads((root / "tools/layers.toml").read_text())["modules"]
public_inc = re.compile(r'#\s*include\s*<salvo/([a-z_]+)/')
private_inc = re.compile(r'#\s*include\s*"([a-z_]+)/')
bad = []

def check(module, path):
    deps = allowed.get(module)
    if deps is None:
        bad.append(f"{path}: module '{module}' is not listed in tools/layers.toml")
        return
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        m = public_inc.search(line)
        if m and m.group(1) != module and "*" not in deps and m.group(1) not in deps:
            bad.append(f"{path}:{n}: '{module}' may not depend on '{m.group(1)}'")
        m = private_inc.search(line)
        if m and m.group(1) in allowed and m.group(1) != module:
            bad.append(f"{path}:{n}: private header of '{m.group(1)}' used in '{module}'")

for base in ("src", "include/salvo"):
    d = root / base
    if not d.exists():
        continue
    for mod_dir in sorted(p for p in d.iterdir() if p.is_dir()):
        for f in sorted(mod_dir.rglob("*")):
            if f.suffix in (".h", ".cc"):
                check(mod_dir.name, f)

for line in bad:
    print(line)
if bad:
    sys.exit(1)
print(f"check_layers: ok ({len(allowed)} modules)")
