"""What a push did, written as `push.json`, and the push that need not happen: decided without TensorFlow."""

import os
from dataclasses import asdict, dataclass

from components.common.contract.artifact_files import BLESSING, PUSH_RESULT
from components.common.contract.serving_layout import serving_same_model
from components.common.storage import atomic_files


@dataclass(frozen=True)
class PushResult:
    """Whether the model was pushed, where, and why (not)."""

    pushed: bool
    uri: str | None
    version: int | None
    reason: str


def write_push_result(output_dir: str, result: PushResult) -> None:
    """Writes `push.json` into the push result artifact."""
    os.makedirs(output_dir, exist_ok=True)
    atomic_files.write_json(os.path.join(output_dir, PUSH_RESULT), asdict(result))


def already_serving(evaluation_dir: str, serving_root: str, model_name: str, model_key: str) -> PushResult | None:
    """The result of a blessed model that the newest pushed version already holds; None otherwise.

    Pushing it again would add a version identical to the one serving, so it is not pushed.
    """
    serving = serving_same_model(serving_root, model_name, model_key)
    if not serving or not atomic_files.read_json(os.path.join(evaluation_dir, BLESSING))["blessed"]:
        return None
    version = int(os.path.basename(serving.rstrip("/")))
    return PushResult(False, serving, version, f"already serving: version {version} holds this same model, "
                      "not pushed again")
