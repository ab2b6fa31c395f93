"""Data for the course: the embedded synthetic dataset, CIFAR-10/100, image folders, loaders.

Start with ``make_loaders("synthetic", batch_size=128)``; see ``course_lib.data.synthetic`` for
how the synthetic images carry their class in a low- and a high-frequency cue.
"""

from course_lib.data.datasets import (
    DATASETS,
    DatasetError,
    DatasetInfo,
    DataSpec,
    dataset_labels,
    default_root,
    get_dataset,
    list_datasets,
    subset,
)
from course_lib.data.loaders import RankShard, make_loaders
from course_lib.data.synthetic import (
    CUES,
    SyntheticComponents,
    SyntheticConfig,
    make_synthetic,
    radial_power_spectrum,
    synthetic_components,
    synthetic_examples,
    synthetic_prototypes,
)
from course_lib.data.transforms import AUGMENTATIONS, TransformedDataset, mix_transform

__all__ = [
    "AUGMENTATIONS",
    "CUES",
    "DATASETS",
    "DatasetError",
    "DatasetInfo",
    "DataSpec",
    "RankShard",
    "SyntheticComponents",
    "SyntheticConfig",
    "TransformedDataset",
    "dataset_labels",
    "default_root",
    "get_dataset",
    "list_datasets",
    "make_loaders",
    "make_synthetic",
    "mix_transform",
    "radial_power_spectrum",
    "subset",
    "synthetic_components",
    "synthetic_examples",
    "synthetic_prototypes",
]
