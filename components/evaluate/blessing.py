"""The blessing: absolute thresholds, and not worse than the champion now in serving."""

import math
import os
from dataclasses import asdict, dataclass

from components.common import storage
from components.common.artifact_files import BLESSING, METRICS


@dataclass(frozen=True)
class BlessingPolicy:
    """When a challenger is blessed.

    Attributes:
        accuracy_threshold: the least test accuracy.
        auc_threshold: the least test AUC; 0 means AUC is not required.
        champion_tolerance: how much lower than the champion's the challenger's accuracy may be,
            both measured on this run's test split.
    """

    accuracy_threshold: float = 0.8
    auc_threshold: float = 0.0
    champion_tolerance: float = 0.01

    def __post_init__(self):
        for name in ("accuracy_threshold", "auc_threshold", "champion_tolerance"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


def decide_blessing(challenger: dict, champion: dict | None, policy: BlessingPolicy) -> tuple[bool, list[str]]:
    """Whether the challenger is blessed, and every reason for the decision.

    Args:
        challenger: this run's test metrics (accuracy, auc).
        champion: the serving model's metrics on the same test split, or None if there is none
            or it cannot be compared (then the thresholds alone decide).
        policy: the thresholds and the tolerance.
    """
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
    if champion is None:
        reasons.append("no comparable champion in serving: thresholds alone decide")
    else:
        floor = champion["accuracy"] - policy.champion_tolerance
        comparison = (f"the champion (version {champion['version']}) scores {champion['accuracy']:.4f} "
                      f"on the same test split, tolerance {policy.champion_tolerance:.4f}")
        if accuracy < floor:
            blessed = False
            reasons.append(f"worse than the champion: {comparison}")
        else:
            reasons.append(f"not worse than the champion: {comparison}")
    return blessed, reasons


def write_blessing(evaluation_dir: str, blessed: bool, reasons: list[str], champion: dict | None,
                   policy: BlessingPolicy) -> None:
    """Writes blessing.json: the decision, every reason, the champion's scores and the policy."""
    storage.write_json(
        os.path.join(evaluation_dir, BLESSING),
        {"blessed": blessed, "reason": "; ".join(reasons), "reasons": reasons, "champion": champion, **asdict(policy)},
    )


def redecide_reused(evaluation_dir: str, champion_dir: str | None) -> tuple[bool, str]:
    """Decides the blessing again for a reused evaluation; returns (blessed, reason).

    A reused evaluation is only valid when there is no champion or the champion is this same
    model (the cache key says so), so its scores are the challenger's own: no model is loaded.
    """
    metrics = storage.read_json(os.path.join(evaluation_dir, METRICS))
    before = storage.read_json(os.path.join(evaluation_dir, BLESSING))
    policy = BlessingPolicy(**{name: before[name] for name in BlessingPolicy.__dataclass_fields__})
    champion = None
    if champion_dir:
        champion = {"version": int(os.path.basename(champion_dir)), "uri": champion_dir,
                    "accuracy": metrics["accuracy"], "auc": metrics["auc"], "same_model": True}
    blessed, reasons = decide_blessing(metrics, champion, policy)
    write_blessing(evaluation_dir, blessed, reasons, champion, policy)
    return blessed, "; ".join(reasons)
