"""Which augmented views of each image the feature store keeps, and whether the model averages them.

Light (no TensorFlow): the knobs, validated. `views.py` makes the views.
"""

import json
import os
from dataclasses import dataclass

from components.common.artifact_files import FEATURES_INFO
from components.common.knobs import knob

# In the order they are taken: `augment_views` N keeps the first N.
VIEW_NAMES = ("identity", "flip", "crop85", "crop70")


@dataclass(frozen=True)
class ViewPolicy:
    """Augmented views of the training images in the feature store, and test-time augmentation."""

    augment_views: int = knob(2, "views of each training image the head trains on, each extracted once and kept "
                              "in the feature store: 1 the image, 2 also its mirror, 4 also central crops of 85% "
                              "and 70%; each view is a pass of the base network per image", choices=(1, 2, 4))
    test_time_augmentation: bool = knob(True, "the model answers with the average of its answers over the same "
                                        "views (evaluation and serving alike)")

    def __post_init__(self):
        if self.augment_views not in (1, 2, 4):
            raise ValueError(f"augment_views must be 1, 2 or 4, got {self.augment_views}")

    @property
    def train_views(self) -> tuple[str, ...]:
        """The views of every training image."""
        return VIEW_NAMES[:self.augment_views]

    @property
    def test_views(self) -> tuple[str, ...]:
        """The views the model averages: the training ones with test-time augmentation, else the image."""
        return self.train_views if self.test_time_augmentation else VIEW_NAMES[:1]


def views_to_average(test_time_augmentation: bool, features_dir: str) -> tuple[str, ...]:
    """The views a model averages: with test-time augmentation, those the features' training used."""
    if not test_time_augmentation:
        return VIEW_NAMES[:1]
    with open(os.path.join(features_dir, FEATURES_INFO), encoding="utf-8") as info:
        return tuple(json.load(info).get("train_views", VIEW_NAMES[:1]))
