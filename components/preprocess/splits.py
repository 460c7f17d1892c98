"""Deterministic split assignment from a content digest, stratified by class.

A digest, not a random draw, decides the split, so the same image lands in the same split on
every run and on every runner. A small class can draw no eval or test image that way (and then
its AUC is undefined): `stratify` moves, within each class, the fewest images needed so that
every class reaches every split its count allows, choosing them by digest too.
"""

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

from components.common.config.knobs import knob

BUCKETS = 10_000


def _bucket(digest: str) -> float:
    """A number in [0, 1) drawn from the first hex digits of a digest."""
    return int(digest[:8], 16) % BUCKETS / BUCKETS


@dataclass(frozen=True)
class SplitPolicy:
    """How examples are assigned to train, eval and test.

    Attributes:
        explicit_splits: the splits the source gave itself (folders, tfds splits).
        overrides: digest -> split for the images `stratify` moved.
    """

    train_fraction: float = knob(0.8, "share of the images for training when the source gives no splits")
    eval_fraction: float = knob(0.1, "share of the images for the eval split; carved from the train split when the "
                                "source gives train but no eval")
    explicit_splits: tuple[str, ...] = ()
    overrides: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if not 0 < self.train_fraction < 1:
            raise ValueError(f"train_fraction must be in (0, 1), got {self.train_fraction}")
        if not 0 <= self.eval_fraction < 1 or self.train_fraction + self.eval_fraction >= 1:
            raise ValueError(
                f"eval_fraction must be in [0, 1) and leave room for test; got train_fraction="
                f"{self.train_fraction}, eval_fraction={self.eval_fraction}"
            )

    def assign(self, digest: str, explicit_split: str) -> str:
        """The split of one example."""
        if digest in self.overrides:
            return self.overrides[digest]
        bucket = _bucket(digest)
        if self.explicit_splits:
            if explicit_split == "train" and "eval" not in self.explicit_splits and bucket < self.eval_fraction:
                return "eval"
            return explicit_split
        if bucket < self.train_fraction:
            return "train"
        if bucket < self.train_fraction + self.eval_fraction:
            return "eval"
        return "test"


class SplitError(ValueError):
    """A class has too few images to reach every split."""


def _needed_splits(policy: SplitPolicy) -> tuple[str, ...]:
    """The splits every class must reach among those the policy draws, lowest digest range first."""
    if policy.explicit_splits:  # the source's own splits are as given; eval may be carved from train
        carved = "train" in policy.explicit_splits and "eval" not in policy.explicit_splits
        return ("eval", "train") if carved and policy.eval_fraction > 0 else ()
    return ("train", "eval", "test") if policy.eval_fraction > 0 else ("train", "test")


def stratify(policy: SplitPolicy, examples: Iterable[tuple[str, str, str]]) -> SplitPolicy:
    """`policy` with the overrides that give every class an image in every split it draws.

    Args:
        policy: the shares and the source's explicit splits.
        examples: (digest, label, explicit split) of every example, as ingest indexed them.

    Raises:
        SplitError: naming a class with fewer images than the splits it must reach.
    """
    needed = _needed_splits(policy)
    if not needed:
        return policy
    rank = {split: index for index, split in enumerate(needed)}  # the order of their digest ranges
    by_class: dict[str, dict[str, list[str]]] = defaultdict(lambda: {split: [] for split in needed})
    for digest, label, explicit_split in examples:
        if not policy.explicit_splits or explicit_split == "train":
            by_class[label][policy.assign(digest, explicit_split)].append(digest)
    overrides: dict[str, str] = {}
    for label, splits in sorted(by_class.items()):
        total = sum(map(len, splits.values()))
        if total < len(needed):
            raise SplitError(f"class {label!r} has {total} image(s) to split, fewer than the {len(needed)} it needs "
                             f"for one in each of {', '.join(needed)}: add images of it, or drop the class")
        for split in needed:
            if splits[split]:
                continue
            # From the largest split, the image whose digest lies nearest the missing split's range:
            # the fewest images move, and the same ones on every run.
            donor = max(needed, key=lambda name: len(splits[name]))
            nearest = min if rank[split] < rank[donor] else max
            moved = nearest(splits[donor], key=_bucket)
            splits[donor].remove(moved)
            splits[split].append(moved)
            overrides[moved] = split
    return replace(policy, overrides=overrides)
