#!/usr/bin/env bash
# CI for the oldest versions purepcap promises to work with, next to the main run (which
# has the newest): each job is a venv outside the repository with purepcap's extras
# installed from a copy of this checkout, pinned low, and runs the tests of what it pins.
#   intake07: intake 0.7 (the last release before intake 2) through the `dask` extra,
#             which must not pull intake 2 in; pandas kept below 3, so the newest pandas
#             2.x runs here too. Runs the Intake and Dask tests.
#   pandas20: the lowest pandas the extras allow (2.0.3) with the numpy and pyarrow of
#             its time (1.24, 14: the lowest the extras allow), on a Python that has
#             wheels for all three (3.11). Runs the DataFrame and Arrow tests.
# The corpus comparisons (a minute each) run in the main job only.
# pip resolving the pins against the extras is itself a test: an extra that forced
# intake>=2 or pandas>=2.1 would fail the install. Venvs are kept (in
# $PUREPCAP_COMPAT_DIR, default /tmp/purepcap-compat) and reused while the pins and
# pyproject.toml are unchanged: a fresh machine takes about a minute per venv.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${PUREPCAP_COMPAT_DIR:-${TMPDIR:-/tmp}/purepcap-compat}
mkdir -p "$work"

py=${PUREPCAP_COMPAT_PYTHON:-}
for candidate in "$py" /root/.pyenv/versions/3.11.7/bin/python "$(command -v python3.11 || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then py=$candidate; break; fi
done
if [ -z "$py" ] || ! "$py" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
  echo "compat: no Python 3.11 here (set PUREPCAP_COMPAT_PYTHON); the old-version jobs did not run" >&2
  exit 1
fi

# the package as pip sees it, copied so that building it leaves nothing in the checkout
src=$work/src
rm -rf "$src"
mkdir -p "$src"
cp -r pyproject.toml README.md purepcap "$src"/
find "$src" -name __pycache__ -prune -exec rm -rf {} +

job() {  # job NAME "PIP ARGS" TEST ARGS...
  local name=$1 pins=$2
  shift 2
  local venv=$work/$name
  local key
  key=$( (echo "$pins"; "$py" --version; cat pyproject.toml) | sha256sum | cut -c1-16)
  if [ "$(cat "$venv/.key" 2>/dev/null)" != "$key" ]; then
    echo "compat $name: making $venv ($pins)"
    rm -rf "$venv"
    "$py" -m venv "$venv"
    # shellcheck disable=SC2086 # the pins are words
    "$venv/bin/python" -m pip install -q --disable-pip-version-check $pins pytest hypothesis 2>&1 \
      | grep -v "^WARNING: Location" || true
    "$venv/bin/python" -c 'import purepcap' 2>/dev/null || { echo "compat $name: install failed" >&2; return 1; }
    echo "$key" > "$venv/.key"
  fi
  "$venv/bin/python" -c 'import importlib.metadata as m
print("compat", *(f"{d}=={m.version(d)}" for d in ("intake", "pandas", "numpy", "pyarrow", "dask")
                  if any(x.metadata["Name"].lower() == d for x in m.distributions())))'
  # run from the checkout: `python -m` puts it first on sys.path, ahead of the installed copy
  # (which is there for its entry points)
  "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
}

users="intake or concat or payload or pandas or arrow or polars or progress"  # test_users.py's share
job intake07 "$src[dask] intake==0.7.0 pandas<3" \
  tests/test_intake.py tests/test_intake_reader.py tests/test_dask.py tests/test_users.py::test_intake_module_on_old_intake_names_what_to_install \
  tests/test_users.py::test_concat_with_an_empty_partition_warns_nothing
job pandas20 "$src[pandas] pandas==2.0.3 numpy==1.24.4 pyarrow==14.0.2" \
  tests/test_dataframe.py tests/test_arrow.py tests/test_users.py \
  -k "not corpus and (test_dataframe or test_arrow or (($users) and not readme and not typed))"
