"""The CloudCore stand-in's Kubernetes certificate source against the API stand-in, without the lab.

Quick (no root, no containers): one API stand-in on 127.0.0.1 (ephemeral port) in a temporary
directory, several KubeCertSource objects playing several nodes, in this process. Needs the venv
(cryptography, pyyaml, kubernetes-validate for the API stand-in; the kubernetes client to play the
roles). The same code runs in the lab nodes with the standard library + python3-cryptography.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "standin"))

yaml = pytest.importorskip("yaml")
x509 = pytest.importorskip("cryptography.x509")
kubernetes = pytest.importorskip("kubernetes")

import cloudcore_standin as standin  # noqa: E402
import kubeclient  # noqa: E402
import kubeedge_pki  # noqa: E402

NS = "kubeedge"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    state = tmp_path_factory.mktemp("kubeapi")
    proc = subprocess.Popen([sys.executable, "-m", "kubeapi", "serve", "--state-dir", str(state),
                             "--listen", "127.0.0.1:0", "--nodes", "ccha-node1=10.213.102.11"],
                            cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ready = state / "ready.json"
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "API stand-in not ready"
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    # the nodes get a JSON kubeconfig (no python3-yaml needed to read it)
    as_json = state / "kubeconfig.json"
    as_json.write_text(json.dumps(yaml.safe_load((state / "kubeconfig").read_text())))
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(str(state / "kubeconfig")))
    yield {"core": core, "kubeconfig": str(as_json), "yaml_kubeconfig": info["kubeconfig"], "state": state}
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture()
def files(tmp_path):
    """What the lab writes for the files source: ca.crt, server.crt, server.key."""
    ca, ca_key = kubeedge_pki.new_ca()
    cert, key = kubeedge_pki.sign_server(ca, ca_key, ["10.213.102.100", "127.0.0.1"], [])
    (tmp_path / "ca.crt").write_bytes(kubeedge_pki.cert_pem(ca))
    (tmp_path / "server.crt").write_bytes(kubeedge_pki.cert_pem(cert))
    (tmp_path / "server.key").write_bytes(kubeedge_pki.key_pem(key))
    return tmp_path


@pytest.fixture()
def clean(api):
    yield
    from kubernetes.client.rest import ApiException

    try:
        api["core"].delete_namespace(NS)
    except ApiException as exc:
        assert exc.status == 404


def source(api, files, **extra):
    config = {"_path": str(files / "standin.json"), "cert_dir": str(files), "kubeconfig": api["kubeconfig"],
              "poll_seconds": 2, **extra}
    return standin.KubeCertSource(config)


def configmap(api, addresses, dns=(), create=True):
    from kubernetes import client

    conf = {"apiVersion": "cloudcore.config.kubeedge.io/v1alpha2", "kind": "CloudCore",
            "modules": {"cloudHub": {"advertiseAddress": list(addresses), "dnsNames": list(dns)}}}
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cloudcore", namespace=NS),
                              data={"cloudcore.yaml": yaml.safe_dump(conf)})
    if create:
        api["core"].create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
        api["core"].create_namespaced_config_map(NS, body)
    else:
        api["core"].replace_namespaced_config_map("cloudcore", NS, body)


def sans(pem_or_der: bytes) -> set[str]:
    cert = (x509.load_pem_x509_certificate(pem_or_der) if pem_or_der.startswith(b"-----")
            else x509.load_der_x509_certificate(pem_or_der))
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | set(ext.get_values_for_type(x509.DNSName))


def secret(api, name):
    return api["core"].read_namespaced_secret(name, NS)


def test_files_until_there_is_a_configmap(api, files, clean, capsys):
    src = source(api, files)
    material = src.load()
    assert material.cert_pem == (files / "server.crt").read_bytes() and material.ca_body is None
    src.load()
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if "no ConfigMap kubeedge/cloudcore" in line]) == 1, out  # once, not per poll


def test_creates_ca_and_server_secret_like_cloudcore(api, files, clean):
    configmap(api, ["10.213.102.100"], ["cloudcore.lab.example"])
    material = source(api, files).load()
    ca, cert = secret(api, "casecret"), secret(api, "cloudcoresecret")
    assert set(ca.data) == {"cadata", "cakeydata"} and set(cert.data) == {"cloudcoredata", "cloudcorekeydata"}
    ca_der = base64.b64decode(ca.data["cadata"])
    cert_der = base64.b64decode(cert.data["cloudcoredata"])
    assert sans(cert_der) == {"10.213.102.100", "cloudcore.lab.example"}
    parsed = x509.load_der_x509_certificate(cert_der)
    assert parsed.issuer == x509.load_der_x509_certificate(ca_der).subject
    assert parsed.subject.rfc4514_string() == "CN=KubeEdge,O=KubeEdge"
    from cryptography.hazmat.primitives import serialization

    serialization.load_der_private_key(base64.b64decode(cert.data["cloudcorekeydata"]), None)  # SEC 1 DER
    assert material.cert_pem == kubeedge_pki.cert_pem(cert_der)
    assert material.ca_body == ca_der  # /ca.crt answers the CA in DER, as CloudCore's getCA does


def test_racing_nodes_share_one_certificate(api, files, clean, capsys):
    configmap(api, ["10.213.102.100"])
    nodes = [source(api, files) for _ in range(3)]
    # node 2 and 3 "read" the Secrets as missing before node 1 created them: their POSTs get 409
    late = []
    for src in nodes[1:]:
        real_get = src._api().get
        seen = set()

        def get(path, real_get=real_get, seen=seen):
            if path.endswith("/secrets/cloudcoresecret") and path not in seen:
                seen.add(path)
                return None
            return real_get(path)

        src.client.get = get
        late.append(src)
    first = nodes[0].load()
    for src in late:
        assert src.load().cert_pem == first.cert_pem
    out = capsys.readouterr().out
    assert out.count("created Secret kubeedge/cloudcoresecret") == 1, out
    assert out.count("created by another CloudCore meanwhile (409)") >= 2, out


def test_concurrent_first_start(api, files, clean, capsys):
    configmap(api, ["10.213.102.100"])
    nodes = [source(api, files) for _ in range(3)]
    results = [None] * 3
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, nodes[i].load())) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.cert_pem for r in results}) == 1 and len({r.ca_body for r in results}) == 1
    out = capsys.readouterr().out
    assert out.count("created Secret kubeedge/cloudcoresecret") == 1, out
    assert out.count("created Secret kubeedge/casecret") == 1, out


def test_rotation_follows_the_current_configmap(api, files, clean):
    configmap(api, ["10.213.102.100"])
    state = standin.State(source(api, files))
    old = state.material
    assert sans(old.cert_pem) == {"10.213.102.100"}
    assert state.reload() is False  # unchanged: no new TLS context
    configmap(api, ["10.213.102.100", "fd5c:c0e:213::100"], ["cc.example"], create=False)
    assert state.reload() is False  # CloudCore signs only when the Secret is missing
    ca_before = secret(api, "casecret").data["cadata"]
    api["core"].delete_namespaced_secret("cloudcoresecret", NS)
    assert state.reload() is True
    assert sans(state.material.cert_pem) == {"10.213.102.100", "fd5c:c0e:213::100", "cc.example"}
    assert secret(api, "casecret").data["cadata"] == ca_before  # same CA
    # the namespace goes away (reset): back to the lab's files
    api["core"].delete_namespace(NS)
    assert state.reload() is True
    assert state.material.cert_pem == (files / "server.crt").read_bytes()


def test_api_unreachable_keeps_the_certificate(api, files, clean, capsys):
    configmap(api, ["10.213.102.100"])
    src = source(api, files, api_timeout=0.5)
    good = src.load()
    src.client.port = 1  # nothing listens there
    assert src.load() is good and src.load() is good
    src.client.port = int(kubeclient.urllib.parse.urlsplit(src.client.server).port)
    assert src.load().same(good)
    out = capsys.readouterr().out
    assert out.count("Kubernetes API: ") == 2, out  # one line when it breaks, one when it is back


def test_without_kubeconfig_serves_files(files, tmp_path):
    src = standin.KubeCertSource({"_path": str(files / "standin.json"), "cert_dir": str(files),
                                  "kubeconfig": str(tmp_path / "missing")})
    assert src.load().cert_pem == (files / "server.crt").read_bytes()


def test_empty_advertise_address_serves_files(api, files, clean):
    configmap(api, [])
    assert source(api, files).load().cert_pem == (files / "server.crt").read_bytes()
    from kubernetes.client.rest import ApiException

    with pytest.raises(ApiException):
        secret(api, "cloudcoresecret")


def test_yaml_kubeconfig_and_client_errors(api):
    client = kubeclient.KubeClient(api["yaml_kubeconfig"])
    assert client.get("/api/v1/namespaces/nope/configmaps/x") is None
    assert client.get("/api/v1/nodes/ccha-node1")["metadata"]["name"] == "ccha-node1"
    with pytest.raises(kubeclient.KubeError) as err:
        client.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": "Bad_Name"}})
    assert err.value.status == 422
