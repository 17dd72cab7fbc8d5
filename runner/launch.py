"""The console script. ``runner --help`` is answered here, before click or any of the
package is imported; everything else goes to :mod:`runner.cli`."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] in (["--help"], ["-h"]):
        from runner.commands import top_level_help

        sys.stdout.write(top_level_help())
        sys.exit(0)
    from runner.cli import main as cli_main

    cli_main()
