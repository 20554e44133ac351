"""DynamoDB's size and unit rules, as the benchmarks apply them to items in attribute-value form.

- an item's size is the UTF-8 length of its attribute names plus its values (numbers: about one
  byte per two digits, plus one; maps and lists: 3 bytes plus their elements, plus one byte per
  element);
- a write costs 1 unit per started KB of the larger of the before and after item, at least 1;
- a read costs 1 unit per started 4 KB (strongly consistent), half that eventually consistent.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any


def _number_size(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    return (len(digits) + 1) // 2 + 1


def value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    return sum(len(b) for b in inner)


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def write_units(before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    return max(1, math.ceil(max(item_size(before), item_size(after)) / 1024))


def read_units(total_bytes: int, *, consistent: bool) -> float:
    units = max(1, math.ceil(total_bytes / 4096))
    return float(units) if consistent else units / 2
