"""Label and field selectors (the string syntax of ``labelSelector`` / ``fieldSelector``)."""

from __future__ import annotations

import re
from typing import Any, Callable

from .errors import bad_request

Predicate = Callable[[dict[str, str]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:\s(in|notin)\s*\((.*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split_top(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in (x.strip() for x in parts) if p]


def parse_label_selector(selector: str | None) -> Predicate:
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k``; raise 400 on syntax errors."""
    if not selector:
        return lambda labels: True
    preds: list[Predicate] = []
    for req in _split_top(selector):
        m = _EQ_RE.match(req)
        if m:
            key, op, val = m.groups()
            if op == "!=":
                preds.append(lambda l, k=key, v=val: l.get(k) != v)
            else:
                preds.append(lambda l, k=key, v=val: k in l and l[k] == v)
            continue
        m = _SET_RE.match(req)
        if m:
            neg, key, op, values = m.groups()
            if op:
                if neg:
                    raise bad_request(f"unable to parse requirement: {req!r}")
                vals = {v.strip() for v in values.split(",") if v.strip()}
                if op == "in":
                    preds.append(lambda l, k=key, vs=vals: l.get(k) in vs)
                else:
                    preds.append(lambda l, k=key, vs=vals: l.get(k) not in vs)
            elif neg:
                preds.append(lambda l, k=key: k not in l)
            else:
                preds.append(lambda l, k=key: k in l)
            continue
        raise bad_request(f"unable to parse requirement: found {req!r}, expected: in, notin, =, ==, !=, gt, lt")
    return lambda labels: all(p(labels) for p in preds)


def match_label_selector_object(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Evaluate a structured ``LabelSelector`` (matchLabels / matchExpressions)."""
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, vals = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _field_value(obj: dict[str, Any], path: str) -> str | None:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return None if cur is None else str(cur)


def parse_field_selector(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """``metadata.name=x,metadata.namespace!=y`` (any dotted path; =, ==, !=)."""
    if not selector:
        return lambda obj: True
    preds = []
    for req in _split_top(selector):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", req)
        if not m:
            raise bad_request(f'invalid selector: {selector!r}; can\'t understand {req!r}')
        path, op, val = m.groups()
        if op == "!=":
            preds.append(lambda o, p=path, v=val: (_field_value(o, p) or "") != v)
        else:
            preds.append(lambda o, p=path, v=val: (_field_value(o, p) or "") == v)
    return lambda obj: all(p(obj) for p in preds)
