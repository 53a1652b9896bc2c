"""OOD statistics: Ledoit-Wolf covariance, Mahalanobis distances, percentiles, the file and the handler."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gkmvlp_monai.engine.ood import (
    OODScorer,
    OODStats,
    OODStatsHandler,
    embedding_kind,
    fit_ood_stats,
    image_embedding,
    ledoit_wolf,
    mahalanobis,
    trained_frontal_only,
)


def test_ledoit_wolf_matches_sklearn(rng):
    sklearn_cov = pytest.importorskip("sklearn.covariance")
    x = rng.normal(size=(40, 12)) @ rng.normal(size=(12, 12))
    mean, cov, shrinkage = ledoit_wolf(x)
    ref = sklearn_cov.LedoitWolf().fit(x)
    np.testing.assert_allclose(mean, ref.location_, atol=1e-10)
    np.testing.assert_allclose(cov, ref.covariance_, atol=1e-8)
    assert shrinkage == pytest.approx(ref.shrinkage_)
    # fewer samples than dimensions: still positive definite
    _, cov, _ = ledoit_wolf(rng.normal(size=(5, 20)))
    assert np.linalg.eigvalsh(cov).min() > 0
    with pytest.raises(ValueError, match="n >= 2"):
        ledoit_wolf(np.zeros((1, 3)))


def test_mahalanobis_is_euclidean_for_identity():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(mahalanobis(x, np.zeros(2), np.eye(2)), [5.0, 0.0])


def test_in_distribution_low_percentile_shifted_points_ood(rng, tmp_path):
    d = 16
    basis = rng.normal(size=(d, d)) / np.sqrt(d)
    train = rng.normal(size=(800, d)) @ basis
    held = rng.normal(size=(300, d)) @ basis
    stats = fit_ood_stats(
        train,
        held,
        training_domain={"name": "synthetic", "description": "gaussian"},
        training_views={"PA": 800},
    )
    assert stats.threshold == pytest.approx(np.percentile(stats.heldout_distances, 99))
    fresh = rng.normal(size=(500, d)) @ basis
    shifted = fresh + 3.0 * basis[0] / np.linalg.norm(basis[0]) * np.sqrt(d)
    p_in = stats.percentile(stats.distance(fresh))
    p_out = stats.percentile(stats.distance(shifted))
    # fresh in-domain points are spread over the held-out percentiles; shifted ones are beyond them
    assert 30 < np.median(p_in) < 70 and (stats.distance(fresh) > stats.threshold).mean() < 0.05
    assert (p_out == 100).all() and (stats.distance(shifted) > stats.threshold).all()

    path = stats.save(tmp_path / "ood_stats.npz")
    back = OODStats.load(path)
    np.testing.assert_array_equal(back.precision, stats.precision)
    assert back.training_domain["name"] == "synthetic" and back.frontal_only
    scorer = OODScorer(path, embedding="encode_image")
    recs = scorer.records(np.concatenate([fresh[:1], shifted[:1]]))
    assert [r["ood"] for r in recs] == [False, True]
    assert recs[1]["ood_percentile"] == 100.0 and recs[1]["training_domain"] == "synthetic"
    summary = scorer.summary()
    assert summary["ood_threshold_percentile"] == 99.0 and summary["training_views"] == {"PA": 800}
    json.dumps(recs + [summary])  # JSON-able as written


def test_missing_or_mismatched_statistics_give_null_with_reason(tmp_path, rng):
    recs = OODScorer(tmp_path / "none.npz").records(np.zeros((2, 4)))
    assert len(recs) == 2 and recs[0]["ood"] is None and recs[0]["ood_score"] is None
    assert "no OOD statistics" in recs[0]["ood_reason"]
    path = fit_ood_stats(rng.normal(size=(10, 4)), rng.normal(size=(5, 4)), embedding="features").save(
        tmp_path / "s.npz"
    )
    recs = OODScorer(path, embedding="encode_image").records(np.zeros((1, 4)))
    assert recs[0]["ood"] is None and "'features'" in recs[0]["ood_reason"]


def test_trained_frontal_only(tmp_path, rng):
    assert (
        trained_frontal_only(None) is True
        and trained_frontal_only(tmp_path / "x.npz", default=False) is False
    )
    x = rng.normal(size=(10, 3))
    mixed = fit_ood_stats(x, x, training_views={"PA": 5, "LATERAL": 5}).save(tmp_path / "m.npz")
    assert trained_frontal_only(mixed) is False
    unknown = fit_ood_stats(x, x, training_views={"": 10}).save(tmp_path / "u.npz")
    assert trained_frontal_only(unknown) is True


def test_handler_embeds_with_the_saved_best_weights(tmp_path):
    from monai.transforms import Compose, SelectItemsd

    from gkmvlp_monai.data.dicom_writer import write_cxr_dicom
    from gkmvlp_monai.tasks.classification.model import build_classifier
    from gkmvlp_monai.transforms import cxr_transforms

    gen = np.random.default_rng(1)
    items = []
    for i in range(6):
        pic = (gen.random((48, 40)) * 4000).astype(np.uint16)
        items.append({"image": str(write_cxr_dicom(tmp_path / f"im{i}.dcm", pic)), "view": "PA"})
    items.append({"image": str(tmp_path / "missing.dcm"), "view": "PA"})  # skipped, not fatal
    net = build_classifier(num_classes=3, size="tiny", image_size=32)
    assert embedding_kind(net) == "features"
    best = build_classifier(num_classes=3, size="tiny", image_size=32)
    torch.save(best.state_dict(), tmp_path / "model.pt")
    transform = Compose([cxr_transforms(32, with_boxes=False), SelectItemsd(keys=["image"])])
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"name": "tiny-dicom", "description": "six noise images"}))
    handler = OODStatsHandler(
        net,
        items[:5],
        items[5:],
        transform,
        str(tmp_path / "ood_stats.npz"),
        str(datalist),
        str(tmp_path / "model.pt"),
    )
    stats = handler()
    assert stats is not None and stats.info["n_train"] == 5 and stats.info["n_heldout"] == 1
    assert stats.training_domain["name"] == "tiny-dicom" and stats.training_views == {"PA": 5}
    # the best weights were used, and the trained network itself was left alone
    img = transform({"image": items[0]["image"]})["image"][None].float()
    with torch.no_grad():
        d_best = stats.distance(image_embedding(best.eval(), img).numpy())
        d_net = stats.distance(image_embedding(net.eval(), img).numpy())
    train_d = stats.distance(
        np.stack(
            [
                image_embedding(best, transform(it)["image"][None].float()).detach().numpy()[0]
                for it in items[:5]
            ]
        )
    )
    assert d_best[0] == pytest.approx(train_d[0]) and d_net[0] != pytest.approx(d_best[0])
    assert OODStats.load(tmp_path / "ood_stats.npz").embedding == "features"
