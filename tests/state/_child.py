"""A second runner process for the state tests: ``python _child.py COMMAND STATE ...``.

lock STATE ENV HOLDER   print "ready", wait for a line on stdin, try to take ENV's lock,
                        print "won" or "lost <message>", then wait for stdin to close.
intent STATE            record an apply and a run intent, print "intent <run id>", then
                        block until killed.
"""

from __future__ import annotations

import os
import socket
import sys

from runner.state import EnvironmentLocked, open_state


def _say(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def lock(state: str, environment: str, holder: str) -> None:
    store = open_state(state)
    _say("ready")
    sys.stdin.readline()
    try:
        store.acquire_lock(
            environment, holder=holder, host=socket.gethostname(), pid=os.getpid(), ttl_seconds=60
        )
    except EnvironmentLocked as held:
        _say(f"lost {held}")
    else:
        _say("won")
    sys.stdin.read()


def intent(state: str) -> None:
    store = open_state(state)
    apply_id = store.begin_apply(
        who="ci", host=socket.gethostname(), git_commit=None, environments=["prod"], argv=[]
    )
    run_id = store.record_intent(
        apply_id, "prod", "marts", "orders", {"runDetails": {"environmentID": "12"}}, "h"
    )
    _say(f"intent {run_id}")
    sys.stdin.read()  # the parent kills us here, with the store still open


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "lock":
        lock(*arguments)
    else:
        intent(*arguments)
