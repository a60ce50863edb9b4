"""JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch, server-side apply.

Strategic merge patch is driven by the official schema's ``x-kubernetes-patch-merge-key`` and
``x-kubernetes-patch-strategy`` (so containers merge by ``name``, ports by ``containerPort``,
finalizers as a set, ...).  Supported directives: ``$patch: delete|replace|merge`` (in maps and
list items), ``$retainKeys``, ``$deleteFromPrimitiveList/<field>``; ``$setElementOrder/<field>`` is
accepted and honoured for merge-keyed lists.  Not supported: the rarely used
``$patch: delete`` on a whole list.
"""

from __future__ import annotations

import copy
from typing import Any

from . import schema as sch
from .errors import ApiError, bad_request


# ------------------------------------------------------------------ RFC 7386
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ------------------------------------------------------------------ RFC 6902
def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict):
            if p not in cur:
                raise _jp_error(f"doc is missing path: /{'/'.join(parts)}")
            cur = cur[p]
        elif isinstance(cur, list):
            try:
                cur = cur[int(p)]
            except (ValueError, IndexError):
                raise _jp_error(f"unable to access invalid index: {p}") from None
        else:
            raise _jp_error(f"doc is missing path: /{'/'.join(parts)}")
    return cur


def _jp_error(msg: str) -> ApiError:
    return ApiError(422, "Invalid", msg, {})


def _add(doc: Any, parts: list[str], value: Any, replace: bool = False) -> Any:
    if not parts:
        return copy.deepcopy(value)
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise _jp_error(f"replace operation does not apply: doc is missing key: /{'/'.join(parts)}")
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if last == "-" and not replace:
            parent.append(copy.deepcopy(value))
        else:
            try:
                idx = int(last)
            except ValueError:
                raise _jp_error(f"invalid index {last!r}") from None
            if replace:
                if not 0 <= idx < len(parent):
                    raise _jp_error(f"unable to replace index {idx}")
                parent[idx] = copy.deepcopy(value)
            else:
                if not 0 <= idx <= len(parent):
                    raise _jp_error(f"unable to insert at index {idx}")
                parent.insert(idx, copy.deepcopy(value))
    else:
        raise _jp_error(f"doc is missing path: /{'/'.join(parts)}")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise _jp_error("cannot remove the whole document")
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _jp_error(f"remove operation does not apply: doc is missing path: /{'/'.join(parts)}")
        return parent.pop(last)
    if isinstance(parent, list):
        try:
            return parent.pop(int(last))
        except (ValueError, IndexError):
            raise _jp_error(f"unable to remove index {last}") from None
    raise _jp_error(f"doc is missing path: /{'/'.join(parts)}")


def json_patch(doc: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise bad_request("json patch must be an array of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid json patch operation: {op!r}")
        kind, parts = op["op"], _pointer(op["path"])
        if kind == "add":
            doc = _add(doc, parts, op.get("value"))
        elif kind == "replace":
            doc = _add(doc, parts, op.get("value"), replace=True)
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "move":
            value = _remove(doc, _pointer(op["from"]))
            doc = _add(doc, parts, value)
        elif kind == "copy":
            doc = _add(doc, parts, _walk(doc, _pointer(op["from"])))
        elif kind == "test":
            if _walk(doc, parts) != op.get("value"):
                raise _jp_error(f"testing value /{'/'.join(parts)} failed: test failed")
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    return doc


# ------------------------------------------------------------------ strategic merge patch
def strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    node = sch.root_node(api_version, kind)
    return _smp_map(target if isinstance(target, dict) else {}, patch, node)


def _smp_map(target: dict[str, Any], patch: dict[str, Any], node: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None  # type: ignore[return-value]
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [x for x in result[field] if x not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
            continue
        prop = sch.child(node, key)
        if isinstance(value, dict):
            merged = _smp_map(result.get(key) if isinstance(result.get(key), dict) else {}, value, prop)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(result.get(key), value, prop)
        else:
            result[key] = copy.deepcopy(value)
    for field, order in orders.items():
        prop = sch.child(node, field)
        merge_key, _strategies = sch.patch_meta(prop)
        if isinstance(result.get(field), list) and merge_key:
            _apply_order(result, field, order, merge_key)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _apply_order(result: dict[str, Any], field: str, order: list[Any], merge_key: str) -> None:
    keys = [o.get(merge_key) if isinstance(o, dict) else o for o in order]
    items = result[field]
    ranked = sorted(items, key=lambda it: keys.index(it.get(merge_key)) if isinstance(it, dict) and it.get(merge_key) in keys else len(keys))
    result[field] = ranked


def _smp_list(current: Any, patch: list[Any], prop: Any) -> list[Any]:
    merge_key, strategies = sch.patch_meta(prop)
    current = current if isinstance(current, list) else []
    if "merge" not in strategies:
        return copy.deepcopy([x for x in patch if not (isinstance(x, dict) and x.get("$patch"))])
    if not merge_key:  # a set of primitives (e.g. finalizers)
        result = copy.deepcopy(current)
        for x in patch:
            if x not in result:
                result.append(copy.deepcopy(x))
        return result
    item_node = sch.items(prop)
    result = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict):
            raise bad_request(f"strategic merge patch: list item without merge key {merge_key!r}")
        if item.get("$patch") == "replace" and len(item) == 1:
            return [copy.deepcopy(x) for x in patch if x is not item]
        key = item.get(merge_key)
        idx = next((i for i, x in enumerate(result) if isinstance(x, dict) and x.get(merge_key) == key), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                result.pop(idx)
            continue
        if idx is None:
            result.append(_smp_map({}, item, item_node))
        else:
            result[idx] = _smp_map(result[idx], item, item_node)
    return result


# ------------------------------------------------------------------ server-side apply (approximation)
def prune_removed(merged: Any, last_applied: Any, applied: Any, node: Any = None) -> Any:
    """Remove from ``merged`` the fields a manager applied last time but not this time.

    This approximates server-side apply's field ownership for a single manager: map keys are
    removed, and items of merge-keyed lists (containers by name, ports, env...) are removed by key;
    other lists are atomic (replaced by the strategic merge already).  Other managers' ownership is
    not tracked, so a field both set by someone else and dropped from this manager's config goes.
    """
    if not isinstance(merged, dict) or not isinstance(last_applied, dict) or not isinstance(applied, dict):
        return merged
    for key, old in last_applied.items():
        prop = sch.child(node, key) if node is not None else None
        if key not in applied:
            merged.pop(key, None)
        elif isinstance(old, dict) and isinstance(applied[key], dict) and isinstance(merged.get(key), dict):
            prune_removed(merged[key], old, applied[key], prop)
        elif isinstance(old, list) and isinstance(applied[key], list) and isinstance(merged.get(key), list):
            merge_key, strategies = sch.patch_meta(prop)
            if "merge" not in strategies or not merge_key:
                continue
            item_node = sch.items(prop)
            new_by_key = {i.get(merge_key): i for i in applied[key] if isinstance(i, dict)}
            old_by_key = {i.get(merge_key): i for i in old if isinstance(i, dict)}
            kept = []
            for item in merged[key]:
                k = item.get(merge_key) if isinstance(item, dict) else None
                if k in old_by_key and k not in new_by_key:
                    continue
                if k in old_by_key:
                    prune_removed(item, old_by_key[k], new_by_key[k], item_node)
                kept.append(item)
            merged[key] = kept
    return merged
