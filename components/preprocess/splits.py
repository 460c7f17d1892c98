"""Deterministic split assignment from a content digest.

A digest, not a random draw, decides the split, so the same image lands in the same split on
every run and on every runner.
"""

from dataclasses import dataclass

BUCKETS = 10_000


def _bucket(digest: str) -> float:
    """A number in [0, 1) drawn from the first hex digits of a digest."""
    return int(digest[:8], 16) % BUCKETS / BUCKETS


@dataclass(frozen=True)
class SplitPolicy:
    """How examples are assigned to train, eval and test.

    Attributes:
        train_fraction: share of examples for training when the source gives no splits.
        eval_fraction: share for the eval split; also the share of an explicit train split carved
            out for eval when the source gives train but no eval.
        explicit_splits: the splits the source gave itself (folders, tfds splits).
    """

    train_fraction: float = 0.8
    eval_fraction: float = 0.1
    explicit_splits: tuple[str, ...] = ()

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
