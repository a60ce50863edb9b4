"""CloudCore v1.23.1's configuration: defaults, decoding, validation, adjustment, marshalling.

Upstream: staging/src/github.com/kubeedge/api/apis/componentconfig/cloudcore/v1alpha1 (types.go,
default.go ``NewDefaultCloudCoreConfig`` and ``AdjustCloudCoreConfig``, helper.go ``Parse``,
validation/validation.go) and cloud/cmd/cloudcore/app (options ``Config``, server.go).

Why a schema: what an installer sees depends on Go's encoding. ``Parse`` decodes the file with
sigs.k8s.io/yaml (YAML -> JSON -> encoding/json) INTO the default configuration, so omitted
fields keep their defaults (an omitted advertiseAddress is the host's address), lists replace,
``null`` clears pointers and lists, unknown keys are ignored, keys match case-insensitively, and
a wrong type is an error. ``updateCloudCoreConfigMap`` writes the whole configuration back with
yaml.Marshal: every default appears, ``omitempty`` fields with zero values disappear, keys come
sorted, quoted strings get double quotes.

Standard library + python3-yaml.
"""
from __future__ import annotations

import ipaddress
import os

import yaml

# ------------------------------------------------------------------------------------- the schema
# A field is (go type, omitempty); a struct is a dict of json name -> field. Pointer structs are
# ("*", struct, omitempty); a list of structs is ("[]", struct, omitempty).
B, I32, U32, INT, I64, STR = "bool", "int32", "uint32", "int", "int64", "string"
STRS, GATES = "[]string", "map[string]bool"


def _ints(names: str, kind: str = I32) -> dict:
    return {n: (kind, True) for n in names.split()}


MONITOR = {"bindAddress": (STR, True), "enableProfiling": (B, True)}
COMMON = {"tunnelPort": (INT, True), "monitorServer": ("struct", MONITOR, True)}
KUBEAPI = {"master": (STR, False), "contentType": (STR, True), "qps": (I32, True), "burst": (I32, True),
           "kubeConfig": (STR, False)}
QUIC = {"enable": (B, False), "address": (STR, True), "port": (U32, True), "maxIncomingStreams": (I32, True)}
UNIXSOCKET = {"enable": (B, False), "address": (STR, True)}
LISTENER = {"enable": (B, False), "address": (STR, True), "port": (U32, True)}
AUTHZ = {"enable": (B, False), "debug": (B, False),
         "modes": ("[]", {"node": ("*", {"enable": (B, False)}, True)}, False)}
CLOUDHUB = {
    "enable": (B, False), **_ints("keepaliveInterval nodeLimit"),
    "tlsCAFile": (STR, True), "tlsCAKeyFile": (STR, True), "tlsCertFile": (STR, True),
    "tlsPrivateKeyFile": (STR, True), "writeTimeout": (I32, True),
    "quic": ("*", QUIC, True), "unixsocket": ("*", UNIXSOCKET, True), "websocket": ("*", LISTENER, True),
    "https": ("*", LISTENER, True), "advertiseAddress": (STRS, True), "dnsNames": (STRS, True),
    "edgeCertSigningDuration": (I64, True), "tokenRefreshDuration": (I64, True),
    "authorization": ("*", AUTHZ, True),
}
EC_BUFFER = _ints("processEvent updatePodStatus updateNodeStatus queryConfigMap querySecret podEvent "
                  "configMapEvent secretEvent rulesEvent ruleEndpointsEvent queryPersistentVolume "
                  "queryPersistentVolumeClaim queryVolumeAttachment createNode patchNode queryNode updateNode "
                  "patchPod deletePod createLease queryLease serviceAccountToken createPod certificateSigningRequest")
EC_LOAD = _ints("processEventWorkers updatePodStatusWorkers updateNodeStatusWorkers queryConfigMapWorkers "
                "querySecretWorkers queryPersistentVolumeWorkers queryPersistentVolumeClaimWorkers "
                "queryVolumeAttachmentWorkers createNodeWorkers patchNodeWorkers queryNodeWorkers updateNodeWorkers "
                "patchPodWorkers deletePodWorkers createLeaseWorkers queryLeaseWorkers UpdateRuleStatusWorkers "
                "ServiceAccountTokenWorkers CreatePodWorks certificateSigningRequestWorkers")
EDGECONTROLLER = {"enable": (B, False), "nodeUpdateFrequency": (I32, True),
                  "buffer": ("*", EC_BUFFER, True), "load": ("*", EC_LOAD, True)}
DEVICECONTROLLER = {"enable": (B, False),
                    "buffer": ("*", _ints("updateDeviceTwins updateDeviceStatus deviceEvent deviceModelEvent "
                                          "deviceStatusEvent"), True),
                    "load": ("*", _ints("updateDeviceStatusWorkers"), True)}
TASKMANAGER = {"enable": (B, False), "buffer": ("*", _ints("taskStatus taskEvent"), True),
               "load": ("*", _ints("taskWorkers"), True)}
ENABLE_ONLY = {"enable": (B, False)}
CLOUDSTREAM = {"enable": (B, False), "tlsTunnelCAFile": (STR, True), "tlsTunnelCertFile": (STR, True),
               "tlsTunnelPrivateKeyFile": (STR, True), "tunnelPort": (U32, True), "tlsStreamCAFile": (STR, True),
               "tlsStreamCertFile": (STR, True), "tlsStreamPrivateKeyFile": (STR, True), "streamPort": (U32, True)}
ROUTER = {"enable": (B, False), "address": (STR, True), "port": (U32, True), "restTimeout": (U32, True)}
IPTABLES = {"enable": (B, False), "mode": (STR, True)}
MODULES = {"cloudHub": ("*", CLOUDHUB, True), "edgeController": ("*", EDGECONTROLLER, True),
           "deviceController": ("*", DEVICECONTROLLER, True), "taskManager": ("*", TASKMANAGER, True),
           "syncController": ("*", ENABLE_ONLY, True), "dynamicController": ("*", ENABLE_ONLY, True),
           "cloudStream": ("*", CLOUDSTREAM, True), "router": ("*", ROUTER, True),
           "iptablesManager": ("*", IPTABLES, True)}
CLOUDCORE = {"kind": (STR, True), "apiVersion": (STR, True),  # metav1.TypeMeta, inlined
             "commonConfig": ("*", COMMON, True), "kubeAPIConfig": ("*", KUBEAPI, True),
             "modules": ("*", MODULES, True), "featureGates": (GATES, True)}

RANGES = {I32: (-2 ** 31, 2 ** 31 - 1), U32: (0, 2 ** 32 - 1), INT: (-2 ** 63, 2 ** 63 - 1),
          I64: (-2 ** 63, 2 ** 63 - 1)}

DEFAULT_NODE_LIMIT = 500  # constants.DefaultNodeLimit
SERVER_PORT = 10350  # constants.ServerPort: tunnel ports are negotiated from 10351 upward
CONFIG_FILE = "/etc/kubeedge/config/cloudcore.yaml"  # options.NewCloudCoreOptions


def default_config(host_ip: str) -> dict:
    """default.go NewDefaultCloudCoreConfig; ``host_ip`` is utilnet.ChooseHostInterface()."""
    n = DEFAULT_NODE_LIMIT
    return {
        "kind": "CloudCore", "apiVersion": "cloudcore.config.kubeedge.io/v1alpha1",
        "commonConfig": {"tunnelPort": SERVER_PORT, "monitorServer": {"bindAddress": "127.0.0.1:9091",
                                                                      "enableProfiling": False}},
        "kubeAPIConfig": {"master": "", "contentType": "application/vnd.kubernetes.protobuf",
                          "qps": 5 * n, "burst": 10 * n, "kubeConfig": ""},
        "modules": {
            "cloudHub": {
                "enable": True, "keepaliveInterval": 30, "nodeLimit": n,
                "tlsCAFile": "/etc/kubeedge/ca/rootCA.crt", "tlsCAKeyFile": "/etc/kubeedge/ca/rootCA.key",
                "tlsCertFile": "/etc/kubeedge/certs/server.crt", "tlsPrivateKeyFile": "/etc/kubeedge/certs/server.key",
                "writeTimeout": 30, "advertiseAddress": [host_ip], "dnsNames": [""],
                "edgeCertSigningDuration": 365, "tokenRefreshDuration": 12,
                "quic": {"enable": False, "address": "0.0.0.0", "port": 10001, "maxIncomingStreams": 10000},
                "unixsocket": {"enable": True, "address": "unix:///var/lib/kubeedge/kubeedge.sock"},
                "websocket": {"enable": True, "port": 10000, "address": "0.0.0.0"},
                "https": {"enable": True, "port": 10002, "address": "0.0.0.0"},
                "authorization": {"enable": False, "debug": True, "modes": [{"node": {"enable": True}}]},
            },
            "edgeController": {
                "enable": True, "nodeUpdateFrequency": 10,
                "buffer": {"updatePodStatus": 1024, "processEvent": 1024, "updateNodeStatus": 1024,
                           "queryConfigMap": 1024, "querySecret": 1024, "podEvent": 1, "configMapEvent": 1,
                           "secretEvent": 1, "rulesEvent": 1, "ruleEndpointsEvent": 1, "queryPersistentVolume": 1024,
                           "queryPersistentVolumeClaim": 1024, "queryVolumeAttachment": 1024, "createNode": 1024,
                           "patchNode": 1024 + n // 2, "queryNode": 1024 + n, "updateNode": 1024, "patchPod": 1024,
                           "deletePod": 1024, "createLease": 1024 + n, "queryLease": 1024,
                           "serviceAccountToken": 1024, "createPod": 1024, "certificateSigningRequest": 1024},
                "load": {"updatePodStatusWorkers": 1, "updateNodeStatusWorkers": 1, "queryConfigMapWorkers": 100,
                         "processEventWorkers": 4, "querySecretWorkers": 100, "queryPersistentVolumeWorkers": 4,
                         "queryPersistentVolumeClaimWorkers": 4, "queryVolumeAttachmentWorkers": 4,
                         "queryNodeWorkers": n, "createNodeWorkers": 100, "patchNodeWorkers": 100 + n // 50,
                         "updateNodeWorkers": 4, "patchPodWorkers": 100, "deletePodWorkers": 100,
                         "createLeaseWorkers": n, "queryLeaseWorkers": 100, "UpdateRuleStatusWorkers": 4,
                         "ServiceAccountTokenWorkers": 100, "CreatePodWorks": 4,
                         "certificateSigningRequestWorkers": 4},
            },
            "deviceController": {"enable": True,
                                 "buffer": {"updateDeviceTwins": 1024, "updateDeviceStatus": 1024, "deviceEvent": 1,
                                            "deviceModelEvent": 1},
                                 "load": {"updateDeviceStatusWorkers": 1}},
            "taskManager": {"enable": False, "buffer": {"taskStatus": 1024, "taskEvent": 1},
                            "load": {"taskWorkers": 1}},
            "syncController": {"enable": True},
            "dynamicController": {"enable": False},
            "cloudStream": {"enable": False, "tlsTunnelCAFile": "/etc/kubeedge/ca/rootCA.crt",
                            "tlsTunnelCertFile": "/etc/kubeedge/certs/server.crt",
                            "tlsTunnelPrivateKeyFile": "/etc/kubeedge/certs/server.key", "tunnelPort": 10004,
                            "tlsStreamCAFile": "/etc/kubeedge/ca/streamCA.crt",
                            "tlsStreamCertFile": "/etc/kubeedge/certs/stream.crt",
                            "tlsStreamPrivateKeyFile": "/etc/kubeedge/certs/stream.key", "streamPort": 10003},
            "router": {"enable": False, "address": "0.0.0.0", "port": 9443, "restTimeout": 60},
            "iptablesManager": {"enable": True, "mode": "internal"},
        },
    }


class ConfigError(Exception):
    """CloudCore would exit: ``klog.Exit(message)`` (exit code 1) or a panic (exit code 2)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------- decoding
def _type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _field(schema: dict, key: str):
    """encoding/json's field match: exact name first, then case-insensitive."""
    if key in schema:
        return key
    folded = [name for name in schema if name.lower() == key.lower()]
    return folded[0] if folded else None


def _decode_scalar(kind: str, value, path: str):
    def bad():
        go = {STRS: "[]string", GATES: "map[string]bool", I64: "time.Duration"}.get(kind, kind)
        return ConfigError(f"error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
                           f"{_type_name(value)} into Go struct field {path} of type {go}")

    if kind == B:
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind == STR:
        if not isinstance(value, str):
            raise bad()
        return value
    if kind in RANGES:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise bad()
        low, high = RANGES[kind]
        if not low <= int(value) <= high:
            raise bad()
        return int(value)
    if kind == STRS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad()
        return list(value)
    if kind == GATES:
        if not isinstance(value, dict) or not all(isinstance(v, bool) for v in value.values()):
            raise bad()
        return {str(k): v for k, v in value.items()}
    raise bad()


def _decode(schema: dict, target: dict, data: dict, path: str) -> None:
    """json.Unmarshal of ``data`` into the struct ``target`` (decoded in place, like Go)."""
    for key, value in data.items():
        name = _field(schema, str(key))
        if name is None:
            continue  # unknown field: ignored (sigs.k8s.io/yaml.Unmarshal is not strict)
        spec = schema[name]
        kind, where = spec[0], f"{path}.{name}" if path else name
        if value is None:
            if kind in ("*", "[]", STRS, GATES):
                target[name] = None
            continue  # null into a value type: no effect
        if kind in ("*", "struct"):
            if not isinstance(value, dict):
                raise ConfigError(f"error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
                                  f"{_type_name(value)} into Go struct field {where} of type struct")
            if not isinstance(target.get(name), dict):
                target[name] = {}
            _decode(spec[1], target[name], value, where)
        elif kind == "[]":
            if not isinstance(value, list):
                raise ConfigError(f"error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
                                  f"{_type_name(value)} into Go struct field {where} of type []struct")
            items = []
            for item in value:
                decoded: dict = {}
                if item is not None:
                    _decode(spec[1], decoded, item if isinstance(item, dict) else {}, where)
                items.append(decoded)
            target[name] = items
        elif kind == GATES and isinstance(target.get(name), dict):
            target[name].update(_decode_scalar(kind, value, where))  # maps merge
        else:
            target[name] = _decode_scalar(kind, value, where)


def parse(text: str, host_ip: str) -> dict:
    """options.Config: the defaults, then the file decoded into them (helper.go Parse)."""
    config = default_config(host_ip)
    try:
        data = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"error converting YAML to JSON: {exc}") from exc
    if data is None:
        return config
    if not isinstance(data, dict):
        raise ConfigError("error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
                          f"{_type_name(data)} into Go value of type v1alpha1.CloudCoreConfig")
    _decode(CLOUDCORE, config, data, "")
    return config


# ------------------------------------------------------------------------------------- access
def get(config: dict, dotted: str, default=None):
    """A value by dotted path (None-safe)."""
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or node.get(part) is None:
            return default
        node = node[part]
    return node


def require(config: dict, *dotted: str) -> None:
    """Go dereferences these pointers without a check: nil (``null`` in the file) panics."""
    for path in dotted:
        if get(config, path) is None:
            raise ConfigError("panic: runtime error: invalid memory address or nil pointer dereference "
                              f"({path} is null)", code=2)


# ------------------------------------------------------------------------------------- validation
def _valid_port(port) -> bool:
    return isinstance(port, int) and 1 <= port <= 65535


def _valid_ip(text) -> bool:
    try:
        ipaddress.ip_address(str(text))
        return True
    except ValueError:
        return False


def validate(config: dict, exists=os.path.exists) -> list[str]:
    """validation.go ValidateCloudCoreConfiguration (the checks an installer can trip).

    ``exists`` says whether a file exists inside the container.
    """
    require(config, "kubeAPIConfig", "commonConfig", "modules.cloudHub", "modules.edgeController",
            "modules.deviceController", "modules.syncController", "modules.dynamicController",
            "modules.cloudStream")
    errs = []
    kubeconfig = get(config, "kubeAPIConfig.kubeConfig", "")
    if kubeconfig and not os.path.isabs(kubeconfig):
        errs.append(f'kubeconfig: Invalid value: "{kubeconfig}": kubeconfig need abs path')
    if kubeconfig and not exists(kubeconfig):
        errs.append(f'kubeconfig: Invalid value: "{kubeconfig}": kubeconfig not exist')
    bind = get(config, "commonConfig.monitorServer.bindAddress", "")
    host, sep, port = bind.rpartition(":")
    if not sep:
        errs.append(f'monitorServer.bindAddress: Invalid value: "{bind}": must be IP:port')
    else:
        if not _valid_ip(host.strip("[]")):
            errs.append(f'monitorServer.bindAddress: Invalid value: "{host}": must be a valid IP')
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            errs.append(f'monitorServer.bindAddress: Invalid value: "{port}": must be a valid port')
    hub = get(config, "modules.cloudHub")
    if hub.get("enable"):
        require(config, "modules.cloudHub.https", "modules.cloudHub.websocket", "modules.cloudHub.quic",
                "modules.cloudHub.unixsocket")
        for section in ("https", "websocket", "quic"):
            if not _valid_port(hub[section].get("port", 0)):
                errs.append(f"port: Invalid value: {hub[section].get('port', 0)}: must be between 1 and 65535, inclusive")
        for section in ("websocket", "quic"):
            if not _valid_ip(hub[section].get("address", "")):
                errs.append(f'Address: Invalid value: "{hub[section].get("address", "")}": must be a valid IP address')
        sock = hub["unixsocket"].get("address", "")
        if not sock.lower().startswith("unix://"):
            errs.append(f'address: Invalid value: "{sock}": unixSocketAddress must has prefix unix://')
        if hub.get("tokenRefreshDuration", 0) <= 0:
            errs.append(f"TokenRefreshDuration: Invalid value: {hub.get('tokenRefreshDuration', 0)}: "
                        "TokenRefreshDuration must be positive")
    ec = get(config, "modules.edgeController")
    if ec.get("enable") and ec.get("nodeUpdateFrequency", 0) <= 0:
        errs.append(f"NodeUpdateFrequency: Invalid value: {ec.get('nodeUpdateFrequency', 0)}: NodeUpdateFrequency need > 0")
    stream = get(config, "modules.cloudStream")
    if stream.get("enable"):
        for key in ("TLSStreamPrivateKeyFile", "TLSStreamCertFile", "TLSStreamCAFile"):
            path = stream.get(key[0].lower() + key[1:], "")
            if not exists(path):
                errs.append(f'{key}: Invalid value: "{path}": {key} not exist')
    return errs


# ------------------------------------------------------------------------------------- adjustment
def adjust(config: dict) -> bool:
    """default.go AdjustCloudCoreConfig: qps/burst from nodeLimit, worker/buffer minimums. Changed?"""
    require(config, "modules.cloudHub", "kubeAPIConfig", "modules.edgeController.load",
            "modules.edgeController.buffer")
    n = config["modules"]["cloudHub"].get("nodeLimit", 0)
    api = config["kubeAPIConfig"]
    load = config["modules"]["edgeController"]["load"]
    buffer = config["modules"]["edgeController"]["buffer"]
    changed = False

    def force(section: dict, key: str, wanted: int, minimum: bool) -> None:
        nonlocal changed
        current = section.get(key, 0)
        if (current < wanted) if minimum else (current != wanted):
            section[key] = wanted
            changed = True

    force(api, "qps", 5 * n, minimum=False)
    force(api, "burst", 10 * n, minimum=False)
    force(load, "queryNodeWorkers", n, minimum=True)
    force(load, "patchNodeWorkers", 100 + int(n / 50), minimum=True)  # Go int32 division truncates
    force(load, "createLeaseWorkers", n, minimum=True)
    force(buffer, "patchNode", 1024 + int(n / 2), minimum=True)
    force(buffer, "queryNode", 1024 + n, minimum=True)
    force(buffer, "createLease", 1024 + n, minimum=True)
    return changed


# ------------------------------------------------------------------------------------- marshalling
def _zero(kind: str, value) -> bool:
    if value is None:
        return True
    if kind in (B,):
        return value is False
    if kind in RANGES:
        return value == 0
    if kind == STR:
        return value == ""
    if kind in (STRS, GATES, "[]"):
        return len(value) == 0
    return False  # structs are never empty for omitempty; pointers only when nil


def _encode(schema: dict, value: dict) -> dict:
    """json.Marshal of a struct: declared fields only, omitempty honoured."""
    out = {}
    for name, spec in schema.items():
        kind, omit = spec[0], spec[-1]
        current = value.get(name) if isinstance(value, dict) else None
        if kind in ("*", "struct"):
            if current is None and kind == "*":
                if not omit:
                    out[name] = None
                continue
            out[name] = _encode(spec[1], current or {})
        elif kind == "[]":
            if current is None or (omit and not current):
                if not omit:
                    out[name] = None
                continue
            out[name] = [_encode(spec[1], item) for item in current]
        else:
            if current is None:
                current = {B: False, STR: "", STRS: None, GATES: None}.get(kind, 0)
            if omit and _zero(kind, current):
                continue
            out[name] = current
    return out


class _GoStyleDumper(yaml.SafeDumper):
    """go-yaml v2 quotes with double quotes where PyYAML would use single ones."""

    def choose_scalar_style(self):
        style = super().choose_scalar_style()
        return '"' if style == "'" else style


def marshal(config: dict) -> str:
    """sigs.k8s.io/yaml.Marshal(config): JSON field rules, then YAML with sorted keys."""
    return yaml.dump(_encode(CLOUDCORE, config), Dumper=_GoStyleDumper, default_flow_style=False,
                     sort_keys=True, width=1 << 20, allow_unicode=True)
