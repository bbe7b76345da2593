"""How numbers look on the pages (Jinja filters): accuracies in %, OPs and sizes with units."""

from __future__ import annotations

import datetime
from urllib.parse import quote


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def si(value: float | None) -> str:
    """1234567 -> 1.23 M."""
    if value is None:
        return "–"
    for factor, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {unit}"
    return f"{value:.3g}"


def size(bits: float | None) -> str:
    """A model size in bits as KiB / MiB."""
    if bits is None:
        return "–"
    kib = bits / 8 / 1024
    return f"{kib / 1024:.2f} MiB" if kib >= 1024 else f"{kib:.1f} KiB"


def duration(seconds: float | None) -> str:
    """3725 -> 1 h 02 min; 42 -> 42 s."""
    if seconds is None:
        return "–"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def when(iso: str | None) -> str:
    """An ISO time as local `YYYY-MM-DD HH:MM`."""
    if not iso:
        return "–"
    try:
        stamp = datetime.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M")


def urlpath(path: str) -> str:
    """A run's path for a URL: each part quoted, the slashes kept."""
    return quote(path, safe="/")


FILTERS = {
    "percent": percent,
    "si": si,
    "size": size,
    "duration": duration,
    "when": when,
    "urlpath": urlpath,
}
