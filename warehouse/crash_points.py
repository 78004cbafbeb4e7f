"""Named places in the load path where the crash test kills the process, as ``kill -9`` would.

``CREDIT_CRASH_AT=<point>`` (or ``<point>#<n>``: the n-th time the point is reached, for
an inbox run of several files) makes ``crash_point(<point>)`` send SIGKILL to its own
process: no ``finally``, no ``atexit``, no buffered write, like a real ``kill -9``. The
variable is read once at import; unset (production) a call costs one comparison.
tests/test_crash_safety.py aims at every point of ``POINTS``.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "load.before_commit",  # ledger, quarantine and publish intent written, not committed
    "load.after_commit",  # committed; the new partitions wait in <data root>/work/<batch>/
    "publish.raw_aside",  # --replace: the batch's old raw partition moved aside, the new one not in place
    "publish.raw_in",  # the new raw partition in place, the clean one not yet
    "publish.clean_aside",  # --replace: the old clean partition aside, the new one not in place
    "publish.clean_in",  # every partition in place, the intent not cleared
    "publish.intent_cleared",  # intent cleared, the work folder not removed
    "pipeline.loaded",  # load done, its staging folder not removed
    "archive.linked",  # the archive's hidden hard link made, not renamed
    "settle.archived",  # an inbox file archived, not yet taken out of the inbox
)

_TARGET, _, _NTH = (os.environ.get("CREDIT_CRASH_AT") or "").partition("#")
_hits = 0


def crash_point(name: str) -> None:
    """Die here (SIGKILL) when ``CREDIT_CRASH_AT`` names this point; otherwise nothing."""
    global _hits
    if name != _TARGET:
        return
    _hits += 1
    if _hits >= int(_NTH or 1):
        os.kill(os.getpid(), signal.SIGKILL)
