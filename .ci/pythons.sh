#!/usr/bin/env bash
# CI, after the main run: the core suite on the other Pythons purepcap supports (issue 21):
# the oldest CPython (3.9, from pyenv), the newest CPython present, and PyPy (Debian's
# pypy3, which .ci/run installs). Each gets a fresh venv with purepcap (pip install ., so
# requires-python is checked too), pytest and hypothesis and nothing else, and runs
#   pytest -m "core and not heavy"   with the hypothesis profile "pythons" (10 examples)
# tests/conftest.py says what is core (every file but the extras' EXTRAS_TESTS) and what is
# heavy (HEAVY_TESTS: tcpdump/tshark oracles and a shrinker run, left to the main run).
# Every interpreter is run even when one fails; the exit status is non-zero if any failed
# or if 3.9 or PyPy is missing.
set -uo pipefail
cd "$(dirname "$0")/.."

pyenv_root="${PYENV_ROOT:-/root/.pyenv}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

version_of() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null; }

# the oldest supported CPython: the newest 3.9.x that pyenv has
oldest="$(ls -d "$pyenv_root"/versions/3.9.* 2>/dev/null | sort -V | tail -n 1)"
oldest="${oldest:+$oldest/bin/python}"
# the newest CPython: the highest plain 3.x.y under pyenv, or a python3.N on the PATH
newest=""
newest_v="0"
for py in "$pyenv_root"/versions/3.*/bin/python /usr/bin/python3.* /usr/local/bin/python3.*; do
  case "$py" in *-config|*t/bin/python|*-dev/bin/python) continue ;; esac
  [ -x "$py" ] || continue
  v="$(version_of "$py")" || continue
  [ -n "$v" ] || continue
  if [ "$(printf '%s\n%s\n' "$newest_v" "$v" | sort -V | tail -n 1)" = "$v" ] && [ "$v" != "$newest_v" ]; then
    newest="$py"
    newest_v="$v"
  fi
done
pypy="$(command -v pypy3 || true)"

failed=()
run_on() {  # NAME PYTHON
  local name="$1" py="$2" start=$SECONDS
  echo "=== core suite on $name: $py ($("$py" -c 'import sys; print(sys.version.replace(chr(10), " "))'))"
  if ! "$py" -m venv "$work/$name" \
     || ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$work/$name/bin/python" -m pip install -q . pytest hypothesis; then
    echo "=== $name: could not make the venv"
    failed+=("$name (venv)")
    return
  fi
  if CI=true HYPOTHESIS_PROFILE=pythons "$work/$name/bin/python" -m pytest -q -p no:cacheprovider \
       -m "core and not heavy" --durations=5; then
    echo "=== core suite on $name passed in $((SECONDS - start)) s"
  else
    echo "=== core suite on $name FAILED ($((SECONDS - start)) s)"
    failed+=("$name")
  fi
}

if [ -n "$oldest" ]; then run_on "cpython-oldest" "$oldest"; else failed+=("CPython 3.9 (not under $pyenv_root/versions)"); fi
if [ -n "$newest" ] && [ "$(version_of "$newest")" != "$(version_of "${oldest:-/nonexistent}")" ]; then
  run_on "cpython-newest" "$newest"
fi
if [ -n "$pypy" ]; then run_on "pypy" "$pypy"; else failed+=("PyPy (pypy3 not installed)"); fi

if [ "${#failed[@]}" -gt 0 ]; then
  echo "core suite failed or could not run on: ${failed[*]}"
  exit 1
fi
echo "core suite passed on every Python tried"
