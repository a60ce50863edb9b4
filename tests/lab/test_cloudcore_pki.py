"""The module cloudcore.ha.cloudcore_pki against the API stand-in, and CloudCore stand-in replicas started
after it: one CA everywhere, and every replica's edge certificates verify against casecret (#5922).

Quick (no lab): the API stand-in on 127.0.0.1, replicas on 127.0.3.x, as in test_standin.py."""
from __future__ import annotations

import base64
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", ".build", "collections"))

from ansible.module_utils import basic  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from ansible_collections.cloudcore.ha.plugins.modules import cloudcore_pki  # noqa: E402
import test_standin  # noqa: E402  pylint: disable=wrong-import-position
from test_standin import (  # noqa: E402  pylint: disable=wrong-import-position
    NS,
    VIP,
    Replicas,
    all_served,
    empty_namespace,
    free_port,
    https,
    install,
    pki,
    secret,
)

# The stand-in's fixtures, used here too: the API stand-in (one per module) and the clean-up after a test.
api = test_standin.api
clean = test_standin.clean


class Exit(Exception):
    def __init__(self, result, failed):
        super().__init__(result)
        self.result, self.failed = result, failed


@pytest.fixture
def run(monkeypatch, api):  # noqa: F811
    """run(check=False, diff=False, **options) -> (failed, result), the module against the API stand-in."""
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", lambda self, **kw: (never for never in ()).throw(Exit(kw, False)))
    monkeypatch.setattr(basic.AnsibleModule, "fail_json",
                        lambda self, msg, **kw: (never for never in ()).throw(Exit(dict(kw, msg=msg), True)))

    def call(check=False, diff=False, **options):
        args = dict({"ips": [VIP], "kubeconfig": api["yaml_kubeconfig"]}, **options,
                    _ansible_check_mode=check, _ansible_diff=diff)
        with patch_module_args(args):
            with pytest.raises(Exit) as exc:
                cloudcore_pki.main()
        return exc.value.failed, exc.value.result

    return call


def namespace(api):  # noqa: F811
    empty_namespace(api)
    api["core"].create_namespace({"metadata": {"name": NS}})


def test_check_real_check_real(api, clean, run):  # noqa: F811
    namespace(api)
    results = [run(check=True, diff=True), run(), run(check=True), run()]
    assert [failed for failed, _result in results] == [False] * 4
    assert [r["changed"] for _failed, r in results] == [True, True, False, False]
    assert results[0][1]["ca"]["created"] and results[0][1]["issued"]
    assert secret(api, "casecret") is not None and secret(api, "cloudcoresecret") is not None
    fingerprints = {r["ca"]["fingerprint_sha256"] for _failed, r in results[1:]}
    assert len(fingerprints) == 1  # check mode's CA was only a plan; the real one stays
    assert results[3][1]["certificate"]["sans"] == {"ip": [VIP], "dns": []}
    text = json.dumps([r for _failed, r in results])
    keys = [base64.b64decode(secret(api, name).data[key]) for name, key in (("casecret", "cakeydata"),
                                                                            ("cloudcoresecret", "cloudcorekeydata"))]
    assert not any(base64.b64encode(key).decode() in text for key in keys), "a key leaked into a result"
    assert "before_header" in text and "fingerprint_sha256" in results[0][1]["diff"][1]["after"]


def test_check_mode_before_the_namespace_exists_writes_nothing(api, clean, run):  # noqa: F811
    empty_namespace(api)
    failed, result = run(check=True)
    assert not failed and result["changed"] and result["issued"]
    assert secret(api, "casecret") is None


def test_a_ca_made_like_keadm_makes_it_is_adopted(api, clean, run):  # noqa: F811
    namespace(api)
    ca_der, ca_key = pki.new_ca()  # CloudCore's (and so keadm's) way: pre_server.go createCAToSecret
    api["core"].create_namespaced_secret(NS, {"metadata": {"name": "casecret"}, "type": "Opaque", "data": {
        "cadata": base64.b64encode(ca_der).decode(), "cakeydata": base64.b64encode(ca_key).decode()}})
    before = secret(api, "casecret").metadata.resource_version
    failed, result = run()
    assert not failed and result["changed"] and not result["ca"]["created"]
    assert secret(api, "casecret").metadata.resource_version == before  # not even rewritten
    served = x509.load_der_x509_certificate(base64.b64decode(secret(api, "cloudcoresecret").data["cloudcoredata"]))
    assert served.issuer == x509.load_der_x509_certificate(ca_der).subject


def test_sans_that_no_longer_cover_fail_until_rotated_and_the_ca_stays(api, clean, run):  # noqa: F811
    namespace(api)
    run()
    ca = secret(api, "casecret").data["cadata"]
    certificate = secret(api, "cloudcoresecret").metadata.resource_version
    failed, result = run(dns_names=["cloudcore.example"])
    assert failed and "is not valid for DNS:cloudcore.example" in result["msg"]
    assert "cloudcore_rotate_cert=true" in result["msg"]
    assert secret(api, "cloudcoresecret").metadata.resource_version == certificate
    failed, result = run(dns_names=["cloudcore.example"], rotate=True)
    assert not failed and result["issued"] and result["certificate"]["sans"]["dns"] == ["cloudcore.example"]
    assert secret(api, "casecret").data["cadata"] == ca


def test_a_damaged_ca_fails_and_is_left_alone(api, clean, run):  # noqa: F811
    namespace(api)
    api["core"].create_namespaced_secret(NS, {"metadata": {"name": "casecret"}, "type": "Opaque",
                                              "data": {"cadata": base64.b64encode(b"truncated").decode()}})
    failed, result = run(rotate=True)
    assert failed and "has no data key cakeydata" in result["msg"] and "never replaced" in result["msg"]
    assert secret(api, "cloudcoresecret") is None


def test_bad_input_is_named(run):
    failed, result = run(ips=["not-an-ip"])
    assert failed and "ips='not-an-ip': must be an IP address" in result["msg"]
    failed, result = run(dns_names=["bad name"])
    assert failed and "dns_names='bad name'" in result["msg"]


def test_replicas_started_after_the_module_serve_one_ca_and_sign_edges_with_it(api, clean, run, tmp_path):  # noqa: F811
    """With the Secrets made first, replicas that start together (delay 0..1 s, the race's best case)
    load the same CA: 5 of 5 trials, every replica's /edge.crt verifies against casecret."""
    port = free_port()
    for trial in range(5):
        empty_namespace(api)
        install(api, port)
        failed, result = run()
        assert not failed, result
        ca_der = base64.b64decode(secret(api, "casecret").data["cadata"])
        ca_cert = x509.load_der_x509_certificate(ca_der)
        with Replicas(api, tmp_path, delay=1) as replicas:
            answers = all_served(replicas, port)
            assert answers, replicas.text()
            assert {ca for ca, _cert in answers.values()} == {ca_der}, trial
            token = base64.b64decode(secret(api, "tokensecret").data["tokendata"]).decode()
            for node, address in replicas.addresses.items():
                csr, _key = pki.new_csr(node)
                code, body, _headers = https(address, port, "/edge.crt", body=csr, headers={
                    "Authorization": "Bearer %s" % pki.real_token(token, ca_der), "NodeName": node})
                assert code == 200, body
                edge = x509.load_der_x509_certificate(body)
                ca_cert.public_key().verify(edge.signature, edge.tbs_certificate_bytes,
                                            ec.ECDSA(edge.signature_hash_algorithm))
