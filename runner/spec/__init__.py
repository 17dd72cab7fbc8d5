"""Spec loading: YAML with positions, extends, templates and secrets, models, requests."""

from runner.spec.loader import DEFAULT_PATHS, discover, load_specs
from runner.spec.models import Spec
from runner.spec.resolved import BatchSpec, EnvironmentSpec, RunSpec, SpecSet
from runner.spec.templates import MissingSecret, RenderOptions
from runner.spec.varfile import read_var_file

__all__ = [
    "DEFAULT_PATHS",
    "BatchSpec",
    "EnvironmentSpec",
    "MissingSecret",
    "RenderOptions",
    "RunSpec",
    "Spec",
    "SpecSet",
    "discover",
    "load_specs",
    "read_var_file",
]
