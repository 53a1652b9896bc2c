"""Robust chest X-ray datasets: bad samples are skipped, logged with the file name, and counted.

A sample whose loading or transforms raise (a ``CXRImageError`` or any other exception) becomes a
*skip marker*: a small picklable dict. ``collate_skip_bad`` drops the markers from a batch and records
how many were dropped (``batch["skipped_samples"]``) and which files (``batch["skipped_files"]``), so the
count reaches the main process whatever the number of DataLoader workers. The Ignite handler
``gkmvlp_monai.engine.handlers.SkippedSamplesHandler`` sums it per epoch.

Caching (``make_dataset(cache="memory" | "disk")``) keeps the decoded, resized images of the
deterministic prefix of the transform; a bad sample is not cached and is skipped every epoch. The
transform is flattened first: MONAI caches up to the first ``Randomizable``, and ``Compose`` itself is
one, so a nested ``Compose`` (e.g. ``Compose([deterministic_pipeline] + label_transforms)``) would
otherwise cache nothing and decode every image every epoch. Disk cache files are named by the item
and by :func:`transform_fingerprint` of the cached prefix (its transforms and their settings, e.g. the
image size), so one ``cache_dir`` can serve several settings without handing back wrong images.
A batch in which every sample was bad collates to a dict holding only the skip fields; use
``is_empty_batch`` to recognise it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.data import CacheDataset, Dataset, PersistentDataset, list_data_collate
from monai.transforms import Compose
from monai.utils import convert_to_tensor

from gkmvlp_monai.transforms.io import CXRImageError

__all__ = [
    "SKIP_KEY",
    "RobustDataset",
    "RobustCacheDataset",
    "RobustPersistentDataset",
    "collate_skip_bad",
    "describe_error",
    "is_empty_batch",
    "is_skip_marker",
    "make_dataset",
    "transform_fingerprint",
]

logger = logging.getLogger(__name__)

SKIP_KEY = "__gkmvlp_skipped__"


def describe_error(err: BaseException) -> str:
    """One line for a failed sample: the innermost ``CXRImageError`` if any (it names the file), else the
    innermost cause (MONAI's ``Compose`` wraps transform errors in ``RuntimeError``)."""
    chain, seen = [], set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    for exc in chain:
        if isinstance(exc, CXRImageError):
            return str(exc)
    inner = chain[-1]
    return f"{type(inner).__name__}: {str(inner).strip().splitlines()[0] if str(inner).strip() else ''}"


def _item_name(item: Any, image_key: str) -> str:
    if isinstance(item, Mapping):
        value = item.get(image_key)
        if isinstance(value, str | os.PathLike):
            return str(value)
        if value is not None and hasattr(value, "meta"):
            return str(value.meta.get("filename_or_obj", "?"))
    return "?"


def _marker(name: str, error: str, index: int) -> dict[str, Any]:
    return {SKIP_KEY: True, "file": name, "error": error, "index": index}


def is_skip_marker(sample: Any) -> bool:
    """True when ``sample`` is the marker of a skipped (bad) sample."""
    return isinstance(sample, Mapping) and bool(sample.get(SKIP_KEY, False))


def is_empty_batch(batch: Any) -> bool:
    """True when every sample of a collated batch was bad (only the skip fields are left)."""
    return isinstance(batch, Mapping) and set(batch) <= {"skipped_samples", "skipped_files"}


class _RobustMixin:
    """Catch per-sample failures in ``__getitem__`` and return a skip marker instead."""

    image_key: str = "image"

    def _robust_get(self, index: int, getter: Callable[[int], Any], item: Any) -> Any:
        try:
            sample = getter(index)
        except Exception as err:  # any bad sample, whatever failed
            name = _item_name(item, self.image_key)
            message = describe_error(err)
            logger.warning("skipping sample %d (%s): %s", index, name, message)
            return _marker(name, message, index)
        if is_skip_marker(sample):
            logger.warning("skipping sample %d (%s): %s", index, sample["file"], sample["error"])
        return sample


class RobustDataset(_RobustMixin, Dataset):
    """``monai.data.Dataset`` whose failing samples become skip markers.

    Args:
        data: datalist items.
        transform: transform applied to each item.
        image_key: key naming the image file (for the log and the marker).
    """

    def __init__(self, data: Sequence, transform: Callable | None = None, image_key: str = "image") -> None:
        super().__init__(data, transform)
        self.image_key = image_key

    def __getitem__(self, index: int | slice | Sequence[int]) -> Any:
        """Transformed item, or a skip marker when it fails."""
        if not isinstance(index, int):
            return super().__getitem__(index)
        return self._robust_get(index, super().__getitem__, self.data[index])


class RobustCacheDataset(_RobustMixin, CacheDataset):
    """``monai.data.CacheDataset`` (memory cache) whose failing samples become skip markers.

    A failure while filling the cache is stored as a marker (so the bad file is not re-read each
    epoch); a failure in the random part is caught at ``__getitem__``.

    Args:
        data: datalist items.
        transform: transform (its deterministic prefix is cached).
        image_key: key naming the image file.
        kwargs: further ``CacheDataset`` arguments (``cache_rate``, ``num_workers``, ...).
    """

    def __init__(self, data: Sequence, transform: Callable, image_key: str = "image", **kwargs: Any) -> None:
        self.image_key = image_key
        kwargs.setdefault("progress", False)
        super().__init__(data, transform, **kwargs)

    def _load_cache_item(self, idx: int) -> Any:
        try:
            return super()._load_cache_item(idx)
        except Exception as err:
            name = _item_name(self.data[idx], self.image_key)
            return _marker(name, describe_error(err), idx)

    def _transform(self, index: int) -> Any:
        cache_index: int | None = None
        if self.hash_as_key:
            key = self.hash_func(self.data[index])
            cache_index = self._hash_keys.index(key) if key in self._hash_keys else None
        elif index % len(self) < self.cache_num:
            cache_index = index
        if cache_index is not None and self._cache is not None and is_skip_marker(self._cache[cache_index]):
            return dict(self._cache[cache_index], index=index)
        return super()._transform(index)

    def __getitem__(self, index: int | slice | Sequence[int]) -> Any:
        """Transformed item, or a skip marker when it fails."""
        if not isinstance(index, int):
            return super().__getitem__(index)
        return self._robust_get(index, super().__getitem__, self.data[index])


class RobustPersistentDataset(_RobustMixin, PersistentDataset):
    """``monai.data.PersistentDataset`` (disk cache) whose failing samples become skip markers.

    Bad samples are never written to the cache; they fail (and are skipped) again each epoch.
    ``track_meta`` defaults to True (MONAI's default, False, stores plain tensors and loses the image
    affine the boxes need), which needs ``weights_only=False`` when loading: the cache folder must be
    trusted (it is written by this process).

    Args:
        data: datalist items.
        transform: transform (its deterministic prefix is cached on disk).
        cache_dir: cache folder.
        image_key: key naming the image file.
        kwargs: further ``PersistentDataset`` arguments.
    """

    def __init__(
        self,
        data: Sequence,
        transform: Callable,
        cache_dir: str | os.PathLike,
        image_key: str = "image",
        **kwargs: Any,
    ) -> None:
        self.image_key = image_key
        kwargs.setdefault("track_meta", True)
        kwargs.setdefault("weights_only", not kwargs["track_meta"])
        super().__init__(data, transform, cache_dir=cache_dir, **kwargs)

    def __getitem__(self, index: int | slice | Sequence[int]) -> Any:
        """Transformed item, or a skip marker when it fails."""
        if not isinstance(index, int):
            return super().__getitem__(index)
        return self._robust_get(index, super().__getitem__, self.data[index])

    def _cachecheck(self, item_transformed: Any) -> Any:
        # MONAI returns a freshly computed item as is but stores (and later loads) it converted
        # (``convert_to_tensor``: plain tensors become MetaTensors with track_meta); a batch mixing both
        # fails to collate. Hand back the stored form every time.
        item = super()._cachecheck(item_transformed)
        return convert_to_tensor(item, convert_numeric=False, track_meta=self.track_meta)


def _describe(obj: Any, depth: int = 0) -> Any:
    """A JSON-able, address-free description of a transform's settings (classes and plain values)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if depth > 6:
        return type(obj).__qualname__
    if isinstance(obj, (list, tuple)):
        return [_describe(v, depth + 1) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): _describe(v, depth + 1) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, types.FunctionType):  # a lambda in a transform: its code, constants and closure
        code = obj.__code__
        cells = [c.cell_contents for c in obj.__closure__ or ()]
        consts = [c for c in code.co_consts if not isinstance(c, types.CodeType)]
        return [obj.__qualname__, code.co_code.hex(), _describe(consts, depth + 1), _describe(cells, depth + 1)]
    fingerprint = getattr(obj, "fingerprint", None)
    if callable(fingerprint) and not isinstance(obj, type):  # the object says what its output depends on
        return [type(obj).__module__ + "." + type(obj).__qualname__, _describe(fingerprint(), depth + 1)]
    if callable(obj) and not hasattr(obj, "__dict__"):
        return getattr(obj, "__qualname__", type(obj).__qualname__)
    state = getattr(obj, "__dict__", None)
    if state is None:
        return type(obj).__qualname__
    return [type(obj).__module__ + "." + type(obj).__qualname__, _describe(dict(state), depth + 1)]


def transform_fingerprint(transforms: Sequence[Any]) -> bytes:
    """MD5 of the classes and settings of ``transforms`` (a ``PersistentDataset`` ``hash_transform``).

    A transform's settings are its attributes, walked recursively, except for an object with a
    ``fingerprint()`` method. That object is described by what the method returns: it names what the
    output depends on, such as a model's weights, which the attribute walk cannot see. It also leaves
    out run-time state, such as a cache of results already computed.

    Args:
        transforms: the cacheable transforms (MONAI passes the deterministic prefix).

    Returns:
        hex digest as bytes.
    """
    text = json.dumps(_describe(list(transforms)), sort_keys=True, default=lambda o: type(o).__qualname__)
    return hashlib.md5(text.encode("utf-8")).hexdigest().encode("utf-8")


def make_dataset(
    items: Sequence[Mapping[str, Any]],
    transform: Callable,
    cache: str = "none",
    cache_dir: str | os.PathLike | None = None,
    image_key: str = "image",
    name: str | None = None,
    **kwargs: Any,
) -> Dataset:
    """Build a robust dataset with the chosen caching.

    Args:
        items: datalist items.
        transform: the sample transform (e.g. ``cxr_transforms(...)``).
        cache: ``"none"``, ``"memory"`` (``CacheDataset``) or ``"disk"`` (``PersistentDataset``).
        cache_dir: folder of the disk cache (required for ``"disk"``).
        image_key: key naming the image file.
        name: sub-folder of ``cache_dir`` for this data set (e.g. the split), so one cache folder serves
            every split of a run.
        kwargs: passed to the MONAI dataset class.

    Returns:
        A ``RobustDataset``, ``RobustCacheDataset`` or ``RobustPersistentDataset``.

    Raises:
        ValueError: unknown ``cache`` or ``"disk"`` without ``cache_dir``.
    """
    if isinstance(transform, Compose):
        transform = transform.flatten()  # a nested Compose is Randomizable: MONAI would cache nothing
    if cache == "none":
        return RobustDataset(items, transform, image_key=image_key)
    if cache == "memory":
        return RobustCacheDataset(items, transform, image_key=image_key, **kwargs)
    if cache == "disk":
        if cache_dir is None:
            raise ValueError("cache='disk' needs a cache_dir")
        if name:
            cache_dir = Path(cache_dir) / name
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("hash_transform", transform_fingerprint)
        return RobustPersistentDataset(items, transform, cache_dir=cache_dir, image_key=image_key, **kwargs)
    raise ValueError(f"unknown cache {cache!r}: choose 'none', 'memory' or 'disk'")


def collate_skip_bad(batch: Sequence[Any]) -> dict[str, Any]:
    """Collate a batch, dropping skip markers and recording them.

    Args:
        batch: samples (dicts) and skip markers, as returned by the robust datasets.

    Returns:
        ``monai.data.list_data_collate`` of the good samples plus ``"skipped_samples"`` (int) and
        ``"skipped_files"`` (list of str); only these two keys when every sample was bad.
    """
    good = [s for s in batch if not is_skip_marker(s)]
    bad = [s for s in batch if is_skip_marker(s)]
    out: dict[str, Any] = dict(list_data_collate(good)) if good else {}
    out["skipped_samples"] = len(bad)
    out["skipped_files"] = [str(s["file"]) for s in bad]
    return out
