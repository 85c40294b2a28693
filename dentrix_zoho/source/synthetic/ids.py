"""Sequential row ids, one counter per kind, so every run numbers rows the same way."""

from __future__ import annotations


class Ids:
    def __init__(self, **starts: int) -> None:
        self._next: dict[str, int] = dict(starts)

    def next(self, kind: str) -> int:
        value = self._next.get(kind, 1)
        self._next[kind] = value + 1
        return value
