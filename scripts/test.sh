#!/usr/bin/env bash
# Set up (see setup.sh) and run the whole test suite.  Extra arguments go to pytest.
# Set ARGONFS_TEST_MONGO_URI=mongodb://... to run the store tests against a real mongod.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
