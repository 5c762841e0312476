"""Write a small, deterministic sample data set: DEST/papers.jsonl and DEST/authors/<id>.json."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

TOPICS = ["vision", "language", "speech", "robotics", "theory", "systems"]


def main(dest: Path, papers: int = 200, authors: int = 40) -> None:
    rng = random.Random(7)
    (dest / "authors").mkdir(parents=True, exist_ok=True)
    for i in range(authors):
        doc = {"_id": f"author{i:03}", "name": f"Author {i}", "h_index": rng.randint(1, 80)}
        (dest / "authors" / f"author{i:03}.json").write_text(json.dumps(doc, indent=2) + "\n")
    with (dest / "papers.jsonl").open("w") as f:
        for i in range(papers):
            doc = {
                "_id": i,
                "title": f"On {rng.choice(TOPICS)} #{i}",
                "authors": [f"author{rng.randrange(authors):03}" for _ in range(rng.randint(1, 3))],
                "year": rng.randint(2000, 2026),
                "published": {"$date": f"{rng.randint(2000, 2025)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T00:00:00Z"},
                "score": round(rng.random(), 3),
            }
            f.write(json.dumps(doc) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
