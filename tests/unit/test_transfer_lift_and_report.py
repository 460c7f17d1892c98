"""Transfer lift on a random-weight copy of the base, and the HTML report that shows it."""

import numpy as np

from components.common.config.head_config import HeadConfig
from components.common.contract.artifact_files import LIFT
from components.common.storage import atomic_files
from components.evaluate import core as evaluate_core
from components.evaluate.blessing import BlessingPolicy
from components.evaluate.report import worst_mistakes
from components.transfer_lift import core


def test_lift_trains_the_same_head_on_random_weight_features(trained, tmp_path):
    result = core.run(examples_dir=trained["examples_dir"], base_model_path=trained["base_model_path"],
                      head_config=HeadConfig(epochs=3), output_dir=str(tmp_path / "lift"))

    assert 0.0 <= result.random_accuracy <= 1.0
    written = atomic_files.read_json(str(tmp_path / "lift" / LIFT))
    assert written["measured"] and written["random_accuracy"] == result.random_accuracy
    assert sorted(p.name for p in (tmp_path / "lift").iterdir()) == [LIFT]  # no scratch left behind


def test_worst_mistakes_are_the_most_confident_wrong_answers():
    labels = np.array([0, 1, 0, 1])
    probabilities = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.45, 0.55]])
    assert worst_mistakes(labels, probabilities) == [2, 1]


def test_report_has_figures_lift_and_reasons(trained, tmp_path):
    lift_dir = tmp_path / "lift"
    atomic_files.write_json(str(lift_dir / core.LIFT), {"measured": True, "random_accuracy": 0.5, "weights": "w.h5"})

    result = evaluate_core.run(
        examples_dir=trained["examples_dir"], base_model_path=trained["base_model_path"],
        head_model_path=trained["head_model_path"], output_dir=str(tmp_path / "evaluation"),
        policy=BlessingPolicy(accuracy_threshold=0.0), lift_dir=str(lift_dir), report_path=str(tmp_path / "report"),
    )

    page = (tmp_path / "report").read_text()
    assert result.metrics["transfer_lift"]["lift"] == result.metrics["accuracy"] - 0.5
    assert "Transfer lift" in page and "0.5000" in page and "BLESSED" in page
    assert page.count("data:image/png;base64") >= 4
    assert "thresholds alone decide" in page
    # Preprocess's near-duplicate count (none in this generated set) is said in the report.
    assert "0 test images dropped as near-duplicates of training images" in page
