#!/usr/bin/env bash
# Set up, then run the main job on the embedded default server: a demo repository
# with imported sample data, a branch with changes, a bundle with a label, an export,
# and the repository mounted as files (shown, written to, unmounted).
# Re-runnable.  Uses repository "demo" so your own "argonfs" repository is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" ARGONFS_REPO=demo
work=$(mktemp -d)
was_running=$(argonfs server status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["running"])')
mnt="$work/mnt"
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then argonfs umount "$mnt" || fusermount3 -u -z "$mnt"; fi
  rm -rf "$work"
  # leave the embedded server as we found it
  [ "$was_running" = "True" ] || argonfs server stop >/dev/null
}
trap cleanup EXIT
step() { printf '\n$ %s\n' "$*"; "$@"; }

.venv/bin/python scripts/make_sample.py "$work/sample"
# a demo repository left by an older argonfs is upgraded first (on a fresh machine there is none)
argonfs upgrade >/dev/null 2>&1 || true
step argonfs init
step argonfs status
step argonfs import "$work/sample"
argonfs branch list --json | grep -q '"name": "experiment"' || step argonfs branch create experiment
echo '{"_id": 0, "title": "On vision #0 (revised)", "year": 2026}' > "$work/p0.json"
step argonfs put experiment papers "$work/p0.json"
argonfs cat experiment papers 1 >/dev/null 2>&1 && step argonfs rm experiment papers 1
step argonfs ls main
step argonfs ls main papers --limit 3
step argonfs ls experiment papers --limit 3
step argonfs cat main papers 0
step argonfs cat experiment papers 0
bundle=$(argonfs bundle create experiment -m "demo snapshot" --label production)
echo "bundle: $bundle (label production)"
step argonfs bundle show "$bundle"
step argonfs export production "$work/export"
echo "exported files: $(find "$work/export" -name '*.json' | wc -l)"
step argonfs branch list
step argonfs log experiment -n 5
step argonfs diff main experiment --stat

# The repository as files
mkdir -p "$mnt"
step argonfs mount "$mnt"
step ls "$mnt" "$mnt/branches" "$mnt/labels"
step ls -l "$mnt/branches/experiment"
printf '\n$ ls -l %s | sed -n 1,4p\n' "$mnt/branches/experiment/papers"
ls -l "$mnt/branches/experiment/papers" | sed -n 1,4p  # not head: no SIGPIPE under pipefail
step cat "$mnt/labels/production/papers/0.json"
printf '\n$ echo %s > %s\n' "'{\"title\": \"written as a file\"}'" "$mnt/branches/experiment/papers/from-shell.json"
echo '{"title": "written as a file"}' > "$mnt/branches/experiment/papers/from-shell.json"
step cat "$mnt/branches/experiment/papers/from-shell.json"
step argonfs cat experiment papers from-shell
printf '\n$ echo not-json > .../papers/0.json   # rejected, the previous version stays\n'
(echo not-json > "$mnt/branches/experiment/papers/0.json") 2>&1 || true
log=$(.venv/bin/python -c 'import sys; from argonfs.daemon import log_file; print(log_file(sys.argv[1]))' "$mnt")
echo "daemon log: $(grep rejected "$log" | tail -1 | cut -c1-160)"
step head -3 "$mnt/branches/experiment/papers/0.json"
step argonfs umount "$mnt"
