"""CLI latency benchmark: how long `argonfs status` and `argonfs cat` take end to end on
the embedded server, next to baselines measured in the same run.

    .venv/bin/python scripts/bench_cli.py [--repeat 15]

It uses a fresh data directory (ARGONFS_HOME in a temporary directory), starts the
embedded server once (not measured), writes one document, then runs every command
`--repeat` times, interleaved, and prints the median wall time of each and its ratio to
`python -c pass` (the interpreter's start) and to `python -c "import pymongo"` (the floor
any command that talks to MongoDB pays).  The goal is under 0.3 s for status and cat;
put is there to show what a durable write adds.

Commands run with bytecode writing allowed (PYTHONDONTWRITEBYTECODE unset) and one
warm-up run each, as an installed argonfs would run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARGONFS = str(Path(sys.executable).with_name("argonfs"))


DOC = b'{"_id": "ada", "name": "Ada"}'


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    # cwd outside any source tree: `python -m` puts the cwd first on sys.path
    subprocess.run(cmd, env=env, cwd=env["ARGONFS_HOME"], check=True, stdout=subprocess.DEVNULL, input=DOC if cmd[-1] == "-" else None, timeout=60)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--argonfs", default=ARGONFS, help="the command to measure (e.g. 'python -m argonfs' with PYTHONPATH set to another tree)")
    args = parser.parse_args()
    argonfs = args.argonfs.split()
    with tempfile.TemporaryDirectory(prefix="argonfs-bench-cli-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "ARGONFS_MONGO_URI")}
        env["ARGONFS_HOME"] = home = os.path.join(tmp, "home")
        os.mkdir(home)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import pymongo'": [sys.executable, "-c", "import pymongo"],
            "argonfs --help": [*argonfs, "--help"],
            "argonfs status": [*argonfs, "status"],
            "argonfs cat main people ada": [*argonfs, "cat", "main", "people", "ada"],
            "argonfs put main people -": [*argonfs, "put", "main", "people", "-"],
        }
        try:
            subprocess.run([*argonfs, "init"], env=env, cwd=home, check=True, stdout=subprocess.DEVNULL, timeout=120)
            timed([*argonfs, "put", "main", "people", "-"], env)
            times: dict[str, list[float]] = {name: [] for name in commands}
            for cmd in commands.values():
                timed(cmd, env)  # warm-up: bytecode, page cache
            for _ in range(args.repeat):
                for name, cmd in commands.items():
                    times[name].append(timed(cmd, env))
        finally:
            subprocess.run([*argonfs, "server", "stop"], env=env, cwd=home, stdout=subprocess.DEVNULL, timeout=60)
    median = {name: statistics.median(t) for name, t in times.items()}
    base, floor = median["python -c pass"], median["python -c 'import pymongo'"]
    print(f"median of {args.repeat} runs each, interleaved; embedded server, {os.cpu_count()} cores")
    for name, m in median.items():
        goal = f"  goal <0.3 s: {'ok' if m < 0.3 else 'MISSED'}" if name.startswith(("argonfs status", "argonfs cat")) else ""
        print(f"{name:30s} {m * 1000:7.1f} ms  x{m / base:5.1f} python  x{m / floor:4.2f} import pymongo{goal}")


if __name__ == "__main__":
    main()
