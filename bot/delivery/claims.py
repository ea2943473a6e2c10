"""Who holds a ledger row: worker ids, and when a claim by a vanished worker may be taken over."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

PROCESS_NONCE = uuid.uuid4().hex[:8]
# Seconds after which a claim by another host that made no progress may be taken over
# (on this host a dead process is noticed at once).
CLAIM_LEASE = 600.0


def default_worker_id() -> str:
    """host:pid:nonce — the nonce tells this process from an earlier one with the same pid
    (a restarted container is PID 1 again on the same host)."""
    return f"{socket.gethostname()}:{os.getpid()}:{PROCESS_NONCE}"


def run_id(worker_id: str) -> str:
    """A claim name per fan-out: two sends in one process exclude each other too."""
    return f"{worker_id}:{uuid.uuid4().hex[:8]}"


def claim_is_stale(claimed_by: str, updated_at: dt.datetime, *, lease: float = CLAIM_LEASE) -> bool:
    """May another run take over a row claimed by ``claimed_by`` (``host:pid:nonce:…``)?

    Yes if that process is gone: on this host, its pid is not running, or it is our pid
    with another nonce (an earlier life of this pid). Otherwise only once the claim has not
    moved for ``lease`` seconds (another host, or a pid reused by an unrelated process).
    """
    host, pid_text, nonce, *_ = [*claimed_by.split(":"), "", "", ""]
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid():
            if nonce != PROCESS_NONCE:
                return True
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
    return (dt.datetime.now(dt.UTC) - updated_at).total_seconds() > lease
