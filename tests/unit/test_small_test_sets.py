"""Blessing rule 4 on real photos: a small test split cannot replace the served model, and its
record does not hold later models to it."""

import os

from components.common.config.base_network_spec import BaseNetworkSpec
from components.common.config.head_config import HeadConfig
from components.common.contract.artifact_files import BASE_MODEL_FILE
from components.evaluate import core as evaluate_core
from components.evaluate.blessing import BlessingPolicy
from components.extract_features import core as extract_core
from components.push import core as push_core
from components.train_head import core as train_core
from tests.unit.helpers import IMAGE_SIZE, prepared_examples, save_tiny_base

# The fixture's 200 photos give about 40 test images, whose accuracy under the tiny base is only known to
# about +-0.15: the bound between "counts" and "too small" is set between that and a 4-image split.
POLICY = dict(accuracy_threshold=0.0, champion_tolerance=0.5, max_test_interval=0.45)


def photo_tree(shared_fixtures, root, per_class):
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for name in sorted(os.listdir(shared_fixtures / "cats_dogs" / label))[:per_class]:
            os.symlink(shared_fixtures / "cats_dogs" / label / name, root / label / name)
    return root


def trained_on(tree, tmp_path, base):
    examples_dir = prepared_examples(tree, tmp_path)
    extract_core.run(examples_dir=examples_dir, features_dir=str(tmp_path / "features"),
                     base_model_dir=str(tmp_path / "base"),
                     spec=BaseNetworkSpec(base_model=base, image_size=IMAGE_SIZE))
    train = train_core.run(features_dir=str(tmp_path / "features"), head_model_dir=str(tmp_path / "head"),
                           config=HeadConfig(epochs=3))
    return {"examples_dir": examples_dir, "base_model_path": str(tmp_path / "base" / BASE_MODEL_FILE),
            "head_model_path": train.head_model_path}


def evaluate(run, serving_root, work, **policy):
    return evaluate_core.run(**{name: run[name] for name in ("examples_dir", "base_model_path", "head_model_path")},
                             output_dir=str(work / "evaluation"), policy=BlessingPolicy(**{**POLICY, **policy}),
                             serving_root=str(serving_root), model_name="pets")


def evaluate_and_push(run, serving_root, work, **policy):
    evaluation = evaluate(run, serving_root, work, **policy)
    pushed = push_core.run(evaluation_dir=str(work / "evaluation"), serving_root=str(serving_root), model_name="pets",
                           output_dir=str(work / "push"), edge_export=False, **run)
    return evaluation, pushed


def test_a_small_test_split_cannot_displace_the_served_model_nor_bind_later_ones(shared_fixtures, tmp_path):
    base = save_tiny_base(str(tmp_path / "tiny.keras"))
    large = trained_on(photo_tree(shared_fixtures, tmp_path / "large", 100), tmp_path / "l", base)
    small = trained_on(photo_tree(shared_fixtures, tmp_path / "small", 10), tmp_path / "s", base)
    serving = tmp_path / "serving"

    first, pushed = evaluate_and_push(large, serving, tmp_path / "1")
    assert first.metrics["count"] >= 35 and not first.metrics["small_test_split"] and pushed.version == 1

    refused, not_pushed = evaluate_and_push(small, serving, tmp_path / "2")
    assert refused.metrics["small_test_split"] and not refused.blessed and not not_pushed.pushed
    assert f"the test split has {refused.metrics['count']} images" in refused.reason
    for way_out in ("may not replace the champion (version 1)", "larger test split", "another --model-name",
                    "--bless-small-test-set"):
        assert way_out in refused.reason

    overridden, pushed = evaluate_and_push(small, serving, tmp_path / "3", bless_small_test_set=True)
    assert overridden.blessed and pushed.version == 2
    assert "only because bless_small_test_set is set" in overridden.reason

    # A later challenger on the large split is held to version 1's record, not version 2's.
    later = evaluate(large, serving, tmp_path / "4")
    assert later.champion["version"] == 2
    assert "best recorded blessed accuracy: version 1 recorded" in later.reason
    assert "versions [2] left out, their test splits too small to count" in later.reason

