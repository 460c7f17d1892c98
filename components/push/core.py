"""Push core: export the blessed model into `<serving_root>/<model_name>/<version>/`.

The export is written into a hidden staging directory beside the versions (TF Serving ignores
names that are not integers), infra-validated by loading it in a fresh process and answering
real test images as the evaluate step did, and only then renamed to the next version number.
A rename onto an existing non-empty directory fails, so two pushes at once end as two versions,
never one overwritten. A gs:// serving root gets the same promises another way (gcs_commit.py).
"""

import errno
import logging
import os
import shutil
import tempfile

from components.common.contract import examples_info
from components.common.contract.artifact_files import (
    BASE_NETWORK_INFO,
    BLESSING,
    EDGE_REPORT,
    HISTORY,
    LABELS,
    METRICS,
    PREDICTIONS,
)
from components.common.contract.serving_layout import (
    EVALUATION_RECORD_FILE,
    MODEL_KEY_FILE,
    evaluation_record,
    existing_versions,
    model_directory,
)
from components.common.contract.warmup_requests import write_warmup_requests
from components.common.model.modeling import load_joined_model
from components.common.storage import atomic_files, gcs
from components.push.export import export_serving_model
from components.push.gcs_commit import commit_to_gcs
from components.push.infra_check import InfraCheck
from components.push.manifests import kserve_inference_service, model_card, tf_serving_deployment
from components.push.result import PushResult, write_push_result

logger = logging.getLogger(__name__)

MODEL_CARD = "model_card.md"
KSERVE_MANIFEST = "kserve-inferenceservice.yaml"
TF_SERVING_MANIFEST = "tf-serving.yaml"


def _commit(staging_dir: str, model_dir: str) -> int:
    """Renames the staging directory to the next free version number; returns it."""
    version = 0
    while True:
        # Never below a number found taken: a folder without saved_model.pb is no version, but its
        # name is not free.
        version = max((existing_versions(model_dir) or [0])[-1], version) + 1
        try:
            os.rename(staging_dir, os.path.join(model_dir, str(version)))
            return version
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # Another push took this version first: take the next one.


def _export_edge_models(model, examples_dir: str, evaluation_dir: str, staging_dir: str,
                        output_dir: str) -> dict[str, dict]:
    """The TFLite models that pass their checks, into the version; every check into `edge.json` in both places."""
    from components.push import edge_export

    edge = edge_export.export(model, examples_dir, staging_dir, os.path.join(evaluation_dir, PREDICTIONS))
    for directory in (staging_dir, output_dir):
        os.makedirs(directory, exist_ok=True)
        atomic_files.write_json(os.path.join(directory, EDGE_REPORT), edge)
    for variant, check in edge.items():
        logger.info("push: TFLite %s, %d bytes: %s", variant, check["bytes"], check["reason"])
    return edge


def _write_model_card(staging_dir, *, model_name, run_id, labels, examples_dir, evaluation_dir,
                      base_model_path, head_model_path, edge) -> None:
    history = atomic_files.read_json(os.path.join(os.path.dirname(head_model_path), HISTORY))
    card = model_card(
        model_name=model_name, run_id=run_id, labels=labels,
        counts=examples_info.read_stats(examples_dir).counts,
        metrics=atomic_files.read_json(os.path.join(evaluation_dir, METRICS)),
        blessing=atomic_files.read_json(os.path.join(evaluation_dir, BLESSING)),
        base_network=atomic_files.read_json(os.path.join(os.path.dirname(base_model_path), BASE_NETWORK_INFO)),
        head={"config": history.get("config"), "epochs_run": history["epochs_run"],
              "best_epoch": history["best_epoch"]},
        edge=edge,
    )
    atomic_files.write_text(os.path.join(staging_dir, MODEL_CARD), card)


def _write_evaluation_record(staging_dir: str, *, evaluation_dir: str, labels: list[str], run_id: str) -> None:
    """The evaluation that blessed this version, for later runs' drift guard (the model card is for people)."""
    metrics = atomic_files.read_json(os.path.join(evaluation_dir, METRICS))
    record = evaluation_record(accuracy=metrics["accuracy"], test_count=metrics["count"], labels=labels,
                               run_id=run_id)
    atomic_files.write_json(os.path.join(staging_dir, EVALUATION_RECORD_FILE), record)


def _write_manifests(output_dir: str, model_name: str, model_dir: str) -> None:
    atomic_files.write_text(os.path.join(output_dir, KSERVE_MANIFEST), kserve_inference_service(model_name, model_dir))
    atomic_files.write_text(os.path.join(output_dir, TF_SERVING_MANIFEST), tf_serving_deployment(model_name, model_dir))


def run(*, evaluation_dir: str, examples_dir: str, base_model_path: str, head_model_path: str,
        serving_root: str, model_name: str, output_dir: str, run_id: str = "", model_key: str = "",
        infra_check: InfraCheck | None = None, trust_base_model: bool = False, edge_export: bool = True) -> PushResult:
    """Pushes the model when the evaluation blessed it; otherwise leaves serving untouched.

    A pushed version holds the SavedModel, its warmup requests (`warmup_requests.py`),
    `model_card.md` and the evaluation record (`serving_layout.EVALUATION_RECORD_FILE`: test
    accuracy, test-set size, labels), which TF Serving ignores and later evaluations read for
    their drift guard; the push result artifact holds
    `push.json` and, for a push, KServe and TF Serving manifests pointing at the model.
    `model_key`, the content key of the base and head, is kept in the version so a later run can
    tell that it would push the same model again. `infra_check`, started early by the caller so
    its TensorFlow import overlaps this work, validates the export; one is started here if not.
    `trust_base_model`, the run's own trust in its base, loads the saved base outside Keras safe mode.
    `edge_export` adds the TFLite models that pass their checks (`edge_export.py`), and `edge.json`
    with every check, to the version and to the push result artifact.
    """
    if not model_name or os.sep in model_name or model_name.startswith("."):
        raise ValueError(f"model_name must be a plain directory name, got {model_name!r}")
    blessing = atomic_files.read_json(os.path.join(evaluation_dir, BLESSING))
    if not blessing["blessed"]:
        result = PushResult(False, None, None, f"not blessed: {blessing['reason']}")
    else:
        image_size = examples_info.read_stats(examples_dir).image_size
        labels = atomic_files.read_lines(os.path.join(examples_dir, LABELS))
        model_dir = model_directory(serving_root, model_name)
        remote = gcs.is_gcs(model_dir)
        if not remote:
            os.makedirs(model_dir, exist_ok=True)
        # Locally the staging directory sits beside the versions, so the commit is one rename.
        staging_dir = tempfile.mkdtemp(dir=None if remote else model_dir, prefix=".staging-")
        try:
            with infra_check or InfraCheck(examples_dir, os.path.join(evaluation_dir, PREDICTIONS)) as infra:
                model = load_joined_model(base_model_path, head_model_path, trusted=trust_base_model)
                views = tuple(atomic_files.read_json(os.path.join(evaluation_dir, METRICS)).get("views", ["identity"]))
                export_serving_model(model, labels, image_size, staging_dir, views)
                infra.run(staging_dir)
            write_warmup_requests(staging_dir, model_name, examples_dir)
            edge = _export_edge_models(model, examples_dir, evaluation_dir, staging_dir, output_dir) \
                if edge_export else {}
            _write_model_card(staging_dir, model_name=model_name, run_id=run_id, labels=labels,
                              examples_dir=examples_dir, evaluation_dir=evaluation_dir,
                              base_model_path=base_model_path, head_model_path=head_model_path, edge=edge)
            _write_evaluation_record(staging_dir, evaluation_dir=evaluation_dir, labels=labels, run_id=run_id)
            if model_key:
                atomic_files.write_text(os.path.join(staging_dir, MODEL_KEY_FILE), model_key + "\n")
            os.chmod(staging_dir, 0o755)
            version = commit_to_gcs(staging_dir, model_dir) if remote else _commit(staging_dir, model_dir)
        finally:
            shutil.rmtree(staging_dir, ignore_errors=True)
        uri = gcs.join(model_dir, str(version)) if remote else os.path.join(model_dir, str(version))
        result = PushResult(True, uri, version, f"{blessing['reason']}; pushed version {version}")
    write_push_result(output_dir, result)
    if result.pushed:
        _write_manifests(output_dir, model_name, model_directory(serving_root, model_name))
    logger.info("push: %s", result.reason if not result.pushed else f"pushed {result.uri}")
    return result
