"""Robust datasets: bad samples skipped and counted (0 and 2 workers), caching avoids re-decoding."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from ignite.engine import Engine
from PIL import Image
from torch.utils.data import DataLoader

from gkmvlp_monai.data.dataset import collate_skip_bad, is_empty_batch, is_skip_marker, make_dataset
from gkmvlp_monai.data.dicom_writer import write_cxr_dicom
from gkmvlp_monai.engine.handlers import SkippedSamplesHandler
from gkmvlp_monai.transforms import cxr_transforms


def _items(tmp_path, n_good: int = 5) -> list[dict]:
    items = []
    rng = np.random.default_rng(0)
    for i in range(n_good):
        pic = rng.integers(0, 4096, (48, 40), dtype=np.uint16)
        if i % 2:
            items.append({"image": str(write_cxr_dicom(tmp_path / f"g{i}.dcm", pic, transfer_syntax="rle"))})
        else:
            Image.fromarray((pic >> 4).astype(np.uint8)).save(tmp_path / f"g{i}.png")
            items.append({"image": str(tmp_path / f"g{i}.png")})
    (tmp_path / "bad.dcm").write_bytes(b"\x00" * 50)
    ct = write_cxr_dicom(tmp_path / "ct.dcm", np.zeros((8, 8), np.uint16), modality="CT")
    items.insert(1, {"image": str(tmp_path / "bad.dcm")})
    items.append({"image": str(ct)})
    items.append(
        {"image": str(tmp_path / "g0.png"), "region_boxes": {"no such region": [0, 0, 1, 1]}}
    )  # transform error
    return items


def _run_epochs(loader, epochs: int = 1) -> tuple[SkippedSamplesHandler, list[int]]:
    seen: list[int] = []

    def step(engine, batch):
        if not is_empty_batch(batch):
            seen.append(batch["image"].shape[0])

    engine = Engine(step)
    handler = SkippedSamplesHandler()
    handler.attach(engine)
    engine.run(loader, max_epochs=epochs)
    assert engine.state.metrics["skipped_samples"] == handler.history[-1]
    return handler, seen


@pytest.mark.parametrize("workers", [0, 2])
def test_bad_samples_skipped_and_counted(tmp_path, workers, caplog):
    items = _items(tmp_path)
    ds = make_dataset(items, cxr_transforms(32, train=True))
    assert is_skip_marker(ds[1]) and "bad.dcm" in ds[1]["error"]
    loader = DataLoader(ds, batch_size=3, num_workers=workers, collate_fn=collate_skip_bad)
    with caplog.at_level(logging.INFO):
        handler, seen = _run_epochs(loader, epochs=2)
    assert handler.history == [3, 3] and sum(seen) == 2 * 5
    assert "skipped 3 bad sample(s)" in caplog.text and "ct.dcm" in caplog.text


def test_collate_all_bad_batch(tmp_path):
    ds = make_dataset([{"image": str(tmp_path / "missing.png")}], cxr_transforms(32))
    batch = collate_skip_bad([ds[0]])
    assert (
        is_empty_batch(batch) and batch["skipped_samples"] == 1 and "missing.png" in batch["skipped_files"][0]
    )


@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_cache_avoids_redecoding(tmp_path, cache):
    items = _items(tmp_path)
    ds = make_dataset(items, cxr_transforms(32, train=True), cache=cache, cache_dir=tmp_path / "cache")
    loader = DataLoader(ds, batch_size=4, num_workers=0, collate_fn=collate_skip_bad)
    handler, seen = _run_epochs(loader)
    assert handler.history == [3] and sum(seen) == 5
    # destroy every good source file: a cached dataset still serves all of them
    for item in items:
        path = item["image"]
        if "/g" in path:
            with open(path, "wb") as fh:
                fh.write(b"corrupt")
    handler, seen = _run_epochs(loader)
    assert handler.history == [3] and sum(seen) == 5
    # without a cache the same items now fail
    fresh = make_dataset(items, cxr_transforms(32, train=True))
    handler, seen = _run_epochs(DataLoader(fresh, batch_size=4, collate_fn=collate_skip_bad))
    assert handler.history == [len(items)] and seen == []


@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_nested_compose_is_cached_and_sizes_do_not_collide(tmp_path, cache):
    """The bundles' shape ``Compose([deterministic_pipeline] + label_transforms)``: a nested Compose is
    Randomizable, so MONAI cached nothing before it and every epoch decoded every image again."""
    from monai.transforms import Compose, Lambdad

    from gkmvlp_monai.transforms import cxr_train_transforms

    items = [i for i in _items(tmp_path) if "/g" in i["image"] and "region_boxes" not in i]
    datasets = {}
    for size in (32, 16):
        deterministic, _ = cxr_train_transforms(size)
        label = Lambdad("image", lambda x: x, overwrite="label")  # a plain-tensor field, as labels are
        nested = Compose([deterministic, label, Lambdad("label", lambda x: torch.zeros(2))])
        datasets[size] = make_dataset(items, nested, cache=cache, cache_dir=tmp_path / "cache")
        first = [datasets[size][i]["image"].shape for i in range(len(items) - 1)]
        assert all(s[-2:] == (size, size) for s in first)
        # a batch mixing items read back from the cache and one computed now collates
        batch = collate_skip_bad([datasets[size][i] for i in range(len(items))])
        assert batch["label"].shape == (len(items), 2)
    for item in items:  # the sources are gone: the decoded images must come from the cache
        with open(item["image"], "wb") as fh:
            fh.write(b"corrupt")
    for size, ds in datasets.items():  # one cache_dir, two image sizes: each gets its own images
        again = [ds[i] for i in range(len(items))]
        assert not any(is_skip_marker(x) for x in again)
        assert all(x["image"].shape[-2:] == (size, size) for x in again)


def test_transform_fingerprint_follows_settings_and_lambdas():
    from monai.transforms import Lambdad

    from gkmvlp_monai.data.dataset import transform_fingerprint
    from gkmvlp_monai.transforms import cxr_train_transforms

    def fp(size: int) -> bytes:
        return transform_fingerprint(cxr_train_transforms(size)[0].transforms)

    assert fp(32) == fp(32) and fp(32) != fp(16)  # stable across builds, follows the image size

    def scaled(k: float) -> Lambdad:
        return Lambdad("image", lambda x: x * k)  # the factor lives in the closure

    assert transform_fingerprint([scaled(2.0)]) == transform_fingerprint([scaled(2.0)])
    assert transform_fingerprint([scaled(2.0)]) != transform_fingerprint([scaled(3.0)])
    assert transform_fingerprint([Lambdad("image", lambda x: x + 1)]) != transform_fingerprint(
        [Lambdad("image", lambda x: x - 1)]
    )


def test_make_dataset_arguments(tmp_path):
    with pytest.raises(ValueError, match="cache_dir"):
        make_dataset([], cxr_transforms(32), cache="disk")
    with pytest.raises(ValueError, match="unknown cache"):
        make_dataset([], cxr_transforms(32), cache="redis")


def test_demo_summary(tmp_path):
    from gkmvlp_monai.apps.image_pipeline_demo import run_image_pipeline_demo

    summary = run_image_pipeline_demo(tmp_path / "samples", image_size=64)
    ok = [f for f in summary["files"] if f["ok"]]
    assert len(ok) == 5 and summary["skipped_samples"] == 1
    assert summary["skipped_files"] == ["corrupt_truncated.dcm"]
    assert {f["photometric"] for f in ok} == {"MONOCHROME1", "MONOCHROME2"}
    assert all(
        f["output_shape"] == [1, 64, 64] and 0 <= f["intensity_range"][0] < f["intensity_range"][1] <= 1
        for f in ok
    )
    assert (
        ok[0]["reader"] == "CXRDicomReader"
        and ok[0]["original_size"] == [520, 600]
        and ok[0]["regions_kept"] == 2
    )
