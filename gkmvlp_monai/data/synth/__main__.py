"""Command line: ``python -m gkmvlp_monai.data.synth --out data/iu-synth [--limit N] [--seed 0]``."""

from __future__ import annotations

import argparse
import json
import sys

from gkmvlp_monai.data.synth.builder import build_iu_synth
from gkmvlp_monai.data.xrv_assets import AssetUnavailableError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, build the data set, print where it is; returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m gkmvlp_monai.data.synth", description=__doc__)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--limit", type=int, default=None, help="build only the first N reports")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=512, help="picture side in pixels")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    try:
        path = build_iu_synth(
            args.out, limit=args.limit, seed=args.seed, size=args.size, workers=args.workers
        )
    except AssetUnavailableError as err:
        print(f"iu-synth: {err}", file=sys.stderr)
        return 2
    info = json.loads(path.with_name("build_info.json").read_text())
    print(f"wrote {path} ({info['counts']['reports']} images, {info['seconds']['total']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
