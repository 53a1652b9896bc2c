"""Out-of-distribution (OOD) scores of image embeddings against a checkpoint's training embeddings.

At the end of training, :class:`OODStatsHandler` embeds (a deterministic subset of) the training images
and the held-out split with the best weights (``models/model.pt``), fits a Gaussian to the training
embeddings (mean and Ledoit-Wolf shrinkage covariance, :func:`ledoit_wolf`) and stores, next to the
checkpoint (``models/ood_stats.npz``), the mean, the precision matrix, the sorted held-out Mahalanobis
distances, the training domain (the datalist's ``name`` and ``description``) and the views it held.
``model.pt`` stays a plain state dict.

At inference, :class:`OODScorer` gives each image embedding its Mahalanobis distance (``ood_score``),
the percentile of that distance among the held-out distances (``ood_percentile``) and ``ood = True``
when the distance exceeds the threshold: the ``threshold_percentile`` (99 by default) percentile of the
held-out distances, so about 1 % of in-domain held-out images are flagged. Without a statistics file
(a checkpoint from before) every record gets ``ood: None`` with the reason, and inference carries on.

The embedding is what the network gives for an image (:func:`image_embedding`): the L2-normalised ITC
embedding of a GK-MVLP network (``encode_image``), or the image encoder's global vector of a classifier
(``features``). The statistics record which one they are of; a scorer refuses to compare another kind.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events

__all__ = [
    "DEFAULT_THRESHOLD_PERCENTILE",
    "OOD_STATS_FILE",
    "FRONTAL_VIEWS",
    "OODScorer",
    "OODStats",
    "OODStatsHandler",
    "collect_embeddings",
    "fit_ood_stats",
    "image_embedding",
    "lateral_policy",
    "ledoit_wolf",
    "mahalanobis",
    "stats_file_for",
    "trained_frontal_only",
]

logger = logging.getLogger(__name__)

#: file name of the statistics, in the checkpoint's folder
OOD_STATS_FILE = "ood_stats.npz"
#: held-out percentile of the distance above which an image is ``ood``
DEFAULT_THRESHOLD_PERCENTILE = 99.0
#: views that count as frontal in a training datalist
FRONTAL_VIEWS = ("PA", "AP")


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean and Ledoit-Wolf shrinkage covariance of the rows of ``x``.

    The covariance is ``(1 - s) * S + s * mu * I`` with ``S`` the empirical (biased) covariance,
    ``mu = trace(S) / d`` and the shrinkage ``s`` of Ledoit & Wolf (2004), as in
    ``sklearn.covariance.LedoitWolf``. It is positive definite for any ``n >= 2`` (also ``n < d``).

    Args:
        x: ``[n, d]`` samples.

    Returns:
        ``(mean [d], covariance [d, d], shrinkage)``.

    Raises:
        ValueError: fewer than two samples or not a 2-D array.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need an [n >= 2, d] array of embeddings, got shape {x.shape}")
    n, d = x.shape
    mean = x.mean(0)
    xc = x - mean
    emp = xc.T @ xc / n
    mu = float(np.trace(emp)) / d
    delta = float(((emp - mu * np.eye(d)) ** 2).sum()) / d
    beta_sum = float(((xc**2).sum(1) ** 2).sum()) - n * float((emp**2).sum())
    beta = min(max(beta_sum, 0.0) / (n * n * d), delta)
    shrinkage = 0.0 if delta == 0 else beta / delta
    cov = (1.0 - shrinkage) * emp + shrinkage * mu * np.eye(d)
    return mean, cov, shrinkage


def mahalanobis(x: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Mahalanobis distances ``sqrt((x - mean)^T P (x - mean))`` of the rows of ``x``.

    Args:
        x: ``[n, d]`` (or ``[d]``) embeddings.
        mean: ``[d]``.
        precision: ``[d, d]`` inverse covariance.

    Returns:
        ``[n]`` distances (float64).
    """
    xc = np.atleast_2d(np.asarray(x, dtype=np.float64)) - mean
    return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", xc, precision, xc), 0.0))


@dataclass
class OODStats:
    """Gaussian statistics of a checkpoint's training embeddings, with held-out distances.

    Attributes:
        mean: ``[d]`` training mean.
        precision: ``[d, d]`` inverse of the shrinkage covariance.
        heldout_distances: sorted Mahalanobis distances of the held-out split.
        threshold_percentile: held-out percentile of the ``ood`` threshold.
        embedding: which embedding (``"encode_image"`` or ``"features"``).
        training_domain: ``name``, ``description`` and ``datalist`` of the training data.
        training_views: view -> number of training items (``""``: not recorded).
        info: further facts (item counts, shrinkage, held-out split name).
    """

    mean: np.ndarray
    precision: np.ndarray
    heldout_distances: np.ndarray
    threshold_percentile: float = DEFAULT_THRESHOLD_PERCENTILE
    embedding: str = "encode_image"
    training_domain: dict[str, str] = field(default_factory=dict)
    training_views: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """The distance above which an image is out of distribution."""
        return float(np.percentile(self.heldout_distances, self.threshold_percentile))

    @property
    def frontal_only(self) -> bool:
        """True when every training item with a recorded view was frontal (PA/AP) and some had one."""
        known = {v for v, n in self.training_views.items() if v and n}
        return bool(known) and known <= set(FRONTAL_VIEWS)

    def distance(self, embeddings: np.ndarray) -> np.ndarray:
        """Mahalanobis distances of ``[n, d]`` embeddings."""
        return mahalanobis(embeddings, self.mean, self.precision)

    def percentile(self, distances: np.ndarray) -> np.ndarray:
        """Percent of held-out distances at or below each distance (0-100)."""
        ranks = np.searchsorted(self.heldout_distances, np.asarray(distances, dtype=np.float64), side="right")
        return 100.0 * ranks / len(self.heldout_distances)

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` (no pickles: the facts are a JSON string array).

        Args:
            path: output file (parent folders created).

        Returns:
            The path.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        facts = {
            "threshold_percentile": self.threshold_percentile,
            "embedding": self.embedding,
            "training_domain": self.training_domain,
            "training_views": self.training_views,
            "info": self.info,
        }
        with open(path, "wb") as fh:  # np.savez would append ".npz" to another suffix
            np.savez(
                fh,
                mean=self.mean,
                precision=self.precision,
                heldout_distances=np.sort(self.heldout_distances),
                facts=np.array(json.dumps(facts)),
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> OODStats:
        """Read a file written by :meth:`save` (``allow_pickle=False``).

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file lacks an array.
        """
        with np.load(path, allow_pickle=False) as z:
            missing = {"mean", "precision", "heldout_distances", "facts"} - set(z.files)
            if missing:
                raise ValueError(f"{path}: not an OOD statistics file (missing {sorted(missing)})")
            facts = json.loads(str(z["facts"]))
            return cls(
                mean=z["mean"],
                precision=z["precision"],
                heldout_distances=np.sort(z["heldout_distances"]),
                threshold_percentile=float(facts["threshold_percentile"]),
                embedding=str(facts["embedding"]),
                training_domain=dict(facts.get("training_domain", {})),
                training_views={str(k): int(v) for k, v in facts.get("training_views", {}).items()},
                info=dict(facts.get("info", {})),
            )


def fit_ood_stats(
    train_embeddings: np.ndarray,
    heldout_embeddings: np.ndarray,
    threshold_percentile: float = DEFAULT_THRESHOLD_PERCENTILE,
    embedding: str = "encode_image",
    training_domain: Mapping[str, str] | None = None,
    training_views: Mapping[str, int] | None = None,
    info: Mapping[str, Any] | None = None,
) -> OODStats:
    """Fit the training Gaussian and score the held-out split against it.

    Args:
        train_embeddings: ``[n, d]`` training image embeddings.
        heldout_embeddings: ``[m, d]`` held-out (validation) embeddings; their distances give the
            percentiles and the threshold (training distances would be optimistic: the fit has seen them).
        threshold_percentile: held-out percentile of the ``ood`` threshold, in (0, 100].
        embedding: which embedding these are.
        training_domain: ``name`` / ``description`` / ``datalist`` of the training data.
        training_views: view counts of the training items.
        info: further facts to record.

    Returns:
        The statistics.

    Raises:
        ValueError: too few embeddings, dimensions that differ or a bad percentile.
    """
    train = np.asarray(train_embeddings, dtype=np.float64)
    held = np.asarray(heldout_embeddings, dtype=np.float64)
    if held.ndim != 2 or held.shape[0] < 1 or held.shape[1] != train.shape[-1]:
        raise ValueError(f"held-out embeddings {held.shape} do not match training ones {train.shape}")
    if not 0 < threshold_percentile <= 100:
        raise ValueError(f"threshold_percentile {threshold_percentile} must be in (0, 100]")
    mean, cov, shrinkage = ledoit_wolf(train)
    try:
        precision = np.linalg.inv(cov)
    except np.linalg.LinAlgError:
        precision = np.linalg.pinv(cov)
    distances = np.sort(mahalanobis(held, mean, precision))
    facts = {"n_train": int(train.shape[0]), "n_heldout": int(held.shape[0]), "shrinkage": shrinkage}
    return OODStats(
        mean=mean,
        precision=precision,
        heldout_distances=distances,
        threshold_percentile=float(threshold_percentile),
        embedding=embedding,
        training_domain=dict(training_domain or {}),
        training_views=dict(training_views or {}),
        info={**facts, **dict(info or {})},
    )


def stats_file_for(ckpt_file: str | os.PathLike | None) -> str | None:
    """The statistics file next to a checkpoint (``<folder>/ood_stats.npz``); None without a checkpoint."""
    if not ckpt_file:
        return None
    return str(Path(ckpt_file).parent / OOD_STATS_FILE)


def trained_frontal_only(stats_file: str | os.PathLike | None, default: bool = True) -> bool:
    """Whether the checkpoint was trained on frontal views only, from its statistics.

    Args:
        stats_file: the checkpoint's ``ood_stats.npz``.
        default: the answer when the file is missing or records no view (the bundles' metadata declare
            frontal radiographs as input, hence True).
    """
    if not stats_file or not Path(stats_file).is_file():
        return default
    stats = OODStats.load(stats_file)
    if not any(v for v in stats.training_views if v):
        return default
    return stats.frontal_only


def lateral_policy(stats_file: str | os.PathLike | None, policy: str = "flag") -> str:
    """How inference treats lateral views (``LoadCXRImaged``'s ``lateral``): ``policy`` for a checkpoint
    trained on frontal views only (:func:`trained_frontal_only`), ``"accept"`` for one that saw laterals.

    Args:
        stats_file: the checkpoint's ``ood_stats.npz`` (missing: frontal only, the metadata's input).
        policy: ``"flag"`` (score, marked out of scope), ``"refuse"`` or ``"accept"``.
    """
    return policy if trained_frontal_only(stats_file) else "accept"


def _unwrap(network: torch.nn.Module) -> torch.nn.Module:
    """The network inside DDP (``module``) and export wrappers (``model``)."""
    network = getattr(network, "module", network)
    if hasattr(network, "features") or hasattr(network, "encode_image"):
        return network
    return getattr(network, "model", network)


def embedding_kind(network: torch.nn.Module) -> str:
    """``"features"`` (a classifier) or ``"encode_image"`` (a GK-MVLP network or a wrapper of one).

    Raises:
        TypeError: the network gives no image embedding.
    """
    net = _unwrap(network)
    if hasattr(net, "features"):
        return "features"
    if hasattr(net, "encode_image"):
        return "encode_image"
    inner = getattr(net, "model", None)
    if inner is not None and hasattr(inner, "encode_image"):
        return "encode_image"
    raise TypeError(f"{type(net).__name__} has no features() or encode_image(): no image embedding")


def image_embedding(network: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The image embedding the OOD statistics are of (see :func:`embedding_kind`).

    Args:
        network: a classifier (``features``), a GK-MVLP network (``encode_image``) or a wrapper of one.
        image: ``[B, 1, S, S]`` images.

    Returns:
        ``[B, d]`` float embeddings.
    """
    net = _unwrap(network)
    if embedding_kind(net) == "features":
        return net.features(image)
    return (net if hasattr(net, "encode_image") else net.model).encode_image(image)


@torch.no_grad()
def collect_embeddings(
    network: torch.nn.Module,
    items: Sequence[Mapping[str, Any]],
    transform: Callable,
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    num_workers: int = 0,
    embed: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] = image_embedding,
) -> np.ndarray:
    """Embed the images of datalist items (bad files are skipped, as everywhere).

    Args:
        network: the network, in eval mode.
        items: datalist items with ``image``.
        transform: deterministic preprocessing giving ``image`` ``[1, S, S]``.
        device: where to run.
        batch_size: images per forward pass.
        num_workers: DataLoader workers.
        embed: ``(network, image batch) -> [B, d]``.

    Returns:
        ``[n, d]`` float64 embeddings of the good items.
    """
    from monai.data import DataLoader

    from gkmvlp_monai.data.dataset import collate_skip_bad, is_empty_batch, make_dataset

    loader = DataLoader(
        make_dataset(list(items), transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate_skip_bad,
    )
    out = []
    for batch in loader:
        if is_empty_batch(batch):
            continue
        image = torch.as_tensor(batch["image"]).float().to(device)
        out.append(embed(network, image).detach().float().cpu().numpy().astype(np.float64))
    if not out:
        return np.zeros((0, 0))
    return np.concatenate(out)


def _datalist_domain(datalist_file: str | None) -> dict[str, str]:
    if not datalist_file or not Path(datalist_file).is_file():
        return {"name": "", "description": "", "datalist": str(datalist_file or "")}
    doc = json.loads(Path(datalist_file).read_text(encoding="utf-8"))
    return {
        "name": str(doc.get("name", "")),
        "description": str(doc.get("description", "")),
        "datalist": str(Path(datalist_file).resolve()),
    }


class OODStatsHandler:
    """Write ``ood_stats.npz`` next to the checkpoint when training completes.

    The best weights (``ckpt_file``, when it exists; else the network as trained) are loaded into a copy
    of the network, so the trainer's state and its final checkpoint are untouched.

    Args:
        network: the (unwrapped) network being trained.
        train_items: training datalist items (views are counted over all of them).
        heldout_items: held-out items (the validation split) for the percentiles and the threshold.
        transform: deterministic preprocessing (the evaluation pipeline) giving ``image``.
        save_path: output file, e.g. ``models/ood_stats.npz``.
        datalist_file: the training datalist (its ``name`` and ``description`` are the training domain).
        ckpt_file: the best checkpoint (a plain state dict), e.g. ``models/model.pt``.
        device: where to embed.
        max_items: at most this many training items are embedded (a seeded subset).
        batch_size: images per forward pass.
        threshold_percentile: held-out percentile of the ``ood`` threshold.
        seed: seed of the subset.
        enabled: ``False`` turns the handler off (e.g. ranks other than 0).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        train_items: Sequence[Mapping[str, Any]],
        heldout_items: Sequence[Mapping[str, Any]],
        transform: Callable,
        save_path: str,
        datalist_file: str | None = None,
        ckpt_file: str | None = None,
        device: str | torch.device = "cpu",
        max_items: int = 1000,
        batch_size: int = 32,
        threshold_percentile: float = DEFAULT_THRESHOLD_PERCENTILE,
        seed: int = 0,
        enabled: bool = True,
    ) -> None:
        self.network = network
        self.train_items = list(train_items)
        self.heldout_items = list(heldout_items)
        self.transform = transform
        self.save_path = save_path
        self.datalist_file = datalist_file
        self.ckpt_file = ckpt_file
        self.device = device
        self.max_items = max_items
        self.batch_size = batch_size
        self.threshold_percentile = threshold_percentile
        self.seed = seed
        self.enabled = enabled

    def attach(self, engine: Engine) -> None:
        """Run at ``COMPLETED`` of ``engine`` (the trainer)."""
        if self.enabled:
            engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine | None = None) -> OODStats | None:
        """Embed, fit and save; returns the statistics (None when there are too few images)."""
        network = copy.deepcopy(_unwrap(self.network)).to(self.device)
        source = "trained weights"
        if self.ckpt_file and Path(self.ckpt_file).is_file():
            state = torch.load(self.ckpt_file, map_location=self.device, weights_only=True)
            network.load_state_dict(state)
            source = str(self.ckpt_file)
        network.eval()
        items = self.train_items
        if len(items) > self.max_items:
            keep = np.sort(np.random.default_rng(self.seed).choice(len(items), self.max_items, replace=False))
            items = [items[i] for i in keep]
        kwargs = {"device": self.device, "batch_size": self.batch_size}
        train = collect_embeddings(network, items, self.transform, **kwargs)
        held = collect_embeddings(network, self.heldout_items, self.transform, **kwargs)
        if train.shape[0] < 2 or held.shape[0] < 1:
            logger.warning(
                "OOD statistics not written: %d training / %d held-out images embedded",
                train.shape[0],
                held.shape[0],
            )
            return None
        views = Counter(str(it.get("view", "") or "") for it in self.train_items)
        stats = fit_ood_stats(
            train,
            held,
            self.threshold_percentile,
            embedding=embedding_kind(network),
            training_domain=_datalist_domain(self.datalist_file),
            training_views=dict(views),
            info={"weights": source},
        )
        stats.save(self.save_path)
        logger.info(
            "OOD statistics (%d training, %d held-out embeddings; threshold %.3f = p%g) -> %s",
            train.shape[0],
            held.shape[0],
            stats.threshold,
            stats.threshold_percentile,
            self.save_path,
        )
        return stats


class OODScorer:
    """Per-image OOD fields of prediction records, from a checkpoint's statistics file.

    Args:
        stats_file: ``ood_stats.npz`` (None or missing: every record gets ``ood: None`` and the reason).
        embedding: the embedding the inference network gives (checked against the statistics').
    """

    def __init__(self, stats_file: str | os.PathLike | None, embedding: str | None = None) -> None:
        self.stats: OODStats | None = None
        self.reason = ""
        if not stats_file or not Path(stats_file).is_file():
            self.reason = f"no OOD statistics next to the checkpoint ({stats_file}); retrain to write them"
        else:
            stats = OODStats.load(stats_file)
            if embedding is not None and stats.embedding != embedding:
                self.reason = (
                    f"{stats_file} holds statistics of {stats.embedding!r} embeddings, "
                    f"this network gives {embedding!r}"
                )
            else:
                self.stats = stats
        if self.reason:
            logger.warning("OOD scores unavailable: %s", self.reason)

    @property
    def training_domain(self) -> str | None:
        """The training datalist's name (None without statistics)."""
        return None if self.stats is None else self.stats.training_domain.get("name", "")

    def summary(self) -> dict[str, Any]:
        """Fields for the top of a predictions file: domain, views, threshold and how it is defined."""
        if self.stats is None:
            return {"training_domain": None, "ood_threshold": None, "ood_reason": self.reason}
        s = self.stats
        return {
            "training_domain": s.training_domain.get("name", ""),
            "training_domain_description": s.training_domain.get("description", ""),
            "training_views": s.training_views,
            "ood_embedding": s.embedding,
            "ood_threshold": round(s.threshold, 6),
            "ood_threshold_percentile": s.threshold_percentile,
            "ood_heldout_images": int(len(s.heldout_distances)),
        }

    def records(self, embeddings: np.ndarray | torch.Tensor) -> list[dict[str, Any]]:
        """``training_domain``, ``ood_score``, ``ood_percentile`` and ``ood`` for each embedding.

        Args:
            embeddings: ``[n, d]``.

        Returns:
            One dict per row (``ood`` None, with ``ood_reason``, when there are no statistics).
        """
        if isinstance(embeddings, torch.Tensor):
            embeddings = embeddings.detach().float().cpu().numpy()
        n = len(embeddings)
        if self.stats is None:
            base = {"training_domain": None, "ood_score": None, "ood_percentile": None, "ood": None}
            return [{**base, "ood_reason": self.reason} for _ in range(n)]
        distances = self.stats.distance(embeddings)
        percentiles = self.stats.percentile(distances)
        threshold = self.stats.threshold
        return [
            {
                "training_domain": self.training_domain,
                "ood_score": round(float(d), 4),
                "ood_percentile": round(float(p), 2),
                "ood": bool(d > threshold),
            }
            for d, p in zip(distances, percentiles)
        ]
