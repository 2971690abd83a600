"""The output cache over HTTP: an identical render's request -> complete against the first's.

    .venv/bin/python bench/cache.py                 # 1080p/600-frame fade-in, 5 pairs
    .venv/bin/python bench/cache.py --repeat 3

Against a real ``renderlab serve`` (embedded default, fresh data dir; see ``bench/request.py``):
each pair renders a new fade-in, then asks for exactly the same render again, which completes
from the first's output at start. Targets: the repeat within 0.2x of the first and under 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from request import fade_in, request_to_complete, served


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    firsts, repeats = [], []
    with served() as bench:
        request_to_complete(bench, fade_in(-1))  # the first render of a serve
        for index in range(args.repeat):
            firsts.append(request_to_complete(bench, fade_in(index)).total)
            repeats.append(request_to_complete(bench, fade_in(index)).total)
    first, repeat = statistics.median(firsts), statistics.median(repeats)
    print(f"first render    median {first:6.3f} s  ({', '.join(f'{t:.3f}' for t in firsts)})")
    print(f"identical again median {repeat:6.3f} s  ({', '.join(f'{t:.3f}' for t in repeats)})")
    print(f"ratio {repeat / first:.3f}x (target <= 0.2x), repeat {repeat:.3f} s (target < 0.3 s)")


if __name__ == "__main__":
    main()
