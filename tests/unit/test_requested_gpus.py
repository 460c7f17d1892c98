"""A step given GPUs fails clearly without them; the CPU quota comes from the cgroup, not the node."""

import pytest

from components.common.config.head_config import HeadConfig
from components.common.config.requested_gpus import GPUS_ENV, check_requested_gpus
from components.common.runtime import cpu_quota
from components.train_head import core as train_core


def test_a_step_given_gpus_that_finds_none_fails_naming_the_gpu_image(monkeypatch):
    # This machine has no GPU and no CUDA libraries, as the CPU image has none.
    monkeypatch.setenv(GPUS_ENV, "1")
    with pytest.raises(RuntimeError, match="train-head was given 1 GPU.*finds 0.*--gpu-image"):
        check_requested_gpus("train-head")


def test_the_training_step_checks_before_it_trains(monkeypatch, tmp_path):
    monkeypatch.setenv(GPUS_ENV, "2")
    with pytest.raises(RuntimeError, match="was given 2 GPU"):
        train_core.run(features_dir=str(tmp_path / "absent"), head_model_dir=str(tmp_path / "head"),
                       config=HeadConfig())


def test_a_step_given_no_gpus_runs_where_it_is(monkeypatch):
    monkeypatch.delenv(GPUS_ENV, raising=False)
    check_requested_gpus("train-head")
    monkeypatch.setenv(GPUS_ENV, "0")
    check_requested_gpus("train-head")
    monkeypatch.setenv(GPUS_ENV, "two")
    with pytest.raises(ValueError, match="HEADSTART_GPUS='two'"):
        check_requested_gpus("train-head")


@pytest.mark.parametrize(
    "v2, v1, expected",
    [
        ("150000 100000", None, 1.5),
        ("max 100000", None, None),
        (None, ("200000", "100000"), 2.0),
        (None, ("-1", "100000"), None),
        (None, None, None),
    ],
)
def test_cgroup_cpu_limit(tmp_path, v2, v1, expected):
    v2_path = tmp_path / "cpu.max"
    v1_paths = (tmp_path / "cpu.cfs_quota_us", tmp_path / "cpu.cfs_period_us")
    if v2:
        v2_path.write_text(v2 + "\n")
    if v1:
        for path, text in zip(v1_paths, v1):
            path.write_text(text + "\n")
    assert cpu_quota.cgroup_cpu_limit(str(v2_path), tuple(map(str, v1_paths))) == expected


def test_available_cpus_is_capped_by_the_quota(monkeypatch):
    monkeypatch.setattr(cpu_quota.os, "sched_getaffinity", lambda pid: set(range(32)))
    monkeypatch.setattr(cpu_quota, "cgroup_cpu_limit", lambda: 1.5)
    assert cpu_quota.available_cpus() == 2
    monkeypatch.setattr(cpu_quota, "cgroup_cpu_limit", lambda: None)
    assert cpu_quota.available_cpus() == 32
