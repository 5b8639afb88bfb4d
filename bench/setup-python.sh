#!/usr/bin/env bash
# Creates ./.venv at the repo root with the Python reference libraries for the
# privacy accountants (dp-accounting, and opacus without torch).
# Usage: bash bench/setup-python.sh        (PYTHON=python3.11 to choose the interpreter)
# Idempotent: re-running reuses the venv and re-checks the pins.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$repo_root/bench/requirements.txt"
venv="$repo_root/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT

# Everything except opacus, with dependencies as pinned.
grep -v -i -E '^[[:space:]]*opacus([=<>!~ ]|$)' "$req" > "$tmp"
"${pip[@]}" install -r "$tmp"

# opacus alone, without torch & co.
opacus_pin="$(grep -i -E '^[[:space:]]*opacus[=<>!~]' "$req" | head -n 1 | tr -d '[:space:]')"
if [ -z "$opacus_pin" ]; then
    echo "setup-python.sh: no opacus pin in $req" >&2
    exit 1
fi
"${pip[@]}" install --no-deps "$opacus_pin"

# Sanity check: the libraries load, and opacus's RDP file is where we load it from.
"$venv/bin/python" - <<'PY'
import importlib.metadata as md, os, sysconfig
import dp_accounting  # noqa: F401
rdp = os.path.join(sysconfig.get_paths()["purelib"], "opacus", "accountants", "analysis", "rdp.py")
assert os.path.isfile(rdp), rdp
print("python venv ready:", ", ".join(f"{p} {md.version(p)}" for p in ("dp-accounting", "opacus", "numpy", "scipy")))
PY
