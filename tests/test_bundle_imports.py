"""Every ``gkmvlp_monai.<module>.<name>`` that a bundle config's ``$`` expressions use can be reached
after the config's own ``imports``, in a fresh interpreter.

A config file merged after ``train.json`` with its own ``imports`` list replaces train's list. A module
that the merged config uses but no longer imports then fails with ``module 'gkmvlp_monai' has no
attribute ...``. That only shows in a fresh process: in the test session, or after another study in the
same process, the module is already imported. The localization zero-shot command failed like this until
session 4. The check runs in a subprocess that forgets every ``gkmvlp_monai`` module between configs.
(``_target_`` paths need no import: MONAI locates them itself.)
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
    merged = {}
    for f in files:
        merged.update(json.load(open(f)))  # top-level keys replace, as in ConfigParser.read_config
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
        for f in sorted(configs.glob("*.json")):
            if f.name == "metadata.json":
                continue
            # overlays are merged after train.json; train.json, build_atlas.json and an inference.json
            # with its own imports are run alone
            own_imports = "imports" in json.loads(f.read_text())
            alone = f.name in ("train.json", "build_atlas.json") or (
                f.name == "inference.json" and own_imports
            )
            files = [f] if alone else [configs / "train.json", f]
            combos.append([str(p) for p in files])
    loc = REPO / "bundles" / "gkmvlp_localization" / "configs"
    combos.append([str(loc / n) for n in ("train.json", "evaluate.json", "zero_shot.json")])
    return combos


def test_every_package_reference_is_reachable_from_the_config_imports():
    combos = _combinations()
    assert len(combos) > 20
    out = subprocess.run(
        [sys.executable, "-c", CHECK, json.dumps(combos)], capture_output=True, text=True, check=True
    )
    problems = json.loads(out.stdout.strip().splitlines()[-1])
    assert not problems, "config expressions use modules their imports do not load:\n" + "\n".join(problems)
