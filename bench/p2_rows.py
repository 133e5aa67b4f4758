"""P2's step rows: which N passed, shared by the report and the README headline."""

from __future__ import annotations

from typing import Any

__all__ = ["NA", "IMPLS", "LIMITS", "row_ok", "limit", "limit_text", "ratio_of_limits"]

NA = "n/a"
IMPLS = ("novad", "upstream")
LIMITS = (("keeps_real_time", "real time"), ("keeps_real_time_strict", "strict"))


def row_ok(r: dict[str, Any]) -> bool:
    return "error" not in r


def limit(rows: list[dict[str, Any]], key: str) -> tuple[int | None, dict[str, Any] | None]:
    """(largest N with every N up to it passing ``key``, the first row failing it)."""
    best = None
    for r in sorted(rows, key=lambda r: r["spec"]["n"]):
        if not row_ok(r) or not r[key]:
            return best, r
        best = r["n"]
    return best, None


def limit_text(best: int | None, miss: dict[str, Any] | None) -> str:
    """A limit as shown: the N, ">= N" when no step missed, "none" when the first did."""
    if best is None:
        return "none"
    return f">= {best}" if miss is None else str(best)


def ratio_of_limits(a: tuple[int | None, Any], b: tuple[int | None, Any]) -> str:
    (na, ma), (nb, mb) = a, b
    if not na or not nb:
        return NA
    x = f"{na / nb:.1f}"
    if ma is None and mb is not None:
        return ">= " + x  # novad never missed: its limit is above the largest step
    if mb is None and ma is not None:
        return "<= " + x
    return x if ma is not None else f"{x} (neither missed)"
