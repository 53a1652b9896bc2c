"""Image–report retrieval recall (R@K both ways), as reported by med-VLP papers.

Many chest X-ray reports are word-for-word identical (normal studies especially), so a retrieved report
counts as correct when its text equals the query's own report text, not only when it is the very same
item. Without this, identical normal reports would make R@1 depend on tie order alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced


def text_match_matrix(texts: Sequence[str]) -> torch.Tensor:
    """``[N, N]`` bool matrix: ``m[i, j]`` is True when report ``j`` has the same (normalised) text as ``i``."""
    keys = [" ".join(t.lower().split()) for t in texts]
    ids: dict[str, int] = {}
    codes = torch.tensor([ids.setdefault(k, len(ids)) for k in keys])
    return codes[:, None] == codes[None, :]


def recall_at_k(
    sim: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int] = (1, 5, 10)
) -> dict[int, float]:
    """Fraction of queries with at least one relevant item among the top ``k`` by similarity.

    Args:
        sim: ``[Nq, Nd]`` similarity of each query to each candidate (higher is closer).
        relevant: ``[Nq, Nd]`` bool, which candidates are correct for each query.
        ks: cut-offs.

    Returns:
        ``{k: recall}`` with recall in [0, 1].
    """
    if sim.shape != relevant.shape:
        raise ValueError(f"sim {tuple(sim.shape)} and relevant {tuple(relevant.shape)} differ in shape")
    order = sim.argsort(dim=1, descending=True)
    hits = relevant.gather(1, order)
    out = {}
    for k in ks:
        out[k] = hits[:, : min(k, hits.shape[1])].any(dim=1).float().mean().item()
    return out


def retrieval_scores(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    texts: Sequence[str] | None = None,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Image→report and report→image recall at ``ks`` for paired embeddings.

    Args:
        image_emb: ``[N, D]`` image embeddings (normalised inside).
        text_emb: ``[N, D]`` report embeddings of the same N studies, in the same order.
        texts: report texts; identical texts count as correct matches (see module doc). ``None``: only the
            paired item is correct.
        ks: cut-offs.

    Returns:
        ``{"i2t_R1": ..., "t2i_R1": ..., ..., "retrieval_mean_recall": mean of all}`` (no "@": MLflow rejects it in metric names).
    """
    img = torch.nn.functional.normalize(image_emb.float(), dim=-1)
    txt = torch.nn.functional.normalize(text_emb.float(), dim=-1)
    sim = img @ txt.T
    n = sim.shape[0]
    relevant = text_match_matrix(texts) if texts is not None else torch.eye(n, dtype=torch.bool)
    out: dict[str, float] = {}
    for k, v in recall_at_k(sim, relevant, ks).items():
        out[f"i2t_R{k}"] = v
    for k, v in recall_at_k(sim.T, relevant.T, ks).items():
        out[f"t2i_R{k}"] = v
    out["retrieval_mean_recall"] = sum(out.values()) / len(out)
    return out


class RetrievalRecall(Metric):
    """Ignite metric accumulating paired embeddings over an epoch; publishes every recall (flattened).

    ``output_transform`` must return ``(image_emb [B, D], text_emb [B, D], texts list[str])``.
    """

    def __init__(self, ks: Sequence[int] = (1, 5, 10), output_transform=lambda x: x, device="cpu") -> None:
        self.ks = tuple(ks)
        super().__init__(output_transform=output_transform, device=device, metrics_result_mode="flatten")

    @reinit__is_reduced
    def reset(self) -> None:
        self._img: list[torch.Tensor] = []
        self._txt: list[torch.Tensor] = []
        self._texts: list[str] = []

    @reinit__is_reduced
    def update(self, output) -> None:
        if output is None:  # a skipped (all-bad) batch
            return
        img, txt, texts = output
        self._img.append(img.detach().float().cpu())
        self._txt.append(txt.detach().float().cpu())
        self._texts.extend(texts)

    def compute(self) -> dict[str, float]:
        if not self._img:
            raise RuntimeError("RetrievalRecall needs at least one batch before compute()")
        return retrieval_scores(torch.cat(self._img), torch.cat(self._txt), self._texts, self.ks)


def zero_shot_scores(output: dict) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Output transform of the zero-shot AUC: (probability "present" of each entity, entity targets).

    Args:
        output: evaluator output; ``output["pred"]`` is ``None`` for a batch whose every sample was bad.

    Returns:
        ``(ecls_probs[..., 1], entity_targets)``, or ``None`` for a skipped batch.
    """
    pred = output["pred"]
    if pred is None:
        return None
    return pred["ecls_probs"][..., 1], pred["entity_targets"]
