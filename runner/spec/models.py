"""The spec format, version 1 (DESIGN §2), as pydantic models.

The models validate a spec *after* its string leaves were rendered, so a value written
as a template is checked as the value it becomes. Fields keep the API's own names
(``jobID``, ``includeNodesSelector``, ...) so a spec reads like the request it makes.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from runner.secrets import SCRUBBER, Secret

DEFAULT_URL = "https://app.coalescesoftware.io"
DEFAULT_TOKEN_TEMPLATE = "{{ secret('COALESCE_TOKEN') }}"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
MAX_PARALLELISM = 1024


_PEM_HEADER = re.compile(r"^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----$", re.MULTILINE)
_PEM_FOOTER = re.compile(r"^-----END [A-Z0-9 ]*PRIVATE KEY-----$", re.MULTILINE)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def _digits(value: Any) -> Any:
    """IDs are digit strings; an integer written in YAML is accepted and becomes one."""
    if isinstance(value, bool):
        raise PydanticCustomError("digits", 'must be a string of digits such as "12"')
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]+", value):
        raise PydanticCustomError(
            "digits", 'must be a string of digits such as "12" (Coalesce IDs are numbers)'
        )
    return value


def parameter_text(value: Any) -> str | None:
    """A runtime parameter's value as Coalesce keeps it, text: a number or a boolean as a
    spec writes it (``true``, ``1.5``); ``None`` for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value
    return None


def _parameter_value(value: Any) -> Any:
    """Coalesce parameters are strings: numbers and booleans are converted, nothing else."""
    text = parameter_text(value)
    if text is not None:
        return text
    kind = {list: "a list", dict: "a map", type(None): "empty (null)"}.get(type(value), "not text")
    raise PydanticCustomError(
        "parameter_value",
        f"a parameter value must be text, a number or a boolean; this one is {kind}. "
        "Coalesce parameters are a flat map of strings: write the value as a string "
        "(e.g. JSON text in quotes) if you need structure",
    )


def _secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        # A literal credential is already in git history; at least keep it out of our output.
        SCRUBBER.register(value)
    raise PydanticCustomError(
        "literal_secret",
        "must come from secret('ENV_VAR') or secret_file('path'), not a literal value: "
        "specs are committed to git",
    )


def _bool_not_text(value: Any) -> Any:
    """YAML's true/false only: pydantic would read the text "yes", "on" or "1" as true."""
    if isinstance(value, str):
        raise PydanticCustomError(
            "bool_type",
            "must be true or false, unquoted (not the text {text})",
            {"text": repr(value)},
        )
    return value


#: A boolean written as YAML's true or false; text such as "yes" is an error.
Flag = Annotated[bool, BeforeValidator(_bool_not_text)]
#: The keys whose values are flags: a template that renders "true" or "false" there
#: gives the boolean (see the loader).
FLAG_KEYS = frozenset({"forceIgnoreEnvironmentStatus", "allowEmpty", "allNodes"})


def _int_not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "must be a whole number, not true/false")
    return value


_DURATION = re.compile(r"^\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*$")


def parse_duration(value: Any) -> float:
    """``90m``, ``1h30m``, ``45s`` or a number of seconds, as seconds."""
    if isinstance(value, bool):
        raise PydanticCustomError("duration", "must be a duration such as 90m, 1h30m or 45s")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise PydanticCustomError("duration", "must be a duration such as 90m, 1h30m or 45s")
        hours, minutes, secs = (int(g) if g else 0 for g in match.groups())
        seconds = float(hours * 3600 + minutes * 60 + secs)
    if seconds <= 0:
        raise PydanticCustomError("duration", "must be longer than zero")
    return seconds


Digits = Annotated[
    str,
    BeforeValidator(_digits),
    WithJsonSchema({"type": ["string", "integer"], "pattern": "^[0-9]+$"}),
]
SecretValue = Annotated[
    Secret,
    PlainValidator(_secret),
    WithJsonSchema(
        {
            "type": "string",
            "description": "A template that reads a secret: {{ secret('ENV_VAR') }} "
            "or {{ secret_file('path') }}",
            "pattern": r"\{\{.*secret(_file)?\(.*\}\}",
        }
    ),
]


def _job_name(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # the str type says what is wrong
    if not value.strip() or len(value) > MAX_JOB_NAME or not value.isprintable():
        raise PydanticCustomError(
            "job_name",
            "must be a job's name as Coalesce shows it: one line of printable text, at most "
            "{limit} characters (got {text})",
            {"limit": MAX_JOB_NAME, "text": repr(value[:60])},
        )
    return value


MAX_JOB_NAME = 256
JobName = Annotated[
    str,
    AfterValidator(_job_name),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_JOB_NAME}),
]
Parallelism = Annotated[int, BeforeValidator(_int_not_bool), Field(ge=1, le=MAX_PARALLELISM)]
ParameterValue = Annotated[
    str,
    BeforeValidator(_parameter_value),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": ["string", "number"], "pattern": r"^(\d+h)?(\d+m)?(\d+s)?$"}),
]
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=128)]

#: The run keys whose changes ``ignoreChanges`` may name, and where each sits in the
#: startRun body.
IGNORABLE_KEYS = {
    "jobID": "runDetails.jobID",
    "includeNodesSelector": "runDetails.includeNodesSelector",
    "excludeNodesSelector": "runDetails.excludeNodesSelector",
    "parallelism": "runDetails.parallelism",
    "forceIgnoreEnvironmentStatus": "runDetails.forceIgnoreEnvironmentStatus",
    "parameters": "parameters",
}


def _ignorable(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    key, dot, rest = value.partition(".")
    if key in IGNORABLE_KEYS and (not dot or (key == "parameters" and rest)):
        return value
    raise PydanticCustomError(
        "ignore_changes",
        "names no run key whose change can be ignored (got {text}); use parameters.NAME, "
        "parameters (all of them), or one of {keys}",
        {"text": repr(value), "keys": ", ".join(k for k in IGNORABLE_KEYS if k != "parameters")},
    )


IgnoredKey = Annotated[str, BeforeValidator(_ignorable)]


def ignored_fields(keys: list[str] | None) -> tuple[str, ...]:
    """The startRun fields (``parameters.load_date``, ``runDetails.jobID``) that
    ``ignoreChanges`` keys name."""
    fields = []
    for key in keys or ():
        head, dot, rest = key.partition(".")
        fields.append(f"{IGNORABLE_KEYS[head]}.{rest}" if dot else IGNORABLE_KEYS[head])
    return tuple(sorted(set(fields)))


class CoalesceConnection(_Model):
    """Where the Coalesce API is and how to authenticate to it."""

    url: str = Field(
        DEFAULT_URL,
        description="Base URL of the Coalesce API: a Coalesce host over https, a loopback "
        "address, or sim:// for the embedded simulator. Other hosts must be listed in "
        "RUNNER_ALLOWED_HOSTS.",
    )
    token: SecretValue | None = Field(
        None,
        description="The Coalesce access token (Deploy tab, Generate Access Token). "
        f"Default: {DEFAULT_TOKEN_TEMPLATE}",
    )


class UserCredentials(_Model):
    """Snowflake credentials sent with every run; keys are the API's own."""

    snowflakeAuthType: Literal["Basic", "KeyPair", "OAuth"] = Field(
        "Basic", description="Basic (user + password), KeyPair (user + PEM key) or OAuth."
    )
    snowflakeUsername: str | None = Field(None, description="Snowflake user (Basic, KeyPair).")
    snowflakePassword: SecretValue | None = Field(
        None, description="Snowflake password (Basic); must come from secret()."
    )
    snowflakeKeyPairKey: SecretValue | None = Field(
        None,
        description="PEM private key text (KeyPair), usually "
        "secret_file('~/.snowflake/rsa_key.p8').",
    )
    snowflakeKeyPairPass: SecretValue | None = Field(
        None, description="Passphrase of an encrypted private key (KeyPair), from secret()."
    )
    snowflakeWarehouse: str | None = Field(None, description="Snowflake warehouse to run in.")
    snowflakeRole: str | None = Field(None, description="Snowflake role to run as.")

    @field_validator("snowflakeKeyPairKey")
    @classmethod
    def _pem_key(cls, key: Secret | None) -> Secret | None:
        if key is None or not key.reveal():  # an unread secret is reported where it is read
            return key
        text = key.reveal().replace("\r\n", "\n").replace("\r", "\n").strip()
        if not _PEM_HEADER.search(text) or not _PEM_FOOTER.search(text):
            raise PydanticCustomError(
                "pem",
                "is not a PEM private key: it needs the '-----BEGIN PRIVATE KEY-----' header "
                "and the matching '-----END ...-----' footer (convert a DER key with "
                "'openssl pkcs8 -topk8 -inform DER -outform PEM')",
            )
        return key if text == key.reveal() else Secret(text)

    @model_validator(mode="after")
    def _fields_for_auth_type(self) -> UserCredentials:
        needed = {
            "Basic": ("snowflakeUsername", "snowflakePassword"),
            "KeyPair": ("snowflakeUsername", "snowflakeKeyPairKey"),
            "OAuth": (),
        }[self.snowflakeAuthType]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise PydanticCustomError(
                "credentials",
                "snowflakeAuthType {auth} needs {missing}",
                {"auth": self.snowflakeAuthType, "missing": " and ".join(missing)},
            )
        if self.snowflakeAuthType == "OAuth":
            extra = [
                name
                for name in ("snowflakePassword", "snowflakeKeyPairKey", "snowflakeKeyPairPass")
                if getattr(self, name) is not None
            ]
            if extra:
                raise PydanticCustomError(
                    "credentials",
                    "snowflakeAuthType OAuth sends no password or key; remove {extra}",
                    {"extra": ", ".join(extra)},
                )
        return self


class RunSettings(_Model):
    """The keys a run shares with ``defaults``."""

    jobID: Digits | None = Field(None, description="The Coalesce job to run (digits).")
    job: JobName | None = Field(
        None,
        description="The Coalesce job to run, by its name in the environment (instead of "
        "jobID). An online plan resolves it to the job's ID and a saved plan keeps that ID.",
    )
    includeNodesSelector: str | None = Field(
        None, description="Nodes to refresh, e.g. '{ location: STG }+'."
    )
    excludeNodesSelector: str | None = Field(None, description="Nodes to leave out.")
    parallelism: Parallelism | None = Field(
        None, description="How many nodes run at once (1-1024; Coalesce's default is 16)."
    )
    forceIgnoreEnvironmentStatus: Flag | None = Field(
        None,
        description="Run even if the environment's last deploy failed. Sent as both "
        "forceIgnoreEnvironmentStatus and forceIgnoreWorkspaceStatus.",
    )
    parameters: dict[str, ParameterValue] | None = Field(
        None,
        description="Runtime parameters (string values). Coalesce replaces the environment's "
        "parameter map with this one; defaults and a run's own merge key by key.",
    )
    timeout: Duration | None = Field(
        None, description="How long apply waits for the run, e.g. 90m, 1h30m, 45s."
    )
    ifRunning: Literal["wait", "skip", "fire"] | None = Field(
        None,
        description="What apply does when Coalesce already runs the same refresh (same job "
        "or selectors, same parameters), started by anyone: wait for it to end, then fire "
        "(default); skip this run; or fire anyway.",
    )
    allNodes: Flag | None = Field(
        None,
        description="Refresh every node of the environment: required, and only allowed, when "
        "the run has no job, no jobID and no selector.",
    )
    allowEmpty: Flag | None = Field(
        None, description="An include selector that matches no node is a warning, not an error."
    )
    ignoreChanges: list[IgnoredKey] | None = Field(
        None,
        description="Keys whose changes are expected and are not counted as changes by plan "
        "(shown, marked ignored), e.g. [parameters.load_date] for a date rendered from now(). "
        "A run's own list replaces the one in defaults.",
    )


class Run(RunSettings):
    """One startRun call."""

    name: Name = Field(description="The run's name, unique within the spec.")


class Batch(_Model):
    """Runs that may run concurrently; batches run one after another."""

    name: Name = Field(description="The batch's name.")
    runs: list[Run] = Field(min_length=1, description="The runs of this batch.")
    maxConcurrent: Annotated[int, BeforeValidator(_int_not_bool), Field(ge=1)] | None = Field(
        None, description="At most this many of the batch's runs in flight at once."
    )
    onFailure: Literal["stop", "continue"] = Field(
        "stop", description="stop: a failed run skips the later batches; continue: it does not."
    )


class Spec(_Model):
    """A spec: the refresh runs of one Coalesce environment."""

    model_config = ConfigDict(
        title="runner spec",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: Literal[1] = Field(description="The spec format version; only 1 exists.")
    environmentID: Digits = Field(description="The Coalesce environment ID (digits).")
    name: Name | None = Field(
        None, description="The environment's name in runner; defaults to the file name."
    )
    extends: str | None = Field(
        None, description="A base file (its name starts with _) whose keys this spec inherits."
    )
    coalesce: CoalesceConnection = Field(
        default_factory=CoalesceConnection, description="The Coalesce API to call."
    )
    userCredentials: UserCredentials | None = Field(
        None, description="Snowflake credentials; omit for an OAuth environment."
    )
    defaults: RunSettings | None = Field(None, description="Merged into every run.")
    runs: list[Run] | None = Field(
        None, description="The runs, as one batch named 'default' (or use batches)."
    )
    batches: list[Batch] | None = Field(None, description="Ordered batches of runs (or use runs).")
