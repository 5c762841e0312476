#!/usr/bin/env bash
# Set up a development environment in .venv: system packages (Debian/Ubuntu, as root or
# with sudo) and argonfs with its console and test extras; the test extras include every
# ML integration's library (the "ml" extra: MLflow, wandb, CPU torch, datasets, dvc;
# about 1.3 GB and 90 s more).  Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# curl: the README's tour; chromium and chromium-driver: the console's browser tests
for pkg in fuse3 libfuse3-dev pkg-config gcc rsync curl chromium chromium-driver; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing system packages: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# editable_mode=compat: a path entry (not an import hook), so "import argonfs" finds the
# package even from a directory holding a folder named argonfs (the clone's parent)
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[console,test]' --config-settings editable_mode=compat
echo "setup: ready (.venv/bin/argonfs)" >&2
