"""pydantic validation errors, told as ``path:line:col: where: what, and how to fix it``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from runner.errors import Problem, did_you_mean
from runner.spec import models
from runner.spec.located import Located, dotted

# The model that describes each place in a spec, with list indexes written as "*".
_SHAPES: dict[tuple[str, ...], type[BaseModel]] = {
    (): models.Spec,
    ("coalesce",): models.CoalesceConnection,
    ("userCredentials",): models.UserCredentials,
    ("defaults",): models.RunSettings,
    ("runs", "*"): models.Run,
    ("batches", "*"): models.Batch,
    ("batches", "*", "runs", "*"): models.Run,
}


def describe_validation_error(
    error: ValidationError, located: Located, shown: str
) -> list[Problem]:
    return [_problem(detail, located) for detail in error.errors()]


def _problem(detail: ErrorDetails, located: Located) -> Problem:
    loc = tuple(detail["loc"])
    kind = detail["type"]
    if kind == "missing":
        parent = loc[:-1]
        pos = located.key_pos(parent) if parent else located.value_pos(())
        where = f"{dotted(parent)}: " if parent else ""
        return pos.problem(f"{where}missing required key '{loc[-1]}'")
    if kind == "extra_forbidden":
        return located.key_pos(loc).problem(f"{_where(loc[:-1])}{_unknown_key(loc)}")
    pos = located.value_pos(loc)
    return pos.problem(f"{dotted(loc)}: {_message(detail, loc)}")


def _where(loc: tuple[Any, ...]) -> str:
    return f"{dotted(loc)}: " if loc else ""


def _unknown_key(loc: tuple[Any, ...]) -> str:
    key = str(loc[-1])
    shape = tuple("*" if isinstance(p, int) else str(p) for p in loc[:-1])
    model = _SHAPES.get(shape)
    if model is None:
        return f"unknown key '{key}'"
    allowed = list(model.model_fields)
    meant = did_you_mean(key, allowed)
    if meant is not None:
        return f"unknown key '{key}' (did you mean '{meant}'?)"
    return f"unknown key '{key}'; allowed keys: {', '.join(allowed)}"


SECRET_FIELDS = ("token", "snowflakePassword", "snowflakeKeyPairKey", "snowflakeKeyPairPass")


def _is_secret_place(loc: tuple[Any, ...]) -> bool:
    return any(part in SECRET_FIELDS for part in loc)


def _message(detail: ErrorDetails, loc: tuple[Any, ...]) -> str:
    kind = detail["type"]
    ctx = detail.get("ctx") or {}
    value = detail.get("input")
    shown = "" if _is_secret_place(loc) or isinstance(value, dict | list) else f" (got {value!r})"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number{shown}"
    if kind in ("greater_than_equal", "less_than_equal"):
        field = loc[-1]
        if field == "parallelism":
            return f"must be between 1 and {models.MAX_PARALLELISM}{shown}"
        bound = ctx.get("ge", ctx.get("le"))
        word = "at least" if kind == "greater_than_equal" else "at most"
        return f"must be {word} {bound}{shown}"
    if kind in ("bool_type", "bool_parsing"):
        if isinstance(value, str):
            return f"must be true or false, unquoted{shown}: text is not read as a boolean"
        return f"must be true or false{shown}"
    if kind == "string_type":
        return f"must be text{shown}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping of key: value"
    if kind == "list_type":
        return "must be a list"
    if kind == "too_short":
        return "must not be empty: add at least one run"
    if kind == "string_pattern_mismatch":
        return (
            "must start with a letter or digit and use only letters, digits, "
            f"'_', '.' and '-'{shown}"
        )
    if kind == "literal_error":
        return _literal_message(str(ctx.get("expected", "")), value, shown)
    return str(detail["msg"])


def _literal_message(expected: str, value: Any, shown: str) -> str:
    options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
    hint = ""
    if isinstance(value, str):
        same = [o for o in options if o.lower() == value.lower()]
        if same:
            hint = f"; did you mean '{same[0]}'? (case-sensitive)"
    return f"must be {expected}{shown}{hint}"
