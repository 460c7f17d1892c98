"""The blessing: whether the newly trained model (the challenger) is good enough to push.

It combines absolute thresholds, a paired comparison with the champion now in serving, and a
guard against the best accuracy a blessed version has recorded. A challenger is blessed when all
of these hold:

1. Its test accuracy (and AUC, when that threshold is set) meets the threshold.
2. Paired with the champion, the newest pushed version scored on this run's test images: a
   bootstrap over those images of the accuracy difference (challenger - champion) gives one-sided
   bounds at `confidence`. The challenger is refused when the upper bound is below
   -champion_tolerance: the images show, at that confidence, that it is worse by more than the
   tolerance. A difference the test set is too small to resolve does not refuse.
3. Its accuracy is at most the drift margin, max(drift_margin, champion_tolerance), below the best
   accuracy recorded by a pushed version with the same classes (see
   `serving_layout.read_evaluation_records`). Those scores were measured on each version's own
   test split, so this is no paired comparison: it bounds how far quality can slide over many
   pushes, each of which passed rule 2 alone.
4. Evidence: a test split too small for its accuracy to mean much, one whose 95% Wilson interval
   (`accuracy_evidence.py`) is wider than `max_test_interval`, cannot replace a champion (unless
   `bless_small_test_set`, which the blessing records), and a version that recorded such an
   accuracy is left out of rule 3. Without this, 17 test images all right (0.82 to 1.00) tie with
   any champion under rule 2, replace it, and then hold every later model to 1.0 under rule 3.
"""

import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from components.common.config.knobs import knob
from components.common.contract.artifact_files import BLESSING, METRICS, PREDICTIONS
from components.common.contract.serving_layout import read_evaluation_records
from components.common.model.accuracy_evidence import too_small, wilson_interval
from components.common.storage import atomic_files

# The paired bootstrap: resamples of the test images, seeded so a decision can be repeated.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class BlessingPolicy:
    """When a challenger is blessed.

    Attributes:
        confidence: the one-sided confidence at which the paired comparison must show the
            challenger lower by more than the tolerance before it is refused.
        drift_margin: how far below the best accuracy recorded by a pushed version the
            challenger may be (never less than `champion_tolerance`). Those scores come from
            other test splits: 0.05 leaves room for that noise (an accuracy near 0.9 has a
            standard error of 0.017 on 300 images, and the best of several measurements is
            itself a lucky one) while bounding the whole slide, however many pushes.
    """

    accuracy_threshold: float = knob(0.8, "the least test accuracy that blesses the model")
    auc_threshold: float = knob(0.0, "the least test AUC that blesses the model; 0 for none")
    champion_tolerance: float = knob(0.01, "how much lower than the serving model's accuracy, both measured on "
                                     "this run's test split, the new model's may be and still be blessed")
    max_test_interval: float = knob(0.10, "the widest 95% interval of a test accuracy that counts as evidence: a "
                                    "model whose test split gives a wider one cannot replace the model in serving, "
                                    "and a version that recorded one is left out of the drift guard (about 100 "
                                    "test images at 0.93 accuracy give 0.10)")
    bless_small_test_set: bool = knob(False, "let a model whose test split is too small for max_test_interval "
                                      "replace the model in serving; the blessing records it")
    confidence: float = 0.95
    drift_margin: float = 0.05

    def __post_init__(self):
        for name in ("accuracy_threshold", "auc_threshold", "champion_tolerance", "max_test_interval",
                     "drift_margin"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")

    @property
    def effective_drift_margin(self) -> float:
        """The drift guard's margin: never tighter than what one push may lose to the champion."""
        return max(self.drift_margin, self.champion_tolerance)


@dataclass(frozen=True)
class PairedComparison:
    """The challenger against the champion on the same test images.

    Attributes:
        count: test images.
        challenger_only: images the challenger gets right and the champion wrong.
        champion_only: images the champion gets right and the challenger wrong.
        difference: challenger accuracy - champion accuracy.
        lower, upper: one-sided bounds of the difference at `confidence` (paired bootstrap).
        confidence: the one-sided confidence of each bound.
        resamples: bootstrap resamples of the test images.
    """

    count: int
    challenger_only: int
    champion_only: int
    difference: float
    lower: float
    upper: float
    confidence: float
    resamples: int


def paired_comparison(challenger_correct, champion_correct, confidence: float,
                      resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> PairedComparison:
    """A paired bootstrap of the accuracy difference over the test images.

    Args:
        challenger_correct: per test image, whether the challenger's prediction is right.
        champion_correct: per test image, in the same order, whether the champion's prediction is
            right.
        confidence: the one-sided confidence of each bound.
        resamples: how many times the test images are resampled with replacement.
        seed: seeds the resampling.
    """
    challenger = np.asarray(challenger_correct, dtype=bool)
    champion = np.asarray(champion_correct, dtype=bool)
    if challenger.ndim != 1 or challenger.shape != champion.shape or not len(challenger):
        raise ValueError(f"paired correctness needs two equal, non-empty vectors, got shapes "
                         f"{challenger.shape} and {champion.shape}")
    count = len(challenger)
    gains = int(np.sum(challenger & ~champion))
    losses = int(np.sum(~challenger & champion))
    # Each image adds +1, -1 or 0 to the difference; resampling the images with replacement draws
    # each kind a multinomial number of times, the same bootstrap in memory independent of count.
    drawn = np.random.default_rng(seed).multinomial(
        count, [gains / count, losses / count, (count - gains - losses) / count], size=resamples)
    differences = (drawn[:, 0] - drawn[:, 1]) / count
    lower, upper = np.quantile(differences, [1 - confidence, confidence])
    return PairedComparison(count, gains, losses, (gains - losses) / count, float(lower), float(upper),
                            confidence, resamples)


def best_recorded(records: dict[int, dict], labels: list[str], max_test_interval: float = 1.0) -> dict | None:
    """The version with the highest recorded accuracy among those with these classes, or None.

    Records from test splits too small to count (a 95% interval wider than max_test_interval)
    are left out, and named in the answer.

    Returns:
        {"version", "accuracy", "test_count", "left_out"} of that version; "left_out" lists the
        versions whose records were too small to count.
    """
    same_classes = {version: record for version, record in records.items() if record["labels"] == list(labels)}
    left_out = sorted(version for version, record in same_classes.items()
                      if too_small(record["accuracy"], record["test_count"], max_test_interval))
    comparable = [(record["accuracy"], version, record["test_count"]) for version, record in same_classes.items()
                  if version not in left_out]
    if not comparable:
        return None
    accuracy, version, test_count = max(comparable)
    return {"version": version, "accuracy": accuracy, "test_count": test_count, "left_out": left_out}


def _small_test_split(challenger: dict, policy: BlessingPolicy, champion: dict | None) -> tuple[bool, str | None]:
    """(whether the test split keeps the challenger from replacing the champion, the reason to give)."""
    count = challenger.get("count")
    if not count:
        return False, None
    if not too_small(challenger["accuracy"], count, policy.max_test_interval):
        return False, None
    low, high = wilson_interval(challenger["accuracy"], count)
    evidence = (f"the test split has {count} images: accuracy {challenger['accuracy']:.4f}, 95% interval "
                f"{low:.4f} to {high:.4f}, wider than max_test_interval {policy.max_test_interval:.2f}, too small "
                f"for its accuracy to mean much")
    if champion is None or champion.get("same_model"):  # nothing to replace
        return False, evidence
    if policy.bless_small_test_set:
        return False, f"{evidence}; it may replace the champion only because bless_small_test_set is set"
    return True, (f"{evidence}, so it may not replace the champion (version {champion['version']}): use a "
                  f"larger test split (more images), another --model-name, or --bless-small-test-set to "
                  f"replace it anyway")


def decide_blessing(challenger: dict, champion: dict | None, policy: BlessingPolicy, *,
                    paired: PairedComparison | None = None,
                    best: dict | None = None) -> tuple[bool, list[str]]:
    """Whether the challenger is blessed, and every reason for the decision.

    Args:
        challenger: this run's test metrics (accuracy, auc).
        champion: the serving model's summary (version, accuracy) on the same test split, or None
            if there is none or it cannot be compared.
        policy: the thresholds, the tolerance, the confidence and the drift margin.
        paired: the challenger against the champion image by image; required with a champion.
        best: the best recorded blessed version (see `best_recorded`), or None for no drift guard.
    """
    if champion is not None and paired is None:
        raise ValueError("a champion is compared image by image: pass its paired comparison")
    checks = [("accuracy", challenger["accuracy"], policy.accuracy_threshold)]
    if policy.auc_threshold > 0:
        checks.append(("AUC", challenger["auc"], policy.auc_threshold))
    reasons, blessed = [], True
    for name, value, threshold in checks:
        meets = not math.isnan(value) and value >= threshold
        blessed = blessed and meets
        verdict = "meets" if meets else "is below"
        reasons.append(f"test {name} {value:.4f} {verdict} the threshold {threshold:.4f}")
    accuracy = challenger["accuracy"]
    refused_for_evidence, evidence = _small_test_split(challenger, policy, champion)
    if evidence:
        blessed = blessed and not refused_for_evidence
        reasons.append(evidence)
    if champion is None:
        reasons.append("no comparable champion in serving" + ("" if best else ": thresholds alone decide"))
    else:
        confidence = f"{paired.confidence:.0%} confidence"
        comparison = (
            f"the champion (version {champion['version']}) scores {champion['accuracy']:.4f} and the challenger "
            f"{accuracy:.4f} on the same {paired.count} test images; paired difference {paired.difference:+.4f} "
            f"({paired.challenger_only} images right only for the challenger, {paired.champion_only} only for "
            f"the champion), one-sided {confidence} bounds {paired.lower:+.4f} to {paired.upper:+.4f} "
            f"(paired bootstrap, {paired.resamples} resamples of the test images)"
        )
        # A tiny slack: bounds are ratios of image counts and the tolerance a decimal fraction.
        if paired.upper < -policy.champion_tolerance - 1e-9:
            blessed = False
            reasons.append(f"worse than the champion by more than the tolerance {policy.champion_tolerance:.4f} "
                           f"at {confidence}: {comparison}")
        else:
            reasons.append(f"not worse than the champion by more than the tolerance "
                           f"{policy.champion_tolerance:.4f} at {confidence}: {comparison}")
    if best is not None:
        within, reason = _drift_guard(accuracy, best, policy)
        blessed = blessed and within
        reasons.append(reason)
    elif champion is not None:
        reasons.append("no version in serving records its evaluation: no drift guard")
    return blessed, reasons


def _drift_guard(accuracy: float, best: dict, policy: BlessingPolicy) -> tuple[bool, str]:
    """Rule 3: (whether the accuracy is within the drift margin of the best record, the reason)."""
    margin = policy.effective_drift_margin
    record = (f"version {best['version']} recorded {best['accuracy']:.4f} on its own test split of "
              f"{best['test_count']} images, the challenger scores {accuracy:.4f} here, margin {margin:.4f} "
              f"(different test splits: a guard against drift, not a paired comparison)")
    if best.get("left_out"):
        record += (f"; versions {best['left_out']} left out, their test splits too small to count "
                   f"(max_test_interval {policy.max_test_interval:.2f})")
    if accuracy < best["accuracy"] - margin - 1e-9:
        return False, f"more than the drift margin below the best recorded blessed accuracy: {record}"
    return True, f"within the drift margin of the best recorded blessed accuracy: {record}"


def best_in_serving(model_dir: str | None, labels: list[str], max_test_interval: float = 1.0) -> dict | None:
    """The best recorded blessed version under a model directory (local or gs://), or None."""
    return best_recorded(read_evaluation_records(model_dir), labels, max_test_interval) if model_dir else None


def write_blessing(evaluation_dir: str, blessed: bool, reasons: list[str], champion: dict | None,
                   policy: BlessingPolicy, *, paired: PairedComparison | None = None,
                   best: dict | None = None) -> None:
    """Writes blessing.json, which push reads to decide.

    It holds the decision, every reason, the champion's scores, the paired comparison, the best
    recorded version and the policy.
    """
    atomic_files.write_json(
        os.path.join(evaluation_dir, BLESSING),
        {"blessed": blessed, "reason": "; ".join(reasons), "reasons": reasons, "champion": champion,
         "paired": asdict(paired) if paired else None, "best_recorded": best, **asdict(policy)},
    )


def redecide_reused(evaluation_dir: str, champion_dir: str | None) -> tuple[bool, str]:
    """Decides the blessing again for a reused evaluation; returns (blessed, reason).

    A reused evaluation is only valid when there is no champion or the champion is this same
    model (the cache key says so), so its scores are the challenger's own: no model is loaded.
    The versions' records are read again, since pushes may have added some.
    """
    metrics = atomic_files.read_json(os.path.join(evaluation_dir, METRICS))
    before = atomic_files.read_json(os.path.join(evaluation_dir, BLESSING))
    # Fields missing from an older blessing.json take their defaults.
    policy = BlessingPolicy(**{name: before[name] for name in BlessingPolicy.__dataclass_fields__ if name in before})
    champion = paired = best = None
    if champion_dir:
        champion = {"version": int(os.path.basename(champion_dir.rstrip("/"))), "uri": champion_dir,
                    "accuracy": metrics["accuracy"], "auc": metrics["auc"], "same_model": True}
        with np.load(os.path.join(evaluation_dir, PREDICTIONS)) as predictions:
            correct = predictions["probabilities"].argmax(axis=1) == predictions["label_indices"]
        paired = paired_comparison(correct, correct, policy.confidence)
        best = best_in_serving(champion_dir.rstrip("/").rsplit("/", 1)[0], metrics["labels"], policy.max_test_interval)
    blessed, reasons = decide_blessing(metrics, champion, policy, paired=paired, best=best)
    write_blessing(evaluation_dir, blessed, reasons, champion, policy, paired=paired, best=best)
    return blessed, "; ".join(reasons)
