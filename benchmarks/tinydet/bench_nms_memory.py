"""Peak memory and time of rotated NMS on a dense cluster of overlapping boxes (issue #20: 6000 boxes took
4.2 GB and 27 s when every overlapping pair was clipped at once).

    python benchmarks/tinydet/bench_nms_memory.py [--n 6000] [--tiles 512 6000]

Each setting runs in a fresh process; the peak is the growth of the process's maximum resident set
while ``rotated_nms`` runs (CPU). ``--tiles N`` (one tile holding every box) is the untiled behaviour.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import resource, time, json, torch
from labcore.rotated import rotated_nms
g = torch.Generator().manual_seed(0)
n = {n}
boxes = torch.cat([100 + 3 * torch.randn(n, 2, generator=g), 20 + 10 * torch.rand(n, 2, generator=g),
                   torch.rand(n, 1, generator=g) * 3.14], 1)
scores = torch.rand(n, generator=g)
rotated_nms(boxes[:50], scores[:50], 0.4)  # warm-up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
kept = rotated_nms(boxes, scores, 0.4, tile={tile})
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"tile": {tile}, "kept": len(kept), "peak_mb": (peak - base) / 1024, "seconds": dt}}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=6000)
    p.add_argument("--tiles", type=int, nargs="+", default=[256])
    args = p.parse_args()
    print("| boxes | tile | kept | peak memory (MB) | time (s) |\n|---|---|---|---|---|")
    for tile in args.tiles:
        out = subprocess.run([sys.executable, "-c", CHILD.format(n=args.n, tile=tile)], capture_output=True, text=True)
        if out.returncode:
            print(out.stderr[-2000:], file=sys.stderr)
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {args.n} | {r['tile']} | {r['kept']} | {r['peak_mb']:.0f} | {r['seconds']:.2f} |")


if __name__ == "__main__":
    main()
