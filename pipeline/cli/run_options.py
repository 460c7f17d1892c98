"""`headstart run`'s pipeline options, made from the typed config: one option per knob, same name.

Each option is `--` and the knob's name with dashes; its help and default come from the field that
declares the knob. Options are parsed as unset (None) so that `config_from_args` can tell what a
person chose from what the demo or the pipeline supplies.
"""

import argparse
import dataclasses
import os
import typing
from typing import Any, Collection

from components.common.config.base_network_spec import APPLICATIONS, WEIGHTS_KEYWORDS
from components.common.config.knobs import CHOICES, HELP
from pipeline.definition.config import PipelineConfig

# Where `headstart run` departs from the pipeline's own default, as the help says it.
RUN_DEFAULT_NOTES = {"cache_root": "<pipeline-root>/cache for headstart run"}


def option_name(knob: str) -> str:
    """The command-line option of a knob: `fine_tune_mode` is `--fine-tune-mode`."""
    return "--" + knob.replace("_", "-")


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(item) for item in value) or "none"
    return str(value) if value != "" else "none"


def _help(field: dataclasses.Field, demo_defaults: dict[str, str]) -> str:
    notes = [_shown(field.default)]
    if field.name in RUN_DEFAULT_NOTES:
        notes.append(RUN_DEFAULT_NOTES[field.name])
    if field.name in demo_defaults:
        notes.append(f"{demo_defaults[field.name]} for the demo")
    # argparse formats help with %: a literal one must be doubled.
    return f"{field.metadata[HELP]} (default: {'; '.join(notes)})".replace("%", "%%")


def add_knob_options(parser: argparse.ArgumentParser, demo_defaults: dict[str, str]) -> None:
    """Adds one option per pipeline knob.

    Args:
        parser: the `run` command's parser.
        demo_defaults: how the demo's defaults read in help, by knob, where they differ.
    """
    types = typing.get_type_hints(PipelineConfig)
    for field in dataclasses.fields(PipelineConfig):
        kind, options = types[field.name], {}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif kind == tuple[int, ...]:
            options.update(type=int, nargs="*", metavar="N")
        elif kind == tuple[str, ...]:
            options.update(action="append", metavar="FLAG")
        else:
            options["type"] = kind
        if CHOICES in field.metadata:
            options["choices"] = field.metadata[CHOICES]
        parser.add_argument(option_name(field.name), dest=field.name, default=None,
                            help=_help(field, demo_defaults), **options)


def chosen(args: argparse.Namespace, knob: str) -> Any:
    """A knob's value as given on the command line, else the pipeline's default."""
    value = getattr(args, knob)
    return getattr(PipelineConfig, knob) if value is None else value


def knob_arguments(values: dict[str, Any]) -> list[str]:
    """Command-line arguments that set these knobs, as `add_knob_options` parses them."""
    types = typing.get_type_hints(PipelineConfig)
    arguments = []
    for name, value in values.items():
        option = option_name(name)
        if types[name] is bool:
            arguments.append(option if value else f"--no-{option[2:]}")
        elif types[name] == tuple[str, ...]:
            arguments += [f"{option}={item}" for item in value]  # items may start with --
        elif types[name] == tuple[int, ...]:
            arguments += [option, *map(str, value)]
        else:
            arguments.append(f"{option}={value}")
    return arguments


def _absolute_unless_remote(path: str) -> str:
    """Local directories become absolute (steps run elsewhere); gs:// URIs stay as they are."""
    return path if path.startswith("gs://") else os.path.abspath(path)


def _absolute_if_path(value: str, keywords: Collection[str] = ()) -> str:
    """Local paths become absolute (steps may run elsewhere); keywords, names and URIs stay as they are.

    Args:
        value: an option's value.
        keywords: the option's values that are never paths, even where a file of that name is in the
            working directory.
    """
    if value in keywords or value.startswith("gs://"):
        return value
    return os.path.abspath(value) if os.path.exists(value) else value


def config_from_args(args: argparse.Namespace, defaults: dict[str, Any] | None = None) -> PipelineConfig:
    """The validated pipeline configuration for `headstart run`'s arguments.

    Args:
        args: the parsed options, knobs the person left out being None.
        defaults: values for knobs left out that differ from the pipeline's (the demo's); the
            pipeline's own defaults apply to the rest.

    Raises:
        ValueError: a knob's value the typed config refuses, naming it.
    """
    from components.ingest.sources import is_local

    chosen = {field.name: getattr(args, field.name) for field in dataclasses.fields(PipelineConfig)
              if getattr(args, field.name) is not None}
    values = {**PipelineConfig().to_arguments(), **(defaults or {}), **chosen}
    values["cache_root"] = chosen.get("cache_root", os.path.join(args.pipeline_root, "cache"))
    if is_local(values["source"]):
        values["source"] = _absolute_if_path(values["source"])
    values["base_model"] = _absolute_if_path(values["base_model"], keywords=APPLICATIONS)
    values["base_weights"] = _absolute_if_path(values["base_weights"], keywords=WEIGHTS_KEYWORDS)
    for name in ("exclude", "relabel"):  # the audit's edited CSVs
        values[name] = _absolute_unless_remote(values[name]) if values[name] else ""
    values["serving_root"] = _absolute_unless_remote(values["serving_root"])
    values["cache_root"] = _absolute_unless_remote(values["cache_root"]) if values["cache_root"] else ""
    return PipelineConfig(**{name: tuple(value) if isinstance(value, list) else value
                             for name, value in values.items()})
