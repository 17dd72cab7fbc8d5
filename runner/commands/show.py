"""``runner show PLAN.json``: print a saved plan (``plan --out``) in any format."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner.commands._options import plan_format_option
from runner.output import echo


@click.command("show")
@click.argument("plan_file", metavar="PLAN.json", type=click.Path(path_type=Path))
@plan_format_option
@click.option("--show-nodes", is_flag=True, help="List the nodes each run selects.")
def command(plan_file: Path, fmt: str, show_nodes: bool) -> int:
    """Print the plan saved by `runner plan --out PLAN.json`, as it was made: nothing is
    read from the specs, the state or Coalesce, and no secret is needed."""
    from runner.plan import read_plan_file
    from runner.render import (
        plan_marker,
        render_plan_json,
        render_plan_markdown,
        render_plan_text,
        use_color,
    )

    plan = read_plan_file(plan_file)
    if fmt == "json":
        text = render_plan_json(plan)
    elif fmt == "markdown":
        scope = {"env": [env.name for env in plan.environments]}
        text = render_plan_markdown(plan, marker=plan_marker(scope))
    else:
        text = render_plan_text(plan, color=use_color(sys.stdout), show_nodes=show_nodes)
    echo(text, end="")
    return 0
