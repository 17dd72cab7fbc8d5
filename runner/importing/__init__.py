"""``runner import``: a spec for an environment that already exists in Coalesce.

Reads the environment, its jobs and its recent refresh runs, and makes a spec with one
run per job and one per distinct ad-hoc request, credentials as templates (never a
value), and comments saying where each run came from::

    async with ClientPool() as pool:
        client = pool.client(url, token)
        imported = await aimport_environment(client, "12", url=url)
    text = spec_yaml(imported, command="runner import 12")

A spec written this way validates, and a plan of it shows each run's request as
Coalesce's history shows it (see ``observed.py`` for what "the same request" means).
"""

from __future__ import annotations

from runner.importing.build import ImportedRun, ImportedSpec, LeftOut, RunSource, build_spec
from runner.importing.credentials import CredentialsBlock
from runner.importing.history import History, read_history
from runner.importing.observed import ObservedRequest, Unusable, observe
from runner.importing.service import DEFAULT_SINCE, aimport_environment, parse_since
from runner.importing.text import template_safe
from runner.importing.write import spec_data, spec_document, spec_yaml, write_spec_file

__all__ = [
    "DEFAULT_SINCE",
    "CredentialsBlock",
    "History",
    "ImportedRun",
    "ImportedSpec",
    "LeftOut",
    "ObservedRequest",
    "RunSource",
    "Unusable",
    "aimport_environment",
    "build_spec",
    "observe",
    "parse_since",
    "read_history",
    "spec_data",
    "spec_document",
    "spec_yaml",
    "template_safe",
    "write_spec_file",
]
