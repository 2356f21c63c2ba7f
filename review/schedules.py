"""How many times a month an EventBridge schedule expression fires (average month)."""

from __future__ import annotations

import re

DAYS_PER_MONTH = 365.25 / 12
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_FIELD_SIZES = {"minutes": 60, "hours": 24, "dom": 31, "months": 12, "dow": 7}


class ScheduleError(ValueError):
    pass


def runs_per_month(expression: str) -> float:
    expression = expression.strip()
    rate = _RATE.match(expression)
    if rate:
        n, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        per_day = {"minute": 24 * 60, "hour": 24, "day": 1}[unit] / n
        return per_day * DAYS_PER_MONTH
    cron = _CRON.match(expression)
    if not cron or len(cron.group(1).split()) != 6:
        raise ScheduleError(f"schedule {expression!r}: expected 'rate(N unit)' or 'cron(m h dom mon dow yr)'")
    minutes, hours, dom, months, dow, _year = cron.group(1).split()
    per_day = _count(minutes, "minutes") * _count(hours, "hours")
    if dom in ("*", "?") and dow in ("*", "?"):
        days = DAYS_PER_MONTH
    elif dom not in ("*", "?"):
        days = float(_count(dom, "dom"))
    else:
        days = _count(dow, "dow") * DAYS_PER_MONTH / 7
    return per_day * days * _count(months, "months") / 12


def _count(field: str, kind: str) -> int:
    """Values a cron field selects: `*`, `5`, `1,15`, `1-5`, `*/15`, `0/30`, `L`, `2#1`, `MON-FRI`."""
    size = _FIELD_SIZES[kind]
    total = 0
    for part in field.split(","):
        base, _, step = part.partition("/")
        every = int(step) if step.isdigit() else 1
        if base in ("*", "?"):
            span = size
        elif "-" in base:
            lo, hi = base.split("-", 1)
            span = _index(hi, kind) - _index(lo, kind) + 1 if _index(lo, kind) >= 0 else 1
        else:
            span = size - (_index(base, kind) if step and base.isdigit() else 0) if step else 1
        total += max(1, -(-span // every))
    return min(total, size)


_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def _index(value: str, kind: str) -> int:
    if value.isdigit():
        return int(value)
    names = _DAYS if kind == "dow" else _MONTHS if kind == "months" else []
    return names.index(value.upper()) if value.upper() in names else -1
