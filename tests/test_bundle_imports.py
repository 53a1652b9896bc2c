"""Every ``gkmvlp_monai.<module>.<name>`` that a bundle config's ``$`` expressions use can be reached
after the config's own ``imports``, in a fresh interpreter.

Configs are merged as MONAI merges them: ``configs/base.json`` first, then ``train.json``, then an
overlay; a ``+imports`` list extends the imports, a plain ``imports`` list would replace them. A module
that the merged config uses but does not import fails with ``module 'gkmvlp_monai' has no attribute
...``, and only in a fresh process (in a test session another test has imported it already), so the
check runs in a subprocess that forgets every ``gkmvlp_monai`` module between configs. (``_target_``
paths need no import: MONAI locates them itself.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHECK = r"""
import json, re, sys
REF = re.compile(r"gkmvlp_monai(?:\.[A-Za-z_]\w*)+")

def strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v)

problems = []
for files in json.loads(sys.argv[1]):
    for name in [m for m in sys.modules if m == "gkmvlp_monai" or m.startswith("gkmvlp_monai.")]:
        del sys.modules[name]
    from monai.bundle import ConfigParser

    merged = ConfigParser.load_config_files(files)  # MONAI's merge: '+key' extends, other keys replace
    ns = {}
    for stmt in merged.get("imports", []):
        exec(stmt.lstrip("$"), ns)
    for text in strings({k: v for k, v in merged.items() if k != "imports"}):
        if not text.startswith("$"):
            continue
        for ref in REF.findall(text):
            obj = ns.get("gkmvlp_monai")
            for part in ref.split(".")[1:]:
                if obj is None:
                    break
                obj = getattr(obj, part, None)
            if obj is None:
                problems.append(f"{[f.split('/bundles/')[1] for f in files]}: {ref}")
print(json.dumps(sorted(set(problems))))
"""


def _combinations() -> list[list[str]]:
    combos = []
    for bundle in sorted((REPO / "bundles").iterdir()):
        configs = bundle / "configs"
        if not (configs / "train.json").is_file():
            continue
        base = configs / "base.json"
        for f in sorted(configs.glob("*.json")):
            if f.name in ("metadata.json", "base.json", "zero_shot.json"):
                continue  # zero_shot.json overlays evaluate.json: its combination is added below
            # inference.json stands alone; build_atlas.json and train.json sit on the base config;
            # every other file is an overlay of train.json
            if f.name == "inference.json":
                files = [f]
            elif f.name in ("train.json", "build_atlas.json"):
                files = [base, f]
            else:
                files = [base, configs / "train.json", f]
            combos.append([str(p) for p in files])
    for bundle in ("gkmvlp_classification", "gkmvlp_localization"):
        loc = REPO / "bundles" / bundle / "configs"
        combos.append([str(loc / n) for n in ("base.json", "train.json", "evaluate.json", "zero_shot.json")])
    return combos


def test_every_package_reference_is_reachable_from_the_config_imports():
    combos = _combinations()
    assert len(combos) > 20
    out = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(combos)], capture_output=True, text=True, check=True
    )
    problems = json.loads(out.stdout.strip().splitlines()[-1])
    assert not problems, "config expressions use modules their imports do not load:\n" + "\n".join(problems)
