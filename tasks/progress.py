"""Which run log lines a person at the command line sees.

Every line a run logs goes to the Prefect UI (and, from the command line, to the log file in
``AOS_HOME/logs``). The command line prints only warnings and the lines marked with
:data:`SHOW`: one line per integration of a ``sync_all`` run, backfill chunks, and the
"still working" ticks of a long stream. Prefect's own chatter (``Finished in state
Completed()``, one per task run) stays in the UI and the file (``cli/console.py``).
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["SHOW", "ATTRIBUTE"]

ATTRIBUTE: Final = "aos_show"
#: ``logger.info(..., extra=SHOW)``: print this line at the command line too.
SHOW: Final[dict[str, Any]] = {ATTRIBUTE: True}
