"""A pipeline function's signature made from `PipelineConfig`: each parameter's name, type and default once.

KFP reads a pipeline's parameters from its function's signature and calls it with one value per
parameter, in order. Written out by hand, the signature repeats every knob the config declares,
and a second pipeline over some of them repeats them again; `takes_parameters` builds it instead.
"""

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from types import SimpleNamespace

from components.common.config.knobs import knob_fields
from pipeline.definition.config import PipelineConfig

DEFAULTS = PipelineConfig()
_FIELD_TYPES = {field.name: field.type for field in dataclasses.fields(PipelineConfig)}


def _kfp_parameter(name: str) -> inspect.Parameter:
    """One knob as KFP takes it: a tuple field is a list parameter, with the default as a list."""
    annotation, default = _FIELD_TYPES[name], getattr(DEFAULTS, name)
    if typing.get_origin(annotation) is tuple:
        annotation, default = list, list(default)
    return inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)


def takes_parameters(names: tuple[str, ...] | None = None) -> Callable:
    """Gives a pipeline body the signature KFP compiles: these knobs of `PipelineConfig` (all of them by default).

    The body takes the parameters as one namespace (`p.source`, ...), and keeps its name,
    docstring and return annotation.
    """
    names = tuple(knob_fields(PipelineConfig)) if names is None else names

    def decorate(body: Callable[[SimpleNamespace], typing.Any]) -> Callable:
        signature = inspect.Signature([_kfp_parameter(name) for name in names],
                                      return_annotation=inspect.signature(body).return_annotation)

        @functools.wraps(body)
        def pipeline_function(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return body(SimpleNamespace(**bound.arguments))

        pipeline_function.__signature__ = signature
        return pipeline_function

    return decorate
