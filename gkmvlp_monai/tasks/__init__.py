"""One folder per task: ``pretrain``, ``anatomy``, ``classification``, ``localization``,
``report_generation``, ``vqa``.

Each holds the same few files: ``model.py`` (what the task adds to the network), ``metrics.py``,
``engine.py`` (its wiring for the generic engine: items, transforms, inferers), ``predictions.py`` (its
predictions writer) and ``study.py`` (its runs for :mod:`gkmvlp_monai.studies`), where the task has them.
"""
