"""The OpenAPI documents kube-apiserver publishes, so that kubectl's schema-driven commands work.

kubectl needs them for ``apply`` (client-side, validation on: it downloads ``/openapi/v2`` as
protobuf before anything else, reads the strategic-merge-patch metadata from it, and asks the v2 or
v3 document whether PATCH takes ``fieldValidation``), ``apply --server-side``, ``diff`` and
``explain`` (``/openapi/v3``). The documents are built from the schemas the stand-in admits
against: kubernetes-validate's definitions (its non-strict set of the same version) for the built-in
kinds, and each admitted CRD's ``openAPIV3Schema``, named and wrapped as the apiserver does.

- ``GET /openapi/v2``: the whole API; protobuf (gnostic ``openapi_v2.Document``) when the client asks
  for ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` (client-go only ever does, and
  cannot read JSON there), JSON otherwise.
- ``GET /openapi/v3``: the discovery document, one ``serverRelativeURL`` per group-version carrying
  ``?hash=`` (upper-case SHA-512 of that document); ``GET /openapi/v3/apis/<group>/<version>`` (or
  ``api/v1``) is that group-version's document. A stale hash is redirected (301) to the current one,
  a current one is marked immutable, as kube-openapi's handler does, so clients may cache by hash.

Paths list each resource's collection, item and subresource operations with the query parameters
of the real server (``fieldValidation`` among them) and ``x-kubernetes-group-version-kind``.
The documents are rebuilt when the set of CRDs changes, and cached otherwise.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import struct
import threading
import weakref
from typing import Any

from . import errors as E
from . import schema as sch
from .registry import ResourceType

# what client-go asks for, and what kube-openapi answers with (Go's mime parser rejects the "@")
PB_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
PB_V2_SERVED = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
COMMON = [META + "Patch", META + "DeleteOptions", META + "Status"]
SCALE = "io.k8s.api.autoscaling.v1.Scale"
V2_REF, V3_REF = "#/definitions/", "#/components/schemas/"
_REF = "#/$ref/"  # neutral prefix inside this module; replaced per document version

QUERY_PARAMS = {
    "dryRun": ("string", "When present, indicates that modifications should not be persisted. Valid values are: "
                         "- All: all dry run stages will be processed"),
    "fieldManager": ("string", "fieldManager is a name associated with the actor or entity that is making these "
                               "changes."),
    "fieldValidation": ("string", "fieldValidation instructs the server on how to handle objects in the request "
                                  "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: "
                                  "- Ignore - Warn - Strict"),
    "force": ("boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting "
                         "fields owned by other people."),
    "labelSelector": ("string", "A selector to restrict the list of returned objects by their labels."),
    "fieldSelector": ("string", "A selector to restrict the list of returned objects by their fields."),
    "limit": ("integer", "limit is a maximum number of responses to return for a list call."),
    "continue": ("string", "The continue option should be set when retrieving more results from the server."),
}
PATCH_TYPES = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json"]
# custom resources take no strategic merge patch: client-side apply reads PATCH's "consumes" to choose
CR_PATCH_TYPES = PATCH_TYPES[:3]


# ---------------------------------------------------------------------------------- definitions

@functools.lru_cache(maxsize=1)
def builtin_definitions() -> dict[str, dict[str, Any]]:
    """kubernetes-validate's definitions turned back into OpenAPI: one type per node (no ``null``),
    ``$ref`` to the neutral prefix, int-or-string and quantity as the apiserver describes them, and
    no ``enum`` on apiVersion/kind (openapi2jsonschema adds those; the apiserver does not)."""
    path = os.path.join(sch.schema_dir().removesuffix("-strict"), "_definitions.json")
    with open(path, encoding="utf-8") as f:
        defs = json.load(f)["$defs"]
    out = {name: _from_json_schema(node) for name, node in defs.items()}
    for node in out.values():
        if "x-kubernetes-group-version-kind" in node:
            for field in ("apiVersion", "kind"):
                (node.get("properties") or {}).get(field, {}).pop("enum", None)
    return out


def _from_json_schema(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            out[key] = _REF + value.split("/")[-1]
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out[key] = types[0] if len(types) == 1 else types
        elif key == "oneOf":  # only IntOrString and Quantity use it
            types = {t for alt in value for t in ([alt.get("type")] if isinstance(alt.get("type"), str)
                                                  else alt.get("type") or []) if t != "null"}
            out["type"] = "string"
            if types == {"string", "integer"}:
                out["format"] = "int-or-string"
        elif key == "properties":
            out[key] = {name: _from_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _from_json_schema(value)
        else:
            out[key] = value
    return out


def _def_name(group: str, version: str, kind: str) -> str:
    """What the apiserver calls a CRD's definition: reversed group, version, kind."""
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


def crd_definitions(rt: ResourceType) -> dict[str, dict[str, Any]]:
    """A served CRD version's kind and list kind, as the apiextensions apiserver publishes them."""
    gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
    root = copy.deepcopy(((rt.crd or {}).get("schema") or {}).get("openAPIV3Schema") or {"type": "object"})
    root.setdefault("type", "object")
    props = root.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": "APIVersion defines the versioned schema of this "
                                                            "representation of an object."}
    props["kind"] = {"type": "string", "description": "Kind is a string value representing the REST resource "
                                                      "this object represents."}
    props["metadata"] = {"$ref": _REF + META + "ObjectMeta", "description": "Standard object's metadata."}
    root["x-kubernetes-group-version-kind"] = [gvk]
    name = _def_name(rt.group, rt.version, rt.kind)
    listing = {
        "description": f"{rt.kind}List is a list of {rt.kind}", "type": "object", "required": ["items"],
        "properties": {"apiVersion": props["apiVersion"], "kind": props["kind"],
                       "items": {"type": "array", "items": {"$ref": _REF + name},
                                 "description": f"List of {rt.plural}."},
                       "metadata": {"$ref": _REF + META + "ListMeta", "description": "Standard list metadata."}},
        "x-kubernetes-group-version-kind": [dict(gvk, kind=rt.list_kind)],
    }
    return {name: root, _def_name(rt.group, rt.version, rt.list_kind): listing}


def _gvk_index(defs: dict[str, dict[str, Any]]) -> dict[tuple[str, str, str], str]:
    index = {}
    for name, node in defs.items():
        for gvk in node.get("x-kubernetes-group-version-kind") or []:
            index.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return index


def _closure(defs: dict[str, dict[str, Any]], roots: list[str]) -> dict[str, dict[str, Any]]:
    """The definitions reachable from ``roots``: a document must define every type it references."""
    seen: dict[str, dict[str, Any]] = {}
    todo = [r for r in roots if r in defs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = defs[name]
        todo += [r for r in _refs(defs[name]) if r not in seen and r in defs]
    return dict(sorted(seen.items()))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"][len(_REF):]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


# ---------------------------------------------------------------------------------- paths

def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", ".").split(".") if part)


def _paths(rt: ResourceType, kind_def: str, list_def: str) -> dict[str, dict[str, Any]]:
    """The collection, item and subresource paths of one resource type (neutral form)."""
    base = f"/api/{rt.version}" if not rt.group else f"/apis/{rt.group}/{rt.version}"
    collection = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
    group = "core" if not rt.group else _camel(rt.group.removesuffix(".k8s.io"))
    operation = group + _camel(rt.version) + ("Namespaced" if rt.namespaced else "") + rt.kind
    tag = f"{group[:1].lower()}{group[1:]}_{rt.version}"

    def op(verb: str, action: str, schema_ref: str, body: str | None, query: list[str], suffix: str = "",
           op_gvk: dict[str, str] | None = None, code: str = "200") -> dict[str, Any]:
        return {"operationId": f"{verb}{operation}{suffix}", "tags": [tag],
                "description": f"{verb} {'the ' + suffix.lower() + ' of ' if suffix else ''}{rt.kind}",
                "query": query, "body": _REF + body if body else None, "response": (code, _REF + schema_ref),
                "patch_types": CR_PATCH_TYPES if rt.crd is not None else PATCH_TYPES,
                "x-kubernetes-action": action, "x-kubernetes-group-version-kind": op_gvk or gvk}

    writes = ["dryRun", "fieldManager", "fieldValidation"]
    path_params = ["namespace"] if rt.namespaced else []
    out = {
        collection: {"params": path_params, "ops": {
            "get": op("list", "list", list_def, None, ["labelSelector", "fieldSelector", "limit", "continue"]),
            "post": op("create", "post", kind_def, kind_def, writes, code="201")}},
        f"{collection}/{{name}}": {"params": ["name"] + path_params, "ops": {
            "get": op("read", "get", kind_def, None, []),
            "put": op("replace", "put", kind_def, kind_def, writes),
            "patch": op("patch", "patch", kind_def, META + "Patch", writes + ["force"]),
            "delete": op("delete", "delete", META + "Status", META + "DeleteOptions", ["dryRun"])}},
    }
    for sub in rt.subresources:
        target, sub_gvk = (kind_def, gvk) if sub == "status" else (SCALE, {"group": "autoscaling", "kind": "Scale",
                                                                           "version": "v1"})
        suffix = _camel(sub)
        out[f"{collection}/{{name}}/{sub}"] = {"params": ["name"] + path_params, "ops": {
            "get": op("read", "get", target, None, [], suffix, sub_gvk),
            "put": op("replace", "put", target, target, writes, suffix, sub_gvk),
            "patch": op("patch", "patch", target, META + "Patch", writes + ["force"], suffix, sub_gvk)}}
    return out


# ---------------------------------------------------------------------------------- documents

class Documents:
    """The v2 document and the v3 group-version documents for one set of resource types."""

    def __init__(self, types: list[ResourceType], kube_version: str) -> None:
        defs = dict(builtin_definitions())
        crds: set[str] = set()
        for rt in types:
            if rt.crd is not None:
                own = crd_definitions(rt)
                defs.update(own)
                crds.update(own)
        index = _gvk_index(defs)
        self.info = {"title": "Kubernetes", "version": f"v{kube_version}"}
        by_gv: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for rt in types:
            kind_def, list_def = index.get((rt.group, rt.version, rt.kind)), index.get(
                (rt.group, rt.version, rt.list_kind))
            if kind_def is None or list_def is None:
                continue  # a kind without a schema: the real server would not serve it either
            key = f"api/{rt.version}" if not rt.group else f"apis/{rt.group}/{rt.version}"
            paths, roots = by_gv.setdefault(key, ({}, list(COMMON)))
            paths.update(_paths(rt, kind_def, list_def))
            roots += [kind_def, list_def] + ([SCALE] if "scale" in rt.subresources else [])
        self.v3 = {key: _json_bytes(_v3_document(self.info, paths, _closure(defs, roots)), V3_REF)
                   for key, (paths, roots) in sorted(by_gv.items())}
        self.v3_hash = {key: hashlib.sha512(body).hexdigest().upper() for key, body in self.v3.items()}
        all_paths = {p: item for paths, _roots in by_gv.values() for p, item in paths.items()}
        all_roots = [r for _gv_paths, roots in by_gv.values() for r in roots]
        v2_defs = {name: _v2_structural(node) if name in crds else node
                   for name, node in _closure(defs, all_roots).items()}
        self.v2_json = _json_bytes(_v2_document(self.info, all_paths, v2_defs), V2_REF)
        self._v2_pb: bytes | None = None

    def v2_protobuf(self) -> bytes:
        if self._v2_pb is None:  # encoded on first demand: only kubectl (client-go) asks for it
            self._v2_pb = encode_document(json.loads(self.v2_json))
        return self._v2_pb

    def v3_discovery(self) -> dict[str, Any]:
        return {"paths": {key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={self.v3_hash[key]}"}
                          for key in self.v3}}


def _json_bytes(doc: dict[str, Any], ref_prefix: str) -> bytes:
    """Sorted, compact JSON (so the hash is stable), the neutral ref prefix replaced by the version's."""
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    return text.replace(json.dumps(_REF)[:-1], json.dumps(ref_prefix)[:-1]).encode()


def _v3_schema(node: Any) -> Any:
    """A ``$ref`` with siblings (a description) is wrapped in ``allOf``, as kube-openapi's v3 does:
    v3 ignores the siblings of a ``$ref``."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: _v3_schema(sub) for name, sub in out["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = _v3_schema(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [_v3_schema(sub) for sub in out[key]]
    if "$ref" in out and len(out) > 1 and "allOf" not in out:
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def _v2_structural(node: Any) -> Any:
    """A CRD schema as the apiextensions apiserver converts it for v2 (after ToStructuralOpenAPIV2), which
    kubectl's v2 parser can read: no ``allOf``/``anyOf``/``oneOf``/``not``; nullable and
    int-or-string nodes untyped; no properties or items under ``x-kubernetes-preserve-unknown-fields``
    (kubectl's client-side validation would reject the unknown fields); an array without items
    untyped."""
    if not isinstance(node, dict):
        return node
    out = {k: v for k, v in node.items() if k not in ("allOf", "anyOf", "oneOf", "not")}
    if out.pop("nullable", False) or out.get("x-kubernetes-int-or-string"):
        for key in ("type", "items", "properties"):
            out.pop(key, None)
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("items", None)
        out.pop("properties", None)
    if isinstance(out.get("properties"), dict):
        nullable = {name for name, sub in out["properties"].items() if isinstance(sub, dict) and sub.get("nullable")}
        out["properties"] = {name: _v2_structural(sub) for name, sub in out["properties"].items()}
        if nullable and out.get("required"):
            out["required"] = [name for name in out["required"] if name not in nullable]
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _v2_structural(out[key])
    if out.get("type") == "array" and "items" not in out:
        out.pop("type")
    return out


def _v2_document(info: dict[str, str], paths: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    def param(name: str, where: str) -> dict[str, Any]:
        if where == "path":
            return {"name": name, "in": "path", "required": True, "type": "string", "uniqueItems": True,
                    "description": f"{name} of the resource" if name == "name" else "object name and auth scope"}
        kind, text = QUERY_PARAMS[name]
        return {"name": name, "in": "query", "type": kind, "uniqueItems": True, "description": text}

    out_paths = {}
    for path, item in paths.items():
        entry: dict[str, Any] = {"parameters": [param(p, "path") for p in item["params"]]}
        for method, op in item["ops"].items():
            params = ([{"name": "body", "in": "body", "required": True, "schema": {"$ref": op["body"]}}]
                      if op["body"] else []) + [param(q, "query") for q in op["query"]]
            code, ref = op["response"]
            entry[method] = {
                "description": op["description"], "operationId": op["operationId"], "tags": op["tags"],
                "consumes": op["patch_types"] if method == "patch" else ["*/*"],
                "produces": ["application/json", "application/yaml"], "schemes": ["https"],
                "parameters": params, "responses": {code: {"description": "OK", "schema": {"$ref": ref}},
                                                    "401": {"description": "Unauthorized"}},
                "x-kubernetes-action": op["x-kubernetes-action"],
                "x-kubernetes-group-version-kind": op["x-kubernetes-group-version-kind"],
            }
        out_paths[path] = entry
    doc = {"swagger": "2.0", "info": info, "paths": out_paths,
           "definitions": defs}
    return doc


def _v3_document(info: dict[str, str], paths: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    def param(name: str, where: str) -> dict[str, Any]:
        if where == "path":
            return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "uniqueItems": True},
                    "description": f"{name} of the resource" if name == "name" else "object name and auth scope"}
        kind, text = QUERY_PARAMS[name]
        return {"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": True}, "description": text}

    out_paths = {}
    for path, item in paths.items():
        entry: dict[str, Any] = {"parameters": [param(p, "path") for p in item["params"]]}
        for method, op in item["ops"].items():
            code, ref = op["response"]
            body = {}
            if op["body"]:
                types = op["patch_types"] if method == "patch" else ["*/*"]
                body = {"requestBody": {"required": True, "content": {t: {"schema": {"$ref": op["body"]}}
                                                                      for t in types}}}
            entry[method] = {
                "description": op["description"], "operationId": op["operationId"], "tags": op["tags"],
                "parameters": [param(q, "query") for q in op["query"]], **body,
                "responses": {code: {"description": "OK", "content": {
                    t: {"schema": {"$ref": ref}} for t in ("application/json", "application/yaml")}},
                    "401": {"description": "Unauthorized"}},
                "x-kubernetes-action": op["x-kubernetes-action"],
                "x-kubernetes-group-version-kind": op["x-kubernetes-group-version-kind"],
            }
        out_paths[path] = entry
    doc = {"openapi": "3.0.0", "info": info, "paths": out_paths,
           "components": {"schemas": {name: _v3_schema(node) for name, node in defs.items()},
                          "securitySchemes": {"BearerToken": {
                              "type": "apiKey", "description": "Bearer Token authentication", "name": "authorization",
                              "in": "header"}}},
           "security": [{"BearerToken": []}]}
    return doc


# ---------------------------------------------------------------------------------- protobuf

def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 two's complement, as protobuf encodes negative int64
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _msg(number: int, data: bytes) -> bytes:  # always written: presence matters (e.g. empty properties)
    return _field(number, 2, _varint(len(data)) + data)


def _str(number: int, value: Any) -> bytes:
    return _msg(number, str(value).encode()) if value not in (None, "") else b""


def _bool(number: int, value: Any) -> bytes:
    return _field(number, 0, b"\x01") if value else b""


def _int(number: int, value: Any) -> bytes:
    return _field(number, 0, _varint(int(value))) if value else b""


def _double(number: int, value: Any) -> bytes:
    return _field(number, 1, struct.pack("<d", float(value))) if value else b""


def _any(number: int, value: Any) -> bytes:
    """gnostic's Any: the value as YAML text (field 2); JSON is YAML."""
    return _msg(number, _str(2, json.dumps(value)))


def _extensions(number: int, node: dict[str, Any]) -> bytes:
    return b"".join(_msg(number, _str(1, k) + _any(2, v)) for k, v in node.items() if k.startswith("x-"))


def encode_schema(s: dict[str, Any]) -> bytes:
    """openapi_v2.Schema (field numbers from gnostic's OpenAPIv2.proto)."""
    out = [_str(1, s.get("$ref")), _str(2, s.get("format")), _str(3, s.get("title")),
           _str(4, s.get("description"))]
    if "default" in s:
        out.append(_any(5, s["default"]))
    out += [_double(6, s.get("multipleOf")), _double(7, s.get("maximum")), _bool(8, s.get("exclusiveMaximum")),
            _double(9, s.get("minimum")), _bool(10, s.get("exclusiveMinimum")), _int(11, s.get("maxLength")),
            _int(12, s.get("minLength")), _str(13, s.get("pattern")), _int(14, s.get("maxItems")),
            _int(15, s.get("minItems")), _bool(16, s.get("uniqueItems")), _int(17, s.get("maxProperties")),
            _int(18, s.get("minProperties"))]
    out += [_str(19, r) for r in s.get("required") or []]
    out += [_any(20, v) for v in s.get("enum") or []]
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        out.append(_msg(21, _msg(1, encode_schema(extra))))
    elif isinstance(extra, bool):
        out.append(_msg(21, _field(2, 0, b"\x01" if extra else b"\x00")))
    if s.get("type"):
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        out.append(_msg(22, b"".join(_str(1, t) for t in types)))
    items = s.get("items")
    if items is not None:
        out.append(_msg(23, b"".join(_msg(1, encode_schema(i)) for i in (items if isinstance(items, list)
                                                                         else [items]))))
    out += [_msg(24, encode_schema(sub)) for sub in s.get("allOf") or []]
    if isinstance(s.get("properties"), dict):
        out.append(_msg(25, b"".join(_msg(1, _str(1, k) + _msg(2, encode_schema(v)))
                                     for k, v in s["properties"].items())))
    out += [_bool(27, s.get("readOnly"))]
    if "example" in s:
        out.append(_any(30, s["example"]))
    out.append(_extensions(31, s))
    return b"".join(out)


def _encode_parameter(p: dict[str, Any]) -> bytes:
    """ParametersItem{parameter: Parameter{body_parameter | non_body_parameter{query | path}}}."""
    if p["in"] == "body":
        body = (_str(1, p.get("description")) + _str(2, p["name"]) + _str(3, "body") + _bool(4, p.get("required"))
                + _msg(5, encode_schema(p["schema"])))
        return _msg(1, _msg(1, body))
    if p["in"] == "query":  # QueryParameterSubSchema
        sub = (_bool(1, p.get("required")) + _str(2, "query") + _str(3, p.get("description")) + _str(4, p["name"])
               + _str(6, p.get("type")) + _bool(20, p.get("uniqueItems")))
        return _msg(1, _msg(2, _msg(3, sub)))
    sub = (_bool(1, p.get("required")) + _str(2, "path") + _str(3, p.get("description")) + _str(4, p["name"])
           + _str(5, p.get("type")) + _bool(19, p.get("uniqueItems")))  # PathParameterSubSchema
    return _msg(1, _msg(2, _msg(4, sub)))


def _encode_operation(op: dict[str, Any]) -> bytes:
    out = [_str(1, t) for t in op.get("tags") or []]
    out += [_str(3, op.get("description")), _str(5, op.get("operationId"))]
    out += [_str(6, t) for t in op.get("produces") or []] + [_str(7, t) for t in op.get("consumes") or []]
    out += [_msg(8, _encode_parameter(p)) for p in op.get("parameters") or []]
    responses = b""
    for code, response in (op.get("responses") or {}).items():
        body = _str(1, response.get("description"))
        if "schema" in response:
            body += _msg(2, _msg(1, encode_schema(response["schema"])))  # SchemaItem{schema}
        responses += _msg(1, _str(1, code) + _msg(2, _msg(1, body)))  # NamedResponseValue{name, ResponseValue}
    out.append(_msg(9, responses))
    out += [_str(10, s) for s in op.get("schemes") or []]
    out.append(_extensions(13, op))
    return b"".join(out)


def encode_document(doc: dict[str, Any]) -> bytes:
    """openapi_v2.Document: swagger, info, paths, definitions (what client-go and kubectl read)."""
    methods = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}
    paths = b""
    for path, item in doc["paths"].items():
        body = b"".join(_msg(number, _encode_operation(item[m])) for m, number in methods.items() if m in item)
        body += b"".join(_msg(9, _encode_parameter(p)) for p in item.get("parameters") or [])
        paths += _msg(2, _str(1, path) + _msg(2, body))  # Paths.path: NamedPathItem
    definitions = b"".join(_msg(1, _str(1, name) + _msg(2, encode_schema(node)))
                           for name, node in doc["definitions"].items())
    info = _str(1, doc["info"]["title"]) + _str(2, doc["info"]["version"])
    return _str(1, doc["swagger"]) + _msg(2, info) + _msg(8, paths) + _msg(9, definitions)


# ---------------------------------------------------------------------------------- HTTP

_CACHE: "weakref.WeakKeyDictionary[Any, tuple[Any, Documents]]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def documents(store: Any) -> Documents:
    """The documents for the store's current resource types, rebuilt only when its CRDs change."""
    types = store.types()
    key = json.dumps([[rt.group, rt.version, rt.kind, rt.plural, rt.namespaced, list(rt.subresources), rt.crd]
                      for rt in types if rt.crd is not None], sort_keys=True, default=str)
    with _LOCK:
        cached = _CACHE.get(store)
        if cached is None or cached[0] != key:
            cached = (key, Documents(types, store.kube_version))
            _CACHE[store] = cached
        return cached[1]


def _accepts(accept: str, *types: str) -> str | None:
    """The first of ``types`` the Accept header admits, in the client's order; no header admits the
    last (JSON)."""
    if not accept.strip():
        return types[-1]
    for entry in accept.split(","):
        media, *params = (part.strip() for part in entry.split(";"))
        if any(p.replace(" ", "") in ("q=0", "q=0.0") for p in params):
            continue
        media = media.lower()
        for wanted in types:
            if media in (wanted, "*/*") or (media.endswith("/*") and wanted.startswith(media[:-1])):
                return wanted
    return None


def respond(store: Any, rest: list[str], query: dict[str, str], accept: str) -> tuple[int, Any, dict[str, str]]:
    """(status, body, headers) for ``/openapi/<rest...>``; bytes bodies carry their Content-Type."""
    docs = documents(store)
    if rest == ["v2"]:
        wanted = _accepts(accept, PB_V2, PB_V2_SERVED, "application/json")
        if wanted is None:
            raise E.ApiError(406, "NotAcceptable", f"only the following media types are accepted: {PB_V2}, "
                                                   "application/json", {})
        json_wanted = wanted == "application/json"
        body = docs.v2_json if json_wanted else docs.v2_protobuf()
        etag = hashlib.sha512(body).hexdigest().upper()
        return 200, body, {"Content-Type": wanted if json_wanted else PB_V2_SERVED, "Etag": f'"{etag}"',
                           "Vary": "Accept"}
    if rest == ["v3"]:
        return 200, docs.v3_discovery(), {}
    key = "/".join(rest[1:])
    if rest[:1] != ["v3"] or key not in docs.v3:
        raise E.path_not_found()
    if _accepts(accept, "application/json") is None:
        raise E.ApiError(406, "NotAcceptable", "only the following media types are accepted: application/json", {})
    current = docs.v3_hash[key]
    headers = {"Content-Type": "application/json", "Etag": f'"{current}"', "Vary": "Accept"}
    given = query.get("hash")
    if given is not None and given != current:  # kube-openapi redirects a stale hash to the current one
        return 301, b"", {"Content-Type": "text/plain", "Location": f"/openapi/v3/{key}?hash={current}"}
    if given is not None:
        headers.update({"Cache-Control": "public, immutable", "Expires": "Fri, 01 Jan 2100 00:00:00 GMT"})
    return 200, docs.v3[key], headers
