"""One knob, one name, one default, one help text: the typed configs, the CLI, the pipeline and its
components agree, because all of them read the field that declares the knob."""

import argparse
import dataclasses
import os

import pytest
import yaml
from kfp import compiler

from components.common.config.knobs import HELP, knob_fields
from components.common.contract.artifact_files import ARTIFACTS
from pipeline.cli.commands import build_parser
from pipeline.cli.run_options import config_from_args, knob_arguments, option_name
from pipeline.definition.config import PARTS, PipelineConfig
from pipeline.definition.pipeline import headstart_pipeline

KNOBS = list(knob_fields(PipelineConfig))
# A value other than the default for every knob, each of its own type.
CHOSEN = {
    "source": "tfds:beans", "exclude": "gs://b/audit/exclude.csv", "relabel": "gs://b/audit/relabel.csv",
    "base_model": "vgg16", "base_weights": "none", "alpha": 0.5, "image_size": 96,
    "pooling": "flatten", "trust_base_model": True, "train_fraction": 0.7, "eval_fraction": 0.2,
    "compact_examples": True, "beam_args": ("--direct_num_workers=2", "--direct_running_mode=multi_threading"),
    "hidden_units": (64, 32),
    "dropout": 0.3, "learning_rate": 0.01, "epochs": 7, "batch_size": 16, "patience": 2, "seed": 3, "l2": 0.001,
    "label_smoothing": 0.1, "class_weights": True, "tune_seconds": 60, "augment_views": 4,
    "test_time_augmentation": False, "test_time_views": 2, "fine_tune_mode": "on", "fine_tune_fraction": 0.5,
    "fine_tune_learning_rate": 0.0001, "fine_tune_epochs": 2, "measure_transfer_lift": True,
    "accuracy_threshold": 0.5, "auc_threshold": 0.6, "champion_tolerance": 0.05, "max_test_interval": 0.2,
    "bless_small_test_set": True, "serving_root": "gs://b/serving",
    "model_name": "beans", "audit_top": 7, "edge_export": False, "cache_root": "gs://b/cache", "use_cache": False,
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    compiler.Compiler().compile(headstart_pipeline, str(path))
    return yaml.safe_load(path.read_text())


def help_text(config: type, name: str) -> str:
    """The help one knob of `config` declares."""
    return knob_fields(config)[name].metadata[HELP]


def run_options() -> dict[str, argparse.Action]:
    """`headstart run`'s options by destination."""
    [commands] = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    return {action.dest: action for action in commands.choices["run"]._actions}


def test_every_knob_of_every_part_is_a_pipeline_parameter_under_its_own_name():
    declared = [name for part in PARTS for name in knob_fields(part)]
    assert sorted(set(declared)) == sorted(KNOBS)


def test_the_parts_built_from_the_pipelines_defaults_are_the_parts_defaults():
    config = PipelineConfig()
    for part in PARTS:
        assert config.part(part) == part(), part.__name__


def test_the_compiled_pipeline_gives_every_input_its_default_and_help(compiled):
    parameters = compiled["root"]["inputDefinitions"]["parameters"]
    assert sorted(parameters) == sorted(KNOBS)
    for name, value in PipelineConfig().to_arguments().items():
        assert parameters[name]["defaultValue"] == value, name
        assert parameters[name]["description"] == help_text(PipelineConfig, name), name


def test_every_component_input_is_a_knob_or_an_artifact_and_is_described_as_the_pipeline_describes_it(compiled):
    for component, spec in compiled["components"].items():
        if "dag" in spec:
            continue  # a group of tasks (the exit handler's): its inputs are the pipeline's, passed on
        inputs = spec["inputDefinitions"]
        for name, parameter in {**inputs.get("parameters", {}), **inputs.get("artifacts", {})}.items():
            if parameter.get("parameterType") == "TASK_FINAL_STATUS":
                continue  # the exit task's: how the run ended, from KFP
            expected = help_text(PipelineConfig, name) if name in KNOBS else ARTIFACTS.get(name)
            assert expected, f"{component}: input {name} is neither a pipeline knob nor a declared artifact"
            assert parameter["description"] == expected, f"{component}: {name}"


def test_run_has_one_option_per_knob_named_after_it_with_its_help_and_default():
    options = run_options()
    for name in KNOBS:
        action = options[name]
        assert action.option_strings[0] == option_name(name)
        assert action.default is None  # unset: the pipeline's (or the demo's) default applies
        shown = action.help.replace("%%", "%")
        assert shown.startswith(help_text(PipelineConfig, name)), name
        assert "(default: " in shown, name


def test_run_with_no_knob_set_is_the_pipelines_defaults_with_its_paths_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["run", "--source", "tfds:beans", "--pipeline-root", "runs"])
    assert config_from_args(args) == PipelineConfig(source="tfds:beans", serving_root=str(tmp_path / "serving"),
                                                    cache_root=str(tmp_path / "runs" / "cache"))


def test_every_knob_set_on_the_command_line_reaches_the_config():
    assert sorted(CHOSEN) == sorted(KNOBS)
    defaults = dataclasses.asdict(PipelineConfig())
    assert all(CHOSEN[name] != defaults[name] for name in KNOBS)
    args = build_parser().parse_args(["run", *knob_arguments(CHOSEN), "--pipeline-root", os.devnull])
    assert config_from_args(args) == PipelineConfig(**CHOSEN)


def test_a_bad_value_is_refused_naming_its_knob():
    args = build_parser().parse_args(["run", "--source", "tfds:beans", "--fine-tune-fraction", "2"])
    with pytest.raises(ValueError, match="fine_tune_fraction"):
        config_from_args(args)
