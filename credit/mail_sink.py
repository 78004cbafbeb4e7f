"""A local mail sink: an SMTP server on 127.0.0.1 that keeps every message as an ``.eml`` file.

In: a folder and an address (default: the ``smtp_default`` connection's, CREDIT_SMTP_HOST/PORT).
Out: ``<folder>/<n>-<recipient>.eml`` per message received, while the context manager is open.
``credit demo`` runs one under ``<data root>/mail/`` so the departments' digests of the monthly
close can be read without a mail server; the tests use it to count them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counter = itertools.count(len(list(folder.glob("*.eml"))) + 1)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        to = re.sub(r"[^A-Za-z0-9@._-]", "_", ",".join(envelope.rcpt_tos))[:100]
        (self.folder / f"{next(self.counter):05d}-{to}.eml").write_bytes(envelope.content)
        return "250 kept"


@contextmanager
def mail_sink(folder: Path, host: str = "127.0.0.1", port: int = 8025) -> Iterator[Path]:
    """Receive mail on ``host:port`` into ``folder`` until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(_Keep(folder), hostname=host, port=port)
    try:
        controller.start()
    except OSError as exc:
        raise RuntimeError(f"cannot start the local mail sink on {host}:{port}: {exc} "
                           "(set CREDIT_SMTP_PORT to a free port)") from None
    try:
        yield folder
    finally:
        controller.stop()


@contextmanager
def local_relay(data_root: Path) -> Iterator[Path | None]:
    """With no CREDIT_SMTP_HOST set (the embedded defaults), a sink on a free local port under
    ``<data root>/mail/`` that the ``smtp_default`` connection points at (CREDIT_SMTP_PORT is set for
    the block); with one set, the real relay is used and nothing is started."""
    import os
    import socket

    if os.environ.get("CREDIT_SMTP_HOST"):
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    previous = os.environ.get("CREDIT_SMTP_PORT")
    os.environ["CREDIT_SMTP_PORT"] = str(port)
    try:
        with mail_sink(data_root / "mail", port=port) as folder:
            yield folder
    finally:
        if previous is None:
            os.environ.pop("CREDIT_SMTP_PORT", None)
        else:
            os.environ["CREDIT_SMTP_PORT"] = previous


def read_mail(folder: Path) -> list[EmailMessage]:
    """The messages kept in ``folder``, in the order received."""
    return [message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted(folder.glob("*.eml"))]
