"""Data for the course: the embedded synthetic dataset, CIFAR-10/100, image folders, loaders.

Start with ``make_loaders("synthetic", batch_size=128)``; see ``course_lib.data.synthetic`` for
how the synthetic images carry their class in a low- and a high-frequency cue.
"""

from course_lib.data.datasets import (
    AUGMENTATIONS,
    DATASETS,
    DatasetError,
    DatasetInfo,
    DataSpec,
    RankShard,
    TransformedDataset,
    dataset_labels,
    default_root,
    get_dataset,
    list_datasets,
    make_loaders,
    mix_transform,
    subset,
)
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
