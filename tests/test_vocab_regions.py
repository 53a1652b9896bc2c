import pytest

from gkmvlp_monai.core import vocab


def test_regions_are_the_29_imagenome_regions():
    names = vocab.region_names()
    assert len(names) == 29 and len(set(names)) == 29
    assert names[0] == "right lung" and names[-1] == "abdomen"
    assert {r.side for r in vocab.regions()} <= {"right", "left", "midline"}


def test_region_index_is_case_insensitive_and_errors_name_the_region():
    assert vocab.region_index("Cardiac Silhouette") == vocab.region_names().index("cardiac silhouette")
    with pytest.raises(KeyError, match="lingula"):
        vocab.region_index("lingula")


def test_label_sets():
    assert len(vocab.label_set("chexpert14")) == 14 and len(vocab.label_set("nih14")) == 14
    with pytest.raises(KeyError, match="unknown label set"):
        vocab.label_set("nope")
