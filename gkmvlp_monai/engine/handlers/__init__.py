"""Ignite handlers of the generic engine, one per file; bundle configs name them from here."""

from gkmvlp_monai.engine.handlers.checkpoints import TrainingCheckpoints, latest_checkpoint
from gkmvlp_monai.engine.handlers.gradient_clipping import GradientClipping
from gkmvlp_monai.engine.handlers.group import HandlerGroup
from gkmvlp_monai.engine.handlers.loss_components import LossComponents
from gkmvlp_monai.engine.handlers.metrics_writer import MetricsJSONWriter
from gkmvlp_monai.engine.handlers.skipped_samples import SkippedSamplesHandler

__all__ = [
    "GradientClipping",
    "HandlerGroup",
    "LossComponents",
    "MetricsJSONWriter",
    "SkippedSamplesHandler",
    "TrainingCheckpoints",
    "latest_checkpoint",
]
