"""The batch-key contract (``gkmvlp_monai/core/keys.py``): the pre-training transforms, the network and
the evaluation inferer produce what it says, and ``check_batch`` names what is wrong."""

from __future__ import annotations

import pytest
import torch
from monai.transforms import Compose, SelectItemsd

from gkmvlp_monai.core import keys as K
from gkmvlp_monai.core import vocab
from gkmvlp_monai.data.datalist import load_datalist
from gkmvlp_monai.data.dataset import collate_skip_bad
from gkmvlp_monai.data.synth.targets import DrawnEntityTargetsd
from gkmvlp_monai.knowledge.transforms import EntityTargetsd, ReportEntitiesd
from gkmvlp_monai.models.gkmvlp import build_gkmvlp
from gkmvlp_monai.models.text import TokenizeReportd
from gkmvlp_monai.tasks.pretrain.engine import PretrainEvalInferer
from gkmvlp_monai.transforms.pipelines import cxr_train_transforms
from gkmvlp_monai.transforms.regions import ExtractAnatomicalRegionsd

S = 64


def _good_batch(b: int = 2) -> dict:
    return {
        K.IMAGE: torch.rand(b, 1, S, S),
        K.REGION_BOXES: torch.zeros(b, 29, 4),
        K.REGION_MASK: torch.ones(b, 29, dtype=torch.bool),
        K.INPUT_IDS: torch.zeros(b, 16, dtype=torch.long),
        K.ATTENTION_MASK: torch.ones(b, 16, dtype=torch.long),
        K.REPORT: ["a", "b"][:b],
    }


def test_pretraining_transforms_network_and_inferer_keep_the_contract(iu_synth_tiny):
    torch.manual_seed(0)
    net = build_gkmvlp("tiny", [e.description for e in vocab.entities()], image_size=S).eval()
    # the region-source transform without model or atlas: iu-synth's annotated boxes, recorded as such
    deterministic, random = cxr_train_transforms(S, region_extractor=ExtractAnatomicalRegionsd())
    keys = (*K.PRETRAIN_KEYS, K.ENTITY_TRUTH, K.REPORT, K.REGION_SOURCE, K.REGION_CONFIDENCE)
    chain = Compose(
        [
            deterministic,
            random,
            ReportEntitiesd(keys="entities"),
            EntityTargetsd(keys="entities", normal_study_negatives=True),
            TokenizeReportd(keys=K.REPORT, tokenizer=net.tokenizer, max_length=net.max_text_length),
            DrawnEntityTargetsd(allow_missing_keys=True),  # what validation adds on iu-synth
            SelectItemsd(keys=list(keys), allow_missing_keys=True),
        ]
    )
    items = [chain(item) for item in load_datalist(iu_synth_tiny, "training")[:2]]
    expected = {"S": S, "R": 29, "E": len(vocab.entities()), "L": net.max_text_length}
    for item in items:
        assert K.check_batch(item, keys, batched=False) == expected
    assert [item[K.REGION_SOURCE] for item in items] == ["annotation", "annotation"]
    batch = collate_skip_bad(items)
    assert K.check_batch(batch, keys) == {"B": 2, **expected}
    with torch.no_grad():
        out = PretrainEvalInferer()(batch, net)
    outputs = (K.ECLS_PROBS, K.PATCH_ATTN, K.IMAGE_EMBED, K.TEXT_EMBED, K.SIM_I2T, K.ENTITY_TARGETS)
    sizes = K.check_batch(out, outputs, sizes={"B": 2, "E": expected["E"]})
    assert sizes["D"] == 32 and (sizes["h"], sizes["w"]) == (2, 2)


def test_check_batch_names_the_key_and_both_forms():
    assert K.check_batch(_good_batch(), [K.IMAGE, K.REGION_BOXES, K.REPORT])["R"] == 29
    bad = {**_good_batch(), K.REGION_BOXES: torch.zeros(2, 29, 4, dtype=torch.float64)}
    with pytest.raises(
        K.BatchContractError,
        match=r"batch\['region_boxes'\]: expected float32 \[B, R, 4\], got float64 \[2, 29, 4\]",
    ):
        K.check_batch(bad, [K.REGION_BOXES])
    # sizes must agree across keys: 28 mask entries for 29 boxes
    bad = {**_good_batch(), K.REGION_MASK: torch.ones(2, 28, dtype=torch.bool)}
    with pytest.raises(
        K.BatchContractError,
        match=r"batch\['region_mask'\]: expected bool \[B, R\], got bool \[2, 28\] \(sizes so far: B=2, R=29\)",
    ):
        K.check_batch(bad, [K.REGION_BOXES, K.REGION_MASK])
    with pytest.raises(K.BatchContractError, match=r"batch has no 'entity_state' \(expected int64 \[B, E\]"):
        K.check_batch(_good_batch(), [K.ENTITY_STATE])
    with pytest.raises(K.BatchContractError, match=r"batch\['report'\]: expected str \[B\], got str"):
        K.check_batch({K.REPORT: "one report"}, [K.REPORT])
    with pytest.raises(ValueError, match="'labels' is not a key of the batch contract"):
        K.check_batch(_good_batch(), ["labels"])


def test_a_key_with_several_forms_accepts_each():
    multilabel = {K.LABEL: torch.zeros(2, 14)}
    multiclass = {K.LABEL: torch.tensor([3, 1])}
    masks = {K.LABEL: torch.zeros(2, 3, S, S), K.IMAGE: torch.rand(2, 1, S, S)}
    assert K.check_batch(multilabel, [K.LABEL])["C"] == 14
    assert K.check_batch(multiclass, [K.LABEL]) == {"B": 2}
    assert K.check_batch(masks, [K.IMAGE, K.LABEL])["K"] == 3
    with pytest.raises(
        K.BatchContractError, match=r"expected float32 \[B, C\] or int64 \[B\] or float32 \[B, K, S, S\]"
    ):
        K.check_batch({K.LABEL: torch.zeros(2, 3, dtype=torch.int32)}, [K.LABEL])
