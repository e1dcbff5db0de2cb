"""Lightning tasks: supervised baseline/fine-tuning, FixMatch (S5), UniMatch; losses, metrics."""

from s5geo.tasks.base import BaseSegmentationTask
from s5geo.tasks.evaluation import sliding_window_logits
from s5geo.tasks.fixmatch import FixMatch
from s5geo.tasks.losses import fixmatch_unlabeled_loss, supervised_loss
from s5geo.tasks.metrics import SegmentationMetrics, format_class_table
from s5geo.tasks.multi_dataset import MultiDatasetSegmentation
from s5geo.tasks.supervised import SupervisedSegmentation
from s5geo.tasks.unimatch import UniMatch

__all__ = [
    "BaseSegmentationTask",
    "FixMatch",
    "MultiDatasetSegmentation",
    "SegmentationMetrics",
    "SupervisedSegmentation",
    "UniMatch",
    "fixmatch_unlabeled_loss",
    "format_class_table",
    "sliding_window_logits",
    "supervised_loss",
]
