"""Old module paths (before the one-room-per-task layout), kept for one release with a DeprecationWarning.

``import gkmvlp_monai.engines.pretrain`` or a bundle config naming ``gkmvlp_monai.networks.gkmvlp.GKMVLP``
still works: the old module is a thin proxy whose attributes come from the new modules. The table is
also in ``CHANGELOG.md``; these names will be removed in the next minor release.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

#: old module (under ``gkmvlp_monai.``) -> the new module(s) its names now live in
MOVED: dict[str, tuple[str, ...]] = {
    "anatomy": ("tasks.anatomy",),
    "anatomy.atlas": ("transforms.atlas",),
    "anatomy.boxes": ("core.boxes",),
    "anatomy.inference": ("tasks.anatomy.predictions",),
    "anatomy.model": ("models.anatomy",),
    "anatomy.phantom": ("data.synth.phantom",),
    "anatomy.train": ("tasks.anatomy.engine", "tasks.anatomy.metrics"),
    "anatomy.transforms": ("transforms.regions",),
    "apps.classification_study": ("tasks.classification.study",),
    "apps.localization_study": ("tasks.localization.study",),
    "apps.report_generation_study": ("tasks.report_generation.study",),
    "apps.summary": ("studies.summary",),
    "apps.vqa_study": ("tasks.vqa.study",),
    "data.iu_synth": ("data.synth",),
    "data.vqa": ("tasks.vqa.data",),
    "engines": ("engine",),
    "engines.budget": ("engine.budget",),
    "engines.classification": ("tasks.classification.engine", "tasks.classification.predictions"),
    "engines.determinism": ("engine.determinism",),
    "engines.handlers": ("engine.handlers",),
    "engines.inference": ("tasks.pretrain.predictions", "engine.scope"),
    "engines.localization": ("tasks.localization.engine", "tasks.localization.predictions"),
    "engines.ood": ("engine.ood",),
    "engines.pretrain": ("engine.trainer", "engine.handlers", "engine.metrics", "tasks.pretrain.engine"),
    "engines.report_generation": (
        "tasks.report_generation.engine",
        "tasks.report_generation.predictions",
        "tasks.report_generation.model",
    ),
    "engines.vqa": ("tasks.vqa.engine", "tasks.vqa.predictions"),
    "knowledge.vocab": ("core.vocab",),
    "losses": ("models.losses",),
    "losses.ecls": ("models.losses.ecls",),
    "losses.grounding": ("models.losses.grounding",),
    "losses.itc": ("models.losses.itc",),
    "losses.itm": ("models.losses.itm",),
    "losses.lm": ("models.losses.lm",),
    "metrics": ("engine.metrics", "tasks.pretrain.metrics"),
    "metrics.accumulate": ("engine.accumulate",),
    "metrics.captioning": ("tasks.report_generation.metrics",),
    "metrics.classification": ("engine.metrics",),
    "metrics.clinical": ("tasks.report_generation.clinical",),
    "metrics.localization": ("tasks.localization.metrics", "core.boxes"),
    "metrics.retrieval": ("tasks.pretrain.metrics",),
    "metrics.thresholds": ("tasks.classification.metrics",),
    "metrics.vqa": ("tasks.vqa.metrics",),
    "networks": ("models",),
    "networks.classifier": ("tasks.classification.model",),
    "networks.decoder": ("models.decoder",),
    "networks.fusion": ("models.fusion",),
    "networks.gk": ("models.gk",),
    "networks.gkmvlp": ("models.gkmvlp",),
    "networks.image": ("models.image",),
    "networks.knowledge": ("models.knowledge",),
    "networks.pretrained": ("models.pretrained",),
    "networks.region": ("models.region",),
    "networks.segmentation": ("tasks.localization.model",),
    "networks.text": ("models.text",),
    "networks.vqa": ("tasks.vqa.model",),
    "paths": ("core.paths",),
}
#: names that changed with the move
RENAMED = {"GKMVLPTrainer": "CXRTrainer", "GKMVLPEvaluator": "CXREvaluator"}
_PREFIX = "gkmvlp_monai."


class _Proxy(types.ModuleType):
    def __init__(self, name: str, targets: tuple[str, ...]) -> None:
        super().__init__(name)
        self.__path__: list[str] = []  # so that old submodule paths resolve through the finder
        self._targets = targets

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        new_attr = RENAMED.get(attr, attr)
        for target in self._targets:
            module = importlib.import_module(_PREFIX + target)
            if hasattr(module, new_attr):
                warnings.warn(
                    f"{self.__name__}.{attr} moved to {module.__name__}.{new_attr}; the old path will be removed "
                    "in the next minor release",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(module, new_attr)
        raise AttributeError(
            f"module {self.__name__!r} (moved to {', '.join(self._targets)}) has no {attr!r}"
        )


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _Proxy(spec.name, MOVED[spec.name[len(_PREFIX) :]])

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.startswith(_PREFIX) and fullname[len(_PREFIX) :] in MOVED:
            return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=True)
        return None


def install() -> None:
    """Put the old-path finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
