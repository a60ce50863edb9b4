"""CloudCore stand-in of the cloudcore.ha lab: this node's kubelet for the CloudCore pod, and that CloudCore.

One process lifetime is one CloudCore container: it reads everything at start and nothing again.
At start it decides what it is:

- **kubelet + CloudCore v1.23.1** (``managed``) when Deployment ``kubeedge/cloudcore`` exists: it
  waits for a pod of that Deployment bound to this node (the API stand-in's controllers create and
  schedule them), "mounts" the pod's ConfigMap, reports the container started, runs CloudCore's
  start sequence (cloudcore.py: random delay, tunnel port, ConfigMap rewrite, PrepareAllCerts,
  token, HTTPS on 10002 with the in-memory CA and certificate, the optional CloudHub transport),
  reports the pod Ready once the pod's readiness probe answers (kubelet.py), and ends when the pod
  is deleted or replaced (the unit starts a fresh process = a fresh pod) or when CloudCore exits
  (exit code as upstream; 2 s later the unit restarts it: the kubelet's crash loop, without its
  growing back-off; a replaced pod's successor starts at once). SIGTERM, SIGINT and SIGHUP end it, as they end CloudCore
  (beehive GracefulShutdown).
- **standalone** when no such Deployment exists (keepalived-only scenarios, the namespace removed,
  no kubeconfig, the API unreachable at start): a CloudCore the collection does not manage. It
  serves the lab's file certificate (``ca.crt``, ``server.crt``, ``server.key`` next to
  standin.json; SANs = VIPs, node addresses, loopback) on [::]:``port``: GET/HEAD ``/ca.crt`` ->
  the CA PEM, ``/readyz`` -> 200 (the old stand-in's health endpoint, kept for these scenarios),
  anything else 404. It checks for the Deployment every ``poll_seconds`` and ends when it appears.

Every HTTPS answer carries ``X-Lab-Node: <node>``. One log line (stdout: the journal) per event.

Config: JSON (default /etc/cloudcore-standin/standin.json), every key optional:

    node                     this node's name (default: the hostname)
    kubeconfig               default: "kubeconfig" next to standin.json
    cert_source              "kubernetes" (default: decide as above) or "files" (always standalone)
    cert_dir                 the lab's file certificate (default: next to standin.json)
    port                     standalone HTTPS port (10002)
    poll_seconds             API poll of the kubelet and of standalone mode (1)
    start_delay_max_seconds  CloudCore's random delay before the tunnel port is 0..N s (9 = rand.Int31n(10))
    start_delay_align        test switch: wait for the next whole second first (replicas started together)
    host_ip                  the node address CloudCore finds (ChooseHostInterface; default: the Node's InternalIP)
    listen_address           replaces modules.cloudHub.https.address (loopback tests: several replicas on one host)
    https_port, websocket_port, tunnel_port   replace the ConfigMap's ports
    metrics_address          "HOST:PORT", replaces commonConfig.monitorServer.bindAddress for the CloudHub module
    cloudhub                 start tests/lab/standin/cloudhub.py if importable (true)
    cloudhub_module          the module to import for it ("cloudhub"; tests use a fake)
    api_timeout              seconds per API request (3)

Modes of the command line:

    cloudcore_standin.py [--config standin.json] [--log-prefix P]
        one node (what the unit runs)
    cloudcore_standin.py supervise --config a.json --config b.json ... [--restart-seconds 2] [--duration S]
        several nodes on one host, each a child process restarted like the unit does (loopback
        tests, molecule/kubernetes); SIGTERM ends them all

Standard library + python3-cryptography + python3-yaml (Debian 12 and 13 system Python).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

DEFAULT_CONFIG = "/etc/cloudcore-standin/standin.json"
LOG_PREFIX = ""


def log(msg: str) -> None:
    """One line per event; stdout goes to the journal."""
    print(f"{LOG_PREFIX}{msg}", flush=True)


def load_config(path: str) -> dict:
    config: dict = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    config["_path"] = os.path.abspath(path)
    return config


def config_dir(config: dict) -> str:
    return os.path.dirname(config["_path"])


class Signals:
    """SIGTERM/SIGINT/SIGHUP set ``stop`` (CloudCore shuts down on all three)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.name = ""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame) -> None:
        self.name = signal.Signals(signum).name
        self.stop.set()


# ----------------------------------------------------------------------------------- standalone
class StandaloneHandler:
    """Built lazily (cloudcore.py imports python3-cryptography only where needed)."""

    @staticmethod
    def make():
        from cloudcore import LabHandler

        class Handler(LabHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                path = self.path.split("?", 1)[0]
                if path == "/ca.crt":
                    self.answer(200, self.server.app.ca_pem, "application/x-pem-file")
                elif path == "/readyz":
                    self.answer(200, b"ok")
                else:
                    self.answer(404, b"404 page not found\n")

            do_HEAD = do_GET

        return Handler


class Standalone:
    """The lab's file certificate, for a CloudCore the collection does not manage."""

    def __init__(self, config: dict, node: str):
        self.node = node
        directory = config.get("cert_dir") or config_dir(config)
        with open(os.path.join(directory, "ca.crt"), "rb") as handle:
            self.ca_pem = handle.read()
        with open(os.path.join(directory, "server.crt"), "rb") as handle:
            cert = handle.read()
        with open(os.path.join(directory, "server.key"), "rb") as handle:
            key = handle.read()
        from cloudcore import Server, server_context

        self.server = Server(config.get("listen_address") or "::", int(config.get("port", 10002)),
                             StandaloneHandler.make(), server_context(cert, key), self)
        self.directory = directory

    def run(self, stop: threading.Event, kubelet, poll: float) -> int:
        threading.Thread(target=self.server.serve_forever, name="https", daemon=True).start()
        log(f"cloudcore-standin {self.node}: standalone, serving the lab's file certificate from {self.directory} "
            f"on [::]:{self.server.server_address[1]} (a CloudCore the collection does not manage)")
        unreachable = False
        try:
            while not stop.wait(poll):
                if kubelet is None:
                    continue
                try:
                    found = kubelet.deployment() is not None
                except Exception as exc:  # noqa: BLE001 - KubeError, or a broken kubeconfig: keep serving
                    if not unreachable:
                        log(f"Kubernetes API: {exc}; staying standalone")
                    unreachable = True
                    continue
                if unreachable:
                    log("Kubernetes API: reachable again")
                    unreachable = False
                if found:
                    log(f"Deployment {kubelet.namespace}/{kubelet.deployment_name} appeared: leaving standalone mode "
                        "(the next process is this node's kubelet for it)")
                    return 0
            return 0
        finally:
            self.server.shutdown()
            self.server.server_close()


# ----------------------------------------------------------------------------------- managed
def configmap_volume(pod: dict) -> str:
    """The ConfigMap the pod mounts at /etc/kubeedge/config (the chart's and the collection's layout)."""
    spec = pod.get("spec") or {}
    mounts = {m.get("name"): m.get("mountPath") for c in spec.get("containers") or [] for m in c.get("volumeMounts") or []}
    volumes = [v for v in spec.get("volumes") or [] if v.get("configMap")]
    for volume in volumes:
        if (mounts.get(volume.get("name")) or "").rstrip("/") == "/etc/kubeedge/config":
            return volume["configMap"].get("name", "cloudcore")
    return volumes[0]["configMap"].get("name", "cloudcore") if volumes else ""


class Pod:
    """One pod lifetime on this node: mount, start, probe, watch; returns the process exit code."""

    def __init__(self, config: dict, api, kubelet, node: str, signals: Signals):
        self.config, self.api, self.kubelet, self.node, self.signals = config, api, kubelet, node, signals
        self.poll = float(config.get("poll_seconds", 1))
        self.gone = threading.Event()

    def wait_for_pod(self) -> dict | None:
        """The pod bound to this node; None when the Deployment goes away or a signal comes."""
        from kubeclient import KubeError

        log(f"kubelet {self.node}: Deployment {self.kubelet.namespace}/{self.kubelet.deployment_name} exists; "
            f"waiting for a pod bound to {self.node}")
        failing = False
        while True:
            try:
                deployment = self.kubelet.deployment()
                if deployment is None:
                    log(f"Deployment {self.kubelet.namespace}/{self.kubelet.deployment_name} is gone")
                    return None
                pod = self.kubelet.bound_pod(deployment)
                failing = False
                if pod is not None:
                    return pod
            except KubeError as exc:
                if not failing:
                    log(f"Kubernetes API: {exc}")
                failing = True
            if self.signals.stop.wait(self.poll):
                return None

    def mount(self, pod: dict) -> tuple[bool, str | None]:
        """(mounted, cloudcore.yaml text or None when the key is missing); retried like the kubelet does."""
        from kubeclient import KubeError, namespaced

        name = configmap_volume(pod)
        if not name:
            return True, None
        told = False
        while not self.signals.stop.is_set():
            try:
                cm = self.api.get(namespaced(self.kubelet.namespace, "configmaps", name))
                if cm is not None:
                    return True, (cm.get("data") or {}).get("cloudcore.yaml")
                if self.kubelet.current(pod) is None:
                    return False, None
            except KubeError:
                cm = None
            if not told:
                log(f'MountVolume.SetUp failed for volume "conf" : configmap "{name}" not found (pod '
                    f'{pod["metadata"]["name"]} stays ContainerCreating)')
                told = True
            self.signals.stop.wait(self.poll)
        return False, None

    def watch(self, pod: dict) -> None:
        """Ends the container when the pod is deleted or replaced."""
        from kubeclient import KubeError

        while not self.signals.stop.wait(self.poll):
            try:
                if self.kubelet.current(pod) is None:
                    log(f"pod {pod['metadata']['name']} was deleted or replaced: stopping its container")
                    self.gone.set()
                    self.signals.stop.set()
                    return
            except KubeError:
                pass  # a kubelet that cannot reach the API keeps its containers running

    def run(self) -> int:
        from cloudcore import CloudCore, Exit, Stopped

        pod = self.wait_for_pod()
        if pod is None:
            return 0
        mounted, text = self.mount(pod)
        if not mounted:
            return 0
        pod = self.kubelet.started(pod)
        restarts = pod["status"]["containerStatuses"][0]["restartCount"]
        log(f"pod {pod['metadata']['name']} (uid {pod['metadata']['uid']}) on {self.node}: container cloudcore "
            f"started (restartCount {restarts})")
        threading.Thread(target=self.watch, args=(pod,), name="kubelet-watch", daemon=True).start()
        host_ip = self.config.get("host_ip") or self.kubelet.host_ip() or "127.0.0.1"
        core = CloudCore(self.api, self.node, host_ip, self.config, log, self.signals.stop,
                         namespace=self.kubelet.namespace)
        try:
            core.start(text)
        except Exit as exc:
            log(f"CloudCore exits with code {exc.code}: {exc}")
            core.stop()
            if not self.gone.is_set():
                self.kubelet.exited(pod, exc.code)
            return exc.code
        except Stopped:
            core.stop()
            return self._ended(pod)
        self.probe(pod, core)
        core.stop()
        return self._ended(pod)

    def _ended(self, pod: dict) -> int:
        if not self.gone.is_set():
            log(f"CloudCore stops ({self.signals.name or 'stopped'})")
            self.kubelet.exited(pod, 0)
        return 0

    def probe(self, pod: dict, core) -> None:
        """prober: the pod's readinessProbe (httpGet path/scheme) against this node's CloudCore HTTPS."""
        from kubelet import http_probe, readiness_probe

        spec = readiness_probe(pod)
        http = spec.get("httpGet") or {}
        period = float(spec.get("periodSeconds", 10))
        timeout = float(spec.get("timeoutSeconds", 1))
        failures, successes = int(spec.get("failureThreshold", 3)), int(spec.get("successThreshold", 1))
        ready, ok_run, bad_run = False, 0, 0
        if self.signals.stop.wait(float(spec.get("initialDelaySeconds", 0))):
            return
        while True:
            if not spec:
                passed = True  # no readiness probe: ready once running
            elif core.server is None:
                passed = False
            else:
                host, port = core.https_address
                passed = http_probe(host, port, http.get("path", "/"), http.get("scheme", "HTTP"), timeout)
            ok_run, bad_run = (ok_run + 1, 0) if passed else (0, bad_run + 1)
            if not ready and ok_run >= successes:
                ready = True
                pod = self.kubelet.readiness(pod, True)
                log(f"pod {pod['metadata']['name']}: Ready (readiness probe {http.get('path', '-')} answered)")
            elif ready and bad_run >= failures:
                ready = False
                pod = self.kubelet.readiness(pod, False)
                log(f"pod {pod['metadata']['name']}: not Ready (readiness probe failed {bad_run} times)")
            if self.signals.stop.wait(period if spec else 3600):
                return


# ----------------------------------------------------------------------------------- one node
def run_node(config: dict, signals: Signals) -> int:
    node = config.get("node") or socket.gethostname()
    poll = float(config.get("poll_seconds", 1))
    if config.get("cert_source", "kubernetes") == "files":
        return Standalone(config, node).run(signals.stop, None, poll)
    from kubeclient import KubeClient, KubeError
    from kubelet import Kubelet

    kubeconfig = config.get("kubeconfig") or os.path.join(config_dir(config), "kubeconfig")
    try:
        api = KubeClient(kubeconfig, timeout=float(config.get("api_timeout", 3)))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log(f"no usable kubeconfig ({exc}): standalone")
        return Standalone(config, node).run(signals.stop, None, poll)
    kubelet = Kubelet(api, node, log)
    try:
        deployment = kubelet.deployment()
    except KubeError as exc:
        log(f"Kubernetes API: {exc}; standalone until the Deployment shows")
        deployment = None
    if deployment is None:
        return Standalone(config, node).run(signals.stop, kubelet, poll)
    return Pod(config, api, kubelet, node, signals).run()


# ----------------------------------------------------------------------------------- supervise
def supervise(paths: list[str], restart_seconds: float = 2, duration: float | None = None,
              alive=None, python: str | None = None) -> int:
    """Run one child per config and restart each after it ends, like Restart=always + RestartSec.

    ``alive()`` (optional) is asked every second; False ends everything (molecule: the API is gone).
    """
    python = python or sys.executable
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    children: dict[str, subprocess.Popen | None] = {}
    due = {path: 0.0 for path in paths}
    deadline = time.monotonic() + duration if duration else None

    def spawn(path: str) -> None:
        prefix = (json.loads(open(path, encoding="utf-8").read()).get("node") or os.path.basename(path)) + ": "
        children[path] = subprocess.Popen([python, os.path.abspath(__file__), "--config", path,
                                           "--log-prefix", prefix])

    last_check = 0.0
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            for path in paths:
                child = children.get(path)
                if child is not None and child.poll() is not None:
                    print(f"supervise: {path} exited with {child.returncode}; restarting in {restart_seconds} s",
                          flush=True)
                    children[path] = None
                    due[path] = time.monotonic() + restart_seconds
                if children.get(path) is None and time.monotonic() >= due[path]:
                    spawn(path)
            if alive is not None and time.monotonic() - last_check >= 1:
                last_check = time.monotonic()
                if not alive():
                    break
            stop.wait(0.1)
    finally:
        for child in children.values():
            if child is not None and child.poll() is None:
                child.terminate()
        for child in children.values():
            if child is not None:
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
    return 0


CRASH_RESTART_SECONDS = 2
PROCESS_NAME = b"cloudcore"


def name_process() -> None:
    """Take CloudCore's process name (the image's entrypoint is /usr/local/bin/cloudcore,
    build/cloud/Dockerfile), so that what an installer sees holding the ports (`ss -ltnp`, ps) names
    cloudcore as it would on a real node, not the interpreter."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, PROCESS_NAME, 0, 0, 0)  # PR_SET_NAME: the main thread's comm is the process's name
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    global LOG_PREFIX  # noqa: PLW0603 - one prefix per process
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["supervise"]:
        parser = argparse.ArgumentParser(prog="cloudcore_standin.py supervise")
        parser.add_argument("--config", action="append", required=True)
        parser.add_argument("--restart-seconds", type=float, default=2)
        parser.add_argument("--duration", type=float, default=None)
        args = parser.parse_args(argv[1:])
        return supervise(args.config, args.restart_seconds, args.duration)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--log-prefix", default="")
    args = parser.parse_args(argv)
    LOG_PREFIX = args.log_prefix
    name_process()
    signals = Signals()
    code = run_node(load_config(args.config), signals)
    if code and not signals.stop.is_set():
        # the kubelet's crash loop (without its growing back-off): a CloudCore that exited is started
        # again after CRASH_RESTART_SECONDS; a deleted or replaced pod (exit 0) is replaced at once, as
        # a kubelet starts the new pod's container (the unit's RestartSec is short)
        signals.stop.wait(CRASH_RESTART_SECONDS)
    return code


if __name__ == "__main__":
    sys.exit(main())
