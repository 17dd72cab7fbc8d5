"""The plan as its versioned JSON document (``--format json``), the same as a plan file."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.plan.model import Plan


def render_plan_json(plan: Plan) -> str:
    from runner.plan.document import plan_to_document  # the plan package is slow to import

    return json.dumps(plan_to_document(plan), indent=2) + "\n"
