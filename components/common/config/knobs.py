"""Knobs: a config field whose default and help text are written once, where the field is declared.

Every pipeline parameter is a field of one of the light config classes (`BaseNetworkSpec`,
`SplitPolicy`, `HeadConfig`, `FineTuneConfig`, `BlessingPolicy`, `RunSettings`), declared with
`knob`. The CLI's options, the pipeline's signature and the `Args:` sections that KFP copies into
the compiled YAML all read the default and the help from there (as Google Cloud Pipeline
Components write a default once, in the signature, and document it once, in `Args:`).
"""

import dataclasses
import inspect
from typing import Any, Callable, Sequence

HELP = "help"
CHOICES = "choices"


def knob(default: Any, help: str, *, choices: Sequence[str] = ()) -> Any:
    """A dataclass field that is a pipeline parameter.

    Args:
        default: the value a run gets when nobody sets it.
        help: one sentence for a person: what the knob does, in the words the CLI shows.
        choices: the only values it takes, where they are few.
    """
    metadata = {HELP: help}
    if choices:
        metadata[CHOICES] = tuple(choices)
    return dataclasses.field(default=default, metadata=metadata)


def same_knob(config: type, name: str) -> Any:
    """A field that is the knob `name` of `config`, for a second config that reads the same value."""
    declared = knob_fields(config)[name]
    return dataclasses.field(default=declared.default, metadata=declared.metadata)


def knob_fields(config: type) -> dict[str, dataclasses.Field]:
    """The fields of a config class (or instance) that are knobs, by name, in declaration order."""
    return {field.name: field for field in dataclasses.fields(config) if HELP in field.metadata}


def documented(*configs: type, more: dict[str, str] | None = None) -> Callable:
    """Appends a Google-style `Args:` section to a function's docstring, one line per parameter.

    Placed under `@dsl.component` or `@dsl.pipeline`, so that KFP copies each parameter's help into
    the compiled YAML, where the KFP UI shows it beside the input. A parameter's text is the help
    of the knob of that name in `configs`, else its entry in `more` (artifacts, run placeholders).

    Raises:
        ValueError: a parameter that none of them documents, named.
    """
    texts = dict(more or {})
    for config in configs:
        texts.update({name: field.metadata[HELP] for name, field in knob_fields(config).items()})

    def document(function: Callable) -> Callable:
        names = list(inspect.signature(function).parameters)
        undocumented = [name for name in names if name not in texts]
        if undocumented:
            raise ValueError(f"{function.__name__}: no help for {', '.join(undocumented)}")
        # One line per parameter: KFP keeps a wrapped description's line breaks in the YAML.
        lines = [f"    {name}: {texts[name]}" for name in names]
        function.__doc__ = inspect.cleandoc(function.__doc__ or "") + "\n\nArgs:\n" + "\n".join(lines) + "\n"
        return function

    return document
