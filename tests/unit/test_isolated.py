"""What an isolated container is given: its own task directory, its inputs read-only, its limits."""

import os

import pytest

from pipeline.local.isolated import memory_bytes, task_mounts


def executor_input(run_dir, inputs: dict, outputs: dict) -> dict:
    def artifacts(names):
        return {name: {"artifacts": [{"name": name, "uri": uri, "metadata": {}}]} for name, uri in names.items()}

    return {"inputs": {"parameterValues": {"image_size": 32}, "artifacts": artifacts(inputs)},
            "outputs": {"artifacts": artifacts(outputs),
                        "outputFile": str(run_dir / "train-head" / "executor_output.json")}}


def test_a_task_sees_its_own_directory_and_its_inputs_read_only(tmp_path):
    run_dir = tmp_path / "headstart-run"
    features = run_dir / "extract-features" / "features"
    features.mkdir(parents=True)
    (run_dir / "extract-features" / "base_network").mkdir()  # a sibling output it was not given

    mounts = task_mounts(executor_input(run_dir, {"features": str(features)},
                                        {"head": str(run_dir / "train-head" / "head")}), (os.getuid(), os.getgid()))

    task_dir = str(run_dir / "train-head")
    assert mounts == {task_dir: {"bind": task_dir, "mode": "rw"},
                      str(features): {"bind": str(features), "mode": "ro"}}
    assert os.path.isdir(task_dir)


def test_an_input_its_producer_never_wrote_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="input artifact .*features was not written"):
        task_mounts(executor_input(tmp_path, {"features": str(tmp_path / "features")},
                                   {"head": str(tmp_path / "train-head" / "head")}), (os.getuid(), os.getgid()))


@pytest.mark.parametrize("quantity, expected", [("8G", 8 * 10**9), ("512Mi", 512 * 2**20), ("2Gi", 2 * 2**30),
                                                ("1.5G", 15 * 10**8), ("1000", 1000)])
def test_memory_quantities(quantity, expected):
    assert memory_bytes(quantity) == expected


@pytest.mark.parametrize("quantity", ["", "G", "8 GB", "lots"])
def test_bad_memory_quantities_are_named(quantity):
    with pytest.raises(ValueError, match="not a Kubernetes memory quantity"):
        memory_bytes(quantity)
