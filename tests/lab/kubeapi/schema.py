"""The official OpenAPI schemas (as bundled by ``kubernetes-validate``): admission and patch metadata.

The newest schema set kubernetes-validate ships is used, in its ``-strict`` flavour (every object
has ``additionalProperties: false``), so unknown fields are found.  The same definitions give the
strategic-merge-patch metadata (``x-kubernetes-patch-merge-key`` / ``-patch-strategy``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from typing import Any, Iterator

_LOCK = threading.Lock()


def _schema_root() -> str:
    import kubernetes_validate  # noqa: PLC0415  (optional at import time of the package)

    base = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
    return base


def _version_key(name: str) -> tuple[int, ...]:
    m = re.match(r"^v(\d+)\.(\d+)\.(\d+)", name)
    return tuple(int(x) for x in m.groups()) if m else (0,)


@functools.lru_cache(maxsize=1)
def schema_dir() -> str:
    base = _schema_root()
    dirs = [d for d in os.listdir(base) if d.endswith("-local-strict")]
    if not dirs:
        raise RuntimeError(f"no strict schemas under {base}")
    return os.path.join(base, max(dirs, key=_version_key))


def schema_version() -> str:
    """``1.37.0`` for ``v1.37.0-local-strict``."""
    return re.match(r"^v([\d.]+)", os.path.basename(schema_dir())).group(1)


@functools.lru_cache(maxsize=1)
def definitions() -> dict[str, Any]:
    with open(os.path.join(schema_dir(), "_definitions.json"), encoding="utf-8") as f:
        return json.load(f)


def _file_for(api_version: str, kind: str) -> str:
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return os.path.join(schema_dir(), f"{kind.lower()}-{api}.json")


@functools.lru_cache(maxsize=None)
def kind_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    path = _file_for(api_version, kind)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def _validator(api_version: str, kind: str):
    import jsonschema  # noqa: PLC0415
    from referencing import Registry, Resource  # noqa: PLC0415

    schema = kind_schema(api_version, kind)
    if schema is None:
        return None
    registry = Registry().with_resources([
        (schema["$id"], Resource.from_contents(schema)),
        (definitions()["$id"], Resource.from_contents(definitions())),
    ])
    return jsonschema.Draft202012Validator(schema, registry=registry)


def iter_errors(obj: dict[str, Any]) -> Iterator[Any]:
    """jsonschema errors of ``obj`` against its kind's schema (nothing if the kind is unknown)."""
    with _LOCK:
        validator = _validator(obj.get("apiVersion", ""), obj.get("kind", ""))
    if validator is None:
        return iter(())
    return validator.iter_errors(obj)


# ---------------------------------------------------------------- schema navigation (for SMP)

def _resolve(node: dict[str, Any] | None) -> dict[str, Any] | None:
    seen = 0
    while node is not None and "$ref" in node and seen < 20:
        ref = node["$ref"]
        name = ref.split("#/$defs/", 1)[-1]
        node = definitions()["$defs"].get(name)
        seen += 1
    if node is not None and "allOf" in node and "properties" not in node:
        for sub in node["allOf"]:
            r = _resolve(sub)
            if r and ("properties" in r or "items" in r):
                return r
    return node


def root_node(api_version: str, kind: str) -> dict[str, Any] | None:
    return _resolve(kind_schema(api_version, kind))


def child(node: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """Schema of property ``key`` (or of the map value for ``additionalProperties`` maps)."""
    node = _resolve(node)
    if not node:
        return None
    props = node.get("properties")
    if props and key in props:
        return props[key]
    ap = node.get("additionalProperties")
    if isinstance(ap, dict):
        return ap
    return None


def items(node: dict[str, Any] | None) -> dict[str, Any] | None:
    node = _resolve(node)
    if not node:
        return None
    return node.get("items")


def patch_meta(node: dict[str, Any] | None) -> tuple[str | None, set[str]]:
    """(merge key, strategies) of a property node, e.g. ``("name", {"merge"})``."""
    if not node:
        return None, set()
    strategy = node.get("x-kubernetes-patch-strategy") or ""
    return node.get("x-kubernetes-patch-merge-key"), {s for s in strategy.split(",") if s}
