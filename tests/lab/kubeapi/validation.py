"""Admission: schema validation plus the Go-side checks a real API server makes (names, labels...).

Error mapping, as the real server does it:
- unknown field (strict field validation) → 400 BadRequest ``strict decoding error: unknown field "spec.foo"``
- wrong JSON type → 400 BadRequest ``... cannot be handled as a Deployment: ...``
- missing required field → 422 Invalid, cause ``FieldValueRequired``
- value outside an enum → 422 Invalid, cause ``FieldValueNotSupported``
- invalid name / label / annotation → 422 Invalid, cause ``FieldValueInvalid``
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from . import schema as sch
from .errors import bad_request, cause

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
_LABEL_RE = re.compile("^" + DNS1123_LABEL + "$")
_SUBDOMAIN_RE = re.compile("^" + DNS1123_SUBDOMAIN + "$")
_QNAME_PART = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile("^" + _QNAME_PART + "$")
_LABEL_VALUE_RE = re.compile("^(" + _QNAME_PART + ")?$")

MSG_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
             "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
             "used for validation is '" + DNS1123_LABEL + "')")
MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                 "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                 "regex used for validation is '" + DNS1123_SUBDOMAIN + "')")
MSG_QNAME = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
             "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
             "used for validation is '" + _QNAME_PART.replace("\\", "") + "')")
MSG_LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
                   "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
                   "'my_value',  or '12345', regex used for validation is '(" + _QNAME_PART.replace("\\", "") + ")?')")

NAME_LABEL = "label"          # DNS-1123 label (namespaces, services)
NAME_SUBDOMAIN = "subdomain"  # DNS-1123 subdomain (most kinds)
NAME_PATH = "path"            # path segment (RBAC kinds)


def _q(v: Any) -> str:
    return json.dumps(v)


def name_errors(name: str, rule: str, field: str = "metadata.name") -> list[dict[str, str]]:
    if rule == NAME_PATH:
        if name in (".", ".."):
            return [cause("FieldValueInvalid", field, f'Invalid value: {_q(name)}: may not be {_q(name)}')]
        for bad in ("/", "%"):
            if bad in name:
                return [cause("FieldValueInvalid", field, f'Invalid value: {_q(name)}: may not contain {_q(bad)}')]
        return []
    if rule == NAME_LABEL:
        errs = []
        if len(name) > 63:
            errs.append(cause("FieldValueInvalid", field, f"Invalid value: {_q(name)}: must be no more than 63 characters"))
        if not _LABEL_RE.match(name):
            errs.append(cause("FieldValueInvalid", field, f"Invalid value: {_q(name)}: {MSG_LABEL}"))
        return errs
    errs = []
    if len(name) > 253:
        errs.append(cause("FieldValueInvalid", field, f"Invalid value: {_q(name)}: must be no more than 253 characters"))
    if not _SUBDOMAIN_RE.match(name):
        errs.append(cause("FieldValueInvalid", field, f"Invalid value: {_q(name)}: {MSG_SUBDOMAIN}"))
    return errs


def qualified_name_errors(key: str, field: str) -> list[dict[str, str]]:
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return [cause("FieldValueInvalid", field, f"Invalid value: {_q(key)}: prefix part must be non-empty")]
        if len(prefix) > 253 or not _SUBDOMAIN_RE.match(prefix):
            return [cause("FieldValueInvalid", field, f"Invalid value: {_q(key)}: prefix part {MSG_SUBDOMAIN}")]
    else:
        return [cause("FieldValueInvalid", field, f"Invalid value: {_q(key)}: a qualified name {MSG_QNAME} with an "
                      "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")]
    if not name:
        return [cause("FieldValueInvalid", field, f"Invalid value: {_q(key)}: name part must be non-empty")]
    if len(name) > 63:
        return [cause("FieldValueInvalid", field, f"Invalid value: {_q(key)}: name part must be no more than 63 characters")]
    if not _QNAME_RE.match(name):
        return [cause("FieldValueInvalid", field, f"Invalid value: {_q(key)}: {MSG_QNAME}")]
    return []


def label_errors(labels: Any, field: str = "metadata.labels") -> list[dict[str, str]]:
    errs: list[dict[str, str]] = []
    if not isinstance(labels, dict):
        return errs
    for k, v in labels.items():
        errs += qualified_name_errors(k, field)
        if not isinstance(v, str):
            continue
        if len(v) > 63:
            errs.append(cause("FieldValueInvalid", field, f"Invalid value: {_q(v)}: must be no more than 63 characters"))
        elif not _LABEL_VALUE_RE.match(v):
            errs.append(cause("FieldValueInvalid", field, f"Invalid value: {_q(v)}: {MSG_LABEL_VALUE}"))
    return errs


def annotation_errors(annotations: Any, field: str = "metadata.annotations") -> list[dict[str, str]]:
    errs: list[dict[str, str]] = []
    if not isinstance(annotations, dict):
        return errs
    total = 0
    for k, v in annotations.items():
        errs += qualified_name_errors(k.lower(), field)
        total += len(k) + len(v or "")
    if total > 256 * 1024:
        errs.append(cause("FieldValueTooLong", field, f"Too long: may not be more than {256 * 1024} bytes"))
    return errs


def _field(path: Any) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def schema_check(obj: dict[str, Any], group: str, kind: str, name: str, strict_fields: bool) -> list[str]:
    """Validate against the official schema.  Raise 400 / 422; return warnings (unknown fields when not strict)."""
    unknown: list[str] = []
    type_errors: list[str] = []
    causes: list[dict[str, str]] = []
    for err in sch.iter_errors(obj):
        where = _field(err.absolute_path)
        if err.validator == "additionalProperties" and err.validator_value is False:
            props = set((err.schema.get("properties") or {}).keys())
            for extra in sorted(set(err.instance) - props):
                unknown.append(f"{where}.{extra}" if where else extra)
        elif err.validator == "required":
            missing = re.match(r"'([^']+)' is a required property", err.message)
            f = (f"{where}.{missing.group(1)}" if where else missing.group(1)) if missing else where
            causes.append(cause("FieldValueRequired", f, "Required value"))
        elif err.validator == "enum":
            # the schema pins apiVersion/kind with enums; those cannot mismatch after routing
            allowed = ", ".join(_q(v) for v in err.validator_value if v is not None)
            causes.append(cause("FieldValueNotSupported", where, f"Unsupported value: {_q(err.instance)}: supported values: {allowed}"))
        elif err.validator in ("type", "oneOf", "anyOf"):
            type_errors.append(f"{where}: {err.message}")
        else:
            causes.append(cause("FieldValueInvalid", where, f"Invalid value: {_q(err.instance)}: {err.message}"))
    if type_errors:
        raise bad_request(f'{kind} in version "{obj.get("apiVersion", "").split("/")[-1]}" cannot be handled as a '
                          f'{kind}: ' + "; ".join(type_errors))
    if unknown and strict_fields:
        if len(unknown) == 1:
            raise bad_request(f'strict decoding error: unknown field "{unknown[0]}"')
        raise bad_request("strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown))
    if causes:
        from .errors import invalid  # noqa: PLC0415
        raise invalid(group, kind, name, causes)
    return [f'unknown field "{u}"' for u in unknown]


def drop_fields(obj: dict[str, Any], paths: list[str]) -> None:
    """Remove unknown fields (``spec.foo``, ``spec.containers[0].bar``) when not validating strictly."""
    for path in paths:
        parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
        cur: Any = obj
        for p in parts[:-1]:
            cur = cur[int(p[1:-1])] if p.startswith("[") else cur.get(p)
            if cur is None:
                break
        else:
            if isinstance(cur, dict):
                cur.pop(parts[-1], None)


def secret_data_errors(data: Any) -> None:
    if not isinstance(data, dict):
        return
    for k, v in data.items():
        if v is None:
            continue
        try:
            base64.b64decode(v, validate=True)
        except Exception:  # noqa: BLE001
            raise bad_request(f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data '
                              f'at input byte 0 (data key {k!r})') from None
