#!/usr/bin/env bash
# Set up a development environment in .venv: system packages (Debian/Ubuntu, as root or
# with sudo) and argonfs with its console and test extras; the test extras include every
# ML integration's library (the "ml" extra: MLflow, wandb, CPU torch, datasets, dvc;
# about 1.3 GB and 90 s more).  Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# curl: the README's tour; chromium and chromium-driver: the console's browser tests;
# nodejs and npm: Azurite, the Azure Blob Storage emulator of the remote tests
for pkg in fuse3 libfuse3-dev pkg-config gcc rsync curl chromium chromium-driver; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# by command: a Node.js from elsewhere (e.g. NodeSource's nodejs, which ships npm and
# conflicts with Debian's npm package) is used as it is
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
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
# Azurite (npm), project-local under .cache/azurite (ignored by git); skipped when there.
if [ ! -x .cache/azurite/node_modules/.bin/azurite-blob ]; then
  echo "setup: installing Azurite (npm) into .cache/azurite" >&2
  mkdir -p .cache/azurite
  npm install --prefix .cache/azurite --no-audit --no-fund --silent azurite@3 </dev/null
fi
echo "setup: ready (.venv/bin/argonfs)" >&2
