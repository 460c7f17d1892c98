"""Which augmented views of each image the feature store keeps, and whether the model averages them.

Light (no TensorFlow): the knobs, validated. `views.py` makes the views.
"""

import json
import os
from dataclasses import dataclass

from components.common.config.knobs import knob
from components.common.contract.artifact_files import FEATURES_INFO

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
    test_time_views: int = knob(4, "with test-time augmentation, how many views the model averages: 4 the image, "
                                "its mirror and two central crops; 2 the image and its mirror; 0 the training "
                                "views. Each view is a pass of the base network per test image and per served "
                                "image", choices=(0, 2, 4))

    def __post_init__(self):
        if self.augment_views not in (1, 2, 4):
            raise ValueError(f"augment_views must be 1, 2 or 4, got {self.augment_views}")
        if self.test_time_views not in (0, 2, 4):
            raise ValueError(f"test_time_views must be 0 (the training views), 2 or 4, got {self.test_time_views}")

    @property
    def train_views(self) -> tuple[str, ...]:
        """The views of every training image."""
        return VIEW_NAMES[:self.augment_views]

    @property
    def test_views(self) -> tuple[str, ...]:
        """The views the model averages: test_time_views of them (0: the training ones), else the image."""
        if not self.test_time_augmentation:
            return VIEW_NAMES[:1]
        return VIEW_NAMES[:self.test_time_views] if self.test_time_views else self.train_views


def views_to_average(test_time_augmentation: bool, features_dir: str) -> tuple[str, ...]:
    """The views a model averages: with test-time augmentation, those extracted for its test split."""
    if not test_time_augmentation:
        return VIEW_NAMES[:1]
    with open(os.path.join(features_dir, FEATURES_INFO), encoding="utf-8") as info:
        return tuple(json.load(info).get("test_views", VIEW_NAMES[:1]))
