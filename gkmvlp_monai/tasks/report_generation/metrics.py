"""Report generation language metrics: BLEU-1..4, METEOR, ROUGE-L and CIDEr from ``pycocoevalcap``.

The scores are computed by the established coco-caption implementation (``pycocoevalcap`` 1.2): ``Bleu``
(corpus BLEU with the "closest" reference length for the brevity penalty), ``Meteor`` (METEOR 1.5 jar,
needs Java), ``Rouge`` (ROUGE-L, beta 1.2, mean over reports) and ``Cider`` (CIDEr-D; document
frequencies from the references of the evaluated set). Nothing here re-implements a score.

Tokenisation: coco-caption's ``PTBTokenizer`` needs Java as well and is not used. Every text (generated
and reference) goes through :func:`caption_tokens` instead: lower-case, split on anything that is not a
letter or digit, punctuation dropped (as the PTB tokenizer's output drops it). The same tokens feed every
metric. METEOR additionally applies its own ``-norm`` normalisation inside the jar.

When Java (or the METEOR jar) is missing, METEOR is reported as NaN (``null`` in JSON) and
:func:`meteor_status` says why; it is never replaced by another number.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gkmvlp_monai.engine.accumulate import TextPairAccumulator

logger = logging.getLogger(__name__)

CAPTION_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider")
_TOKEN = re.compile(r"[a-z0-9]+")


def caption_tokens(text: str | None) -> list[str]:
    """Tokens scored by every caption metric: lower-cased runs of letters/digits (punctuation dropped)."""
    return _TOKEN.findall(str(text or "").lower())


def normalize_caption(text: str | None) -> str:
    """The space-joined :func:`caption_tokens` of ``text`` (what the pycocoevalcap scorers receive)."""
    return " ".join(caption_tokens(text))


def _meteor_jar() -> Path | None:
    try:
        import pycocoevalcap.meteor.meteor as meteor_module
    except ImportError:
        return None
    jar = Path(meteor_module.__file__).parent / meteor_module.METEOR_JAR
    return jar if jar.is_file() else None


def meteor_status() -> str:
    """``"available"`` when METEOR can run, else the reason it cannot (no Java, no jar)."""
    if shutil.which("java") is None:
        return "unavailable: no 'java' executable on PATH (METEOR 1.5 is a Java program)"
    if _meteor_jar() is None:
        return "unavailable: pycocoevalcap's meteor-1.5.jar is missing"
    return "available"


def _meteor(gts: dict[int, list[str]], res: dict[int, list[str]]) -> float:
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        score, _ = scorer.compute_score(gts, res)
    finally:
        del scorer  # its __del__ closes the Java process
    return float(score)


def caption_scores(
    references: Sequence[str], hypotheses: Sequence[str], meteor: bool = True
) -> dict[str, float]:
    """Corpus-level caption metrics of generated reports against one reference report each.

    Args:
        references: reference reports.
        hypotheses: generated reports, in the same order.
        meteor: compute METEOR (starts a Java process, ~5 s); ``False`` reports it as NaN.

    Returns:
        ``{"bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider"}``, in [0, 1] except CIDEr
        (in [0, 10]); ``meteor`` is NaN when switched off or unavailable (see :func:`meteor_status`).

    Raises:
        ValueError: the two lists differ in length or are empty.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} generated reports")
    if not references:
        raise ValueError("caption_scores needs at least one report")
    gts = {i: [normalize_caption(r)] for i, r in enumerate(references)}
    res = {i: [normalize_caption(h)] for i, h in enumerate(hypotheses)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    out = {f"bleu{n + 1}": float(b) for n, b in enumerate(bleu)}
    out["rouge_l"] = float(rouge)
    out["cider"] = float(cider)
    out["meteor"] = float("nan")
    if meteor:
        status = meteor_status()
        if status == "available":
            out["meteor"] = _meteor(gts, res)
        else:
            logger.warning("METEOR not computed: %s", status)
    return out


class CaptionMetrics(TextPairAccumulator):
    """Ignite metric: accumulates generated and reference reports over an epoch, then
    :func:`caption_scores`; publishes every score flattened into ``engine.state.metrics``.

    ``output_transform`` must return ``(generated list[str], references list[str])`` (``None`` for a
    skipped batch). The key given to ``attach`` holds ``bleu4`` (the usual model-selection score).
    Not reduced across processes: in the multi-GPU config every rank validates the whole split.

    Args:
        meteor: compute METEOR (Java); off during validation to save the JVM start.
        prefix: prefix of the published keys (``"val_"`` gives ``val_bleu4``...).
        output_transform: see above.
        device: ignite device (texts stay on the CPU).
    """

    def __init__(
        self,
        meteor: bool = True,
        prefix: str = "",
        output_transform: Callable[[Any], Any] = lambda x: x,
        device: str = "cpu",
    ) -> None:
        self.meteor = meteor
        self.prefix = prefix
        super().__init__(output_transform=output_transform, device=device)

    def compute(self) -> float:
        hyp, ref = self.collected()
        self.scores = caption_scores(ref, hyp, meteor=self.meteor)
        return self.scores["bleu4"]

    def completed(self, engine: Any, name: str) -> None:
        value = self.compute()
        engine.state.metrics[name] = value
        for k, v in self.scores.items():
            engine.state.metrics[self.prefix + k] = v
