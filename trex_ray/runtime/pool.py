"""SlotPool: trial slots shared fairly by several Researchers (one per task of a bench sweep).

``SlotLedger`` is the pure bookkeeping (tested without Ray); ``SlotPool`` is it as a named Ray
actor. A researcher asks for up to ``want`` slots whenever it could start trials and gives one
back when a trial ends. Free slots are granted one at a time, round-robin over the researchers
that are waiting, so that no task starves while another has several trials running; a grant
waits (reserved) until its researcher next asks. Nothing blocks: a researcher that gets no slot
keeps collecting results and asks again a second later.

Example::

    ledger = SlotLedger(slots=2, members=["hoc", "sst2"])
    ledger.acquire("hoc", want=2)        # 1: the other slot is kept for "sst2", also waiting
    ledger.acquire("sst2", want=2)       # 1
    ledger.release("hoc")                # hoc's trial ended: the slot goes to the next in turn
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ray

NAMESPACE = "trex"


@dataclass
class _Member:
    want: int = 1  # slots it could use now; a new member is assumed to want one
    held: int = 0
    reserved: int = 0
    granted: int = 0  # total slots it was ever given (for fairness reports)


@dataclass
class SlotLedger:
    slots: int
    members: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.slots < 1:
            raise ValueError(f"SlotLedger: slots={self.slots}; give at least 1")
        self._m: dict[str, _Member] = {}
        self._order: list[str] = []
        self._turn = 0
        for name in self.members:
            self.join(name)

    # --- the contract ---------------------------------------------------------------------
    def join(self, member: str) -> None:
        if member not in self._m:
            self._m[member] = _Member()
            self._order.append(member)

    def acquire(self, member: str, want: int, holding: int | None = None) -> int:
        """Slots granted now (0..want). ``holding``: how many the member really holds (resyncs
        after a restart, when its old trials are gone)."""
        self.join(member)
        m = self._m[member]
        if holding is not None:
            m.held = max(0, holding)
        m.want = max(0, want)
        m.reserved = min(m.reserved, m.want)  # what it no longer wants goes back
        self._allocate()
        got = min(m.reserved, m.want)
        m.reserved -= got
        m.held += got
        m.granted += got
        m.want -= got
        self._allocate()
        return got

    def release(self, member: str, n: int = 1) -> None:
        """Give ``n`` slots back; the member waits its turn again at its next ``acquire``."""
        m = self._m.get(member)
        if m is not None:
            m.held = max(0, m.held - max(0, n))
            m.want = 0
        self._allocate()

    def leave(self, member: str) -> None:
        if member in self._m:
            del self._m[member]
            self._order.remove(member)
            self._turn = self._turn % len(self._order) if self._order else 0
        self._allocate()

    def status(self) -> dict[str, Any]:
        return {
            "slots": self.slots,
            "free": self.free(),
            "members": {k: vars(v).copy() for k, v in self._m.items()},
        }

    # --- inside ---------------------------------------------------------------------------
    def free(self) -> int:
        return self.slots - sum(m.held + m.reserved for m in self._m.values())

    def _allocate(self) -> None:
        """Reserve free slots one at a time for waiting members, in turn."""
        while self.free() > 0 and self._order:
            n = len(self._order)
            for k in range(n):
                name = self._order[(self._turn + k) % n]
                m = self._m[name]
                if m.want > m.reserved:
                    m.reserved += 1
                    self._turn = (self._turn + k + 1) % n
                    break
            else:
                return


@ray.remote(num_cpus=0, max_restarts=-1)
class SlotPool:
    """``SlotLedger`` as a named actor; researchers call ``acquire`` / ``release`` / ``leave``."""

    def __init__(self, slots: int, members: list[str] | None = None) -> None:
        self.ledger = SlotLedger(slots, list(members or []))

    def acquire(self, member: str, want: int, holding: int | None = None) -> int:
        return self.ledger.acquire(member, want, holding)

    def release(self, member: str, n: int = 1) -> None:
        self.ledger.release(member, n)

    def leave(self, member: str) -> None:
        self.ledger.leave(member)

    def status(self) -> dict[str, Any]:
        return self.ledger.status()


def pool_name(bench_id: str) -> str:
    return f"slotpool-{bench_id}"
