#!/usr/bin/env bash
# Set up (see setup.sh), check lint, formatting and types, and run the whole test suite
# with coverage (printed, no threshold; subprocesses included).  Extra arguments go to pytest.
# Set ARGONFS_TEST_MONGO_URI=mongodb://... to run the store tests against a real mongod.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check argonfs tests scripts
.venv/bin/ruff format --check argonfs tests scripts
.venv/bin/mypy
# Coverage counts the suite's subprocesses too (pyproject.toml, [tool.coverage.run]): each
# writes a data file under build/coverage, combined before the report.  Start clean, so a
# file an interrupted run left there cannot count.
rm -rf build/coverage
exec .venv/bin/python -m pytest --cov --cov-report=term "$@"
