#!/usr/bin/env python3
"""What doc comments cost a build: `ecc build` against `ecc build --no-doc`, side by side.

Prints, per example, the median wall time of both builds and the difference as
a share of the build, and the CPU time of the doc step alone (scan + attach),
which runs while clang compiles.

    python3 benchmarks/doc_comments.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXAMPLES = ("bootstrap", "runqlat", "opensnoop", "globals")


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def doc_cpu_ms(source: Path, meta_builder: dict[str, object]) -> float:
    import copy

    from ecc.doc_comments import extract_doc_comments
    from ecc.meta.annotate import apply_doc_comments

    text = source.read_text()
    runs = []
    for _ in range(20):
        meta = copy.deepcopy(meta_builder)
        start = time.process_time()
        apply_doc_comments(meta, extract_doc_comments(text), source.name, text)
        runs.append(time.process_time() - start)
    return statistics.median(runs) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecc-bench-doc-"))
    env = dict(os.environ, ECC_CACHE_DIR=str(work / "cache"))
    print(f"{'example':<12}{'with doc':>11}{'--no-doc':>11}{'wall diff':>11}"
          f"{'doc step CPU':>15}{'CPU/build':>11}")
    try:
        for name in EXAMPLES:
            source = ROOT / "examples" / name / f"{name}.bpf.c"
            header = source.with_name(f"{name}.h")
            base = [sys.executable, "-m", "ecc", "build", str(source),
                    *([str(header)] if header.is_file() else []), "-o", str(work / name)]
            wall(base, env)
            with_doc, without = [], []
            for _ in range(args.runs):
                with_doc.append(wall(base, env))
                without.append(wall([*base, "--no-doc"], env))
            a, b = statistics.median(with_doc), statistics.median(without)
            meta = json.loads((work / name / f"{name}.skel.json").read_text())
            cpu = doc_cpu_ms(source, meta)
            print(f"{name:<12}{a * 1000:>8.0f} ms{b * 1000:>8.0f} ms{(a - b) / a:>11.1%}"
                  f"{cpu:>12.2f} ms{cpu / 1000 / a:>11.2%}")
        print("wall diff is run-to-run noise: the doc step overlaps with clang, and its CPU "
              "time bounds what it can add.")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
