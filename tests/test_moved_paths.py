"""Old module paths keep working for one release, with a DeprecationWarning naming the new place."""

import importlib

import pytest
from monai.bundle import ConfigParser

from gkmvlp_monai._moved import MOVED


def test_old_class_path_resolves_to_the_new_object_with_a_warning() -> None:
    from gkmvlp_monai.engine.handlers import TrainingCheckpoints
    from gkmvlp_monai.engine.trainer import CXRTrainer

    with pytest.warns(DeprecationWarning, match="gkmvlp_monai.engine.handlers.TrainingCheckpoints"):
        from gkmvlp_monai.engines.pretrain import TrainingCheckpoints as old
    assert old is TrainingCheckpoints
    with pytest.warns(DeprecationWarning, match="CXRTrainer"):
        from gkmvlp_monai.engines.pretrain import GKMVLPTrainer
    assert GKMVLPTrainer is CXRTrainer


def test_an_old_config_target_still_builds() -> None:
    parser = ConfigParser({"handler": {"_target_": "gkmvlp_monai.engines.handlers.SkippedSamplesHandler"}})
    with pytest.warns(DeprecationWarning):
        handler = parser.get_parsed_content("handler")
    from gkmvlp_monai.engine.handlers import SkippedSamplesHandler

    assert isinstance(handler, SkippedSamplesHandler)


def test_every_new_module_named_in_the_table_exists() -> None:
    for targets in MOVED.values():
        for target in targets:
            importlib.import_module("gkmvlp_monai." + target)


def test_unknown_name_on_an_old_path_is_an_attribute_error() -> None:
    import gkmvlp_monai.engines.pretrain as old

    with pytest.raises(AttributeError, match="no 'not_a_name'"):
        old.not_a_name  # noqa: B018
