"""Custom resources: validation, pruning and defaulting against the CRD's ``openAPIV3Schema``.

Covers the structural-schema subset KubeEdge's CRDs use: type, properties, required, items, enum,
pattern, min/max, nullable, default, additionalProperties, x-kubernetes-preserve-unknown-fields,
x-kubernetes-int-or-string.  Unknown fields are pruned (the real server's default) unless the
request's field validation is Strict, which answers 400 like the real server.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from . import errors as E

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_ok(value: Any, node: dict[str, Any]) -> bool:
    if value is None:
        return bool(node.get("nullable"))
    if node.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    t = node.get("type")
    if not t:
        return True
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "boolean":
        return isinstance(value, bool)
    return isinstance(value, _TYPES.get(t, object))


def _walk(value: Any, node: dict[str, Any], path: str, causes: list[dict[str, str]], unknown: list[str],
          prune: bool) -> Any:
    if not node:
        return value
    if not _type_ok(value, node):
        causes.append(E.cause("FieldValueTypeInvalid", path,
                              f'Invalid value: "{_tname(value)}": {path} in body must be of type {node.get("type")}: "{_tname(value)}"'))
        return value
    if value is None:
        return value
    if "enum" in node and value not in node["enum"]:
        allowed = ", ".join(json.dumps(v) for v in node["enum"])
        causes.append(E.cause("FieldValueNotSupported", path, f"Unsupported value: {json.dumps(value)}: supported values: {allowed}"))
    if isinstance(value, str):
        if "pattern" in node and not re.search(node["pattern"], value):
            causes.append(E.cause("FieldValueInvalid", path, f'Invalid value: "{value}": {path} in body should match \'{node["pattern"]}\''))
        if "maxLength" in node and len(value) > node["maxLength"]:
            causes.append(E.cause("FieldValueTooLong", path, f"Too long: may not be more than {node['maxLength']} bytes"))
        if "minLength" in node and len(value) < node["minLength"]:
            causes.append(E.cause("FieldValueInvalid", path, f"Invalid value: {json.dumps(value)}: {path} in body should be at least "
                                                             f"{node['minLength']} chars long"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            causes.append(E.cause("FieldValueInvalid", path, f"Invalid value: {value}: {path} in body should be greater than or equal to {node['minimum']}"))
        if "maximum" in node and value > node["maximum"]:
            causes.append(E.cause("FieldValueInvalid", path, f"Invalid value: {value}: {path} in body should be less than or equal to {node['maximum']}"))
    if isinstance(value, list):
        if "maxItems" in node and len(value) > node["maxItems"]:
            causes.append(E.cause("FieldValueTooMany", path, f"Too many: {len(value)}: must have at most {node['maxItems']} items"))
        item = node.get("items") or {}
        return [_walk(v, item, f"{path}[{i}]", causes, unknown, prune) for i, v in enumerate(value)]
    if isinstance(value, dict):
        props = node.get("properties")
        addl = node.get("additionalProperties")
        preserve = node.get("x-kubernetes-preserve-unknown-fields")
        out = {}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else k
            if props is not None and k in props:
                out[k] = _walk(v, props[k], sub, causes, unknown, prune)
            elif isinstance(addl, dict):
                out[k] = _walk(v, addl, sub, causes, unknown, prune)
            elif addl is True or preserve or (props is None and addl is None and not node.get("type")):
                out[k] = v
            elif props is None and addl is None and preserve is None and node.get("type") == "object":
                unknown.append(sub)  # an object without properties and without preserve: pruned
            else:
                unknown.append(sub)
        for k, sub_node in (props or {}).items():
            if k not in out and "default" in sub_node:
                out[k] = copy.deepcopy(sub_node["default"])
        for req in node.get("required") or []:
            if req not in out:
                causes.append(E.cause("FieldValueRequired", f"{path}.{req}" if path else req, "Required value"))
        return out
    return value


def _tname(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}.get(type(v), "null")


def validate(rt: Any, obj: dict[str, Any], field_validation: str) -> list[str]:
    schema = copy.deepcopy(((rt.crd or {}).get("schema") or {}).get("openAPIV3Schema") or {})
    if not schema:
        return []
    props = schema.setdefault("properties", {})
    props.pop("metadata", None)
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    causes: list[dict[str, str]] = []
    unknown: list[str] = []
    cleaned = _walk(body, schema, "", causes, unknown, prune=True)
    if unknown and field_validation == "Strict":
        raise E.bad_request(", ".join(f'unknown field "{u}"' for u in unknown).join(["strict decoding error: ", ""]))
    if causes:
        raise E.invalid(rt.group, rt.kind, obj["metadata"].get("name", ""), causes)
    for k in list(obj):
        if k not in ("apiVersion", "kind", "metadata"):
            del obj[k]
    obj.update(cleaned)
    return [f'unknown field "{u}"' for u in unknown] if field_validation == "Warn" else []
