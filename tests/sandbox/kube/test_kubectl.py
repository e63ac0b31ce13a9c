"""The real kubectl (1.32 on these machines) against the sandbox's kubeconfig."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest
import yaml

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine"),
]

DS = """
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web}}
spec:
  selector:
    matchLabels: {{app: web}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: 1}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      hostNetwork: true
      dnsPolicy: Default
      containers:
        - name: web
          image: {image}
          ports:
            - {{containerPort: {port}, name: http}}
          readinessProbe:
            httpGet: {{path: /, port: {port}}}
"""


@pytest.fixture(scope="module")
def kubectl(sandbox, tmp_path_factory):
    cache = tmp_path_factory.mktemp("kubectl-cache")

    def run(*args: str, input: str | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", f"--kubeconfig={sandbox.kubeconfig_path}", f"--cache-dir={cache}", "--request-timeout=20s", *args]
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    return run


def test_version_and_api_resources(kubectl):
    v = json.loads(kubectl("version", "-o", "json").stdout)
    assert v["serverVersion"]["gitVersion"].endswith("+k3s1")
    res = kubectl("api-resources").stdout
    for name in ("daemonsets", "endpointslices", "ingresses", "leases", "selfsubjectaccessreviews"):
        assert name in res


def test_get_nodes_plain_and_wide(kubectl):
    out = kubectl("get", "nodes").stdout
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert any(ln.startswith("k3s-master-01") and "control-plane,etcd,master" in ln for ln in lines)
    wide = kubectl("get", "nodes", "-o", "wide").stdout
    assert "INTERNAL-IP" in wide and ".10.114" in wide


def test_get_pods_all_namespaces_selectors_and_output_formats(kubectl):
    out = kubectl("get", "pods", "-A").stdout
    assert "ingress-nginx" in out and "kube-system" in out and "Running" in out
    sel = kubectl("get", "pods", "-A", "-l", "app.kubernetes.io/name=ingress-nginx", "-o", "name").stdout.split()
    assert len(sel) == 5
    fs = kubectl("get", "pods", "-A", "--field-selector", "spec.nodeName=k3s-worker-02", "-o", "json").stdout
    assert all(p["spec"]["nodeName"] == "k3s-worker-02" for p in json.loads(fs)["items"])
    y = yaml.safe_load(kubectl("get", "svc", "-n", "ingress-nginx", "ingress-nginx-controller", "-o", "yaml").stdout)
    assert sorted(p["nodePort"] for p in y["spec"]["ports"]) == [31695, 32720]


def test_apply_server_side_rollout_status_history_and_undo(kubectl):
    ns = "kubectl-rollout"
    kubectl("create", "namespace", ns)
    kubectl("apply", "--server-side", "--field-manager=keybuzz-tui", "-f", "-", input=DS.format(ns=ns, image="nginx:1.27", port=18080))
    kubectl("rollout", "status", "daemonset/web", "-n", ns, "--timeout=60s")
    ds = json.loads(kubectl("get", "ds", "web", "-n", ns, "-o", "json").stdout)
    assert ds["status"]["desiredNumberScheduled"] == 5 and ds["status"]["numberAvailable"] == 5
    kubectl("apply", "--server-side", "--field-manager=keybuzz-tui", "-f", "-", input=DS.format(ns=ns, image="nginx:1.28", port=18080))
    out = kubectl("rollout", "status", "daemonset/web", "-n", ns, "--timeout=60s").stdout
    assert 'daemon set "web" successfully rolled out' in out
    hist = kubectl("rollout", "history", "daemonset/web", "-n", ns).stdout
    assert "REVISION" in hist and "1" in hist and "2" in hist
    kubectl("rollout", "undo", "daemonset/web", "-n", ns)
    kubectl("rollout", "status", "daemonset/web", "-n", ns, "--timeout=60s")
    img = kubectl("get", "ds", "web", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout
    assert img == "nginx:1.27"


def test_client_side_apply_and_describe_with_events(kubectl):
    ns = "kubectl-describe"
    kubectl("create", "namespace", ns)
    kubectl("apply", "-f", "-", input=DS.format(ns=ns, image="nginx:1.27", port=18081))
    kubectl("rollout", "status", "daemonset/web", "-n", ns, "--timeout=60s")
    # a second client-side apply with a changed image goes through a 3-way strategic merge patch
    kubectl("apply", "-f", "-", input=DS.format(ns=ns, image="nginx:1.28", port=18081))
    kubectl("rollout", "status", "daemonset/web", "-n", ns, "--timeout=60s")
    d = kubectl("describe", "daemonset", "web", "-n", ns).stdout
    assert "Desired Number of Nodes Scheduled: 5" in d and "SuccessfulCreate" in d
    pod = kubectl("get", "pods", "-n", ns, "--field-selector=status.phase=Running", "-o", "name").stdout.split()[0]
    dp = kubectl("describe", pod, "-n", ns).stdout
    assert re.search(r"^Status:\s+Running$", dp, re.M) and "Pulled" in dp and "Controlled By:  DaemonSet/web" in dp
    dn = kubectl("describe", "node", "k3s-worker-01").stdout
    assert "Ready" in dn and "InternalIP" in dn
    ev = kubectl("get", "events", "-n", ns).stdout
    assert "SuccessfulCreate" in ev


def test_logs_and_delete(kubectl):
    pod = kubectl("get", "pods", "-n", "ingress-nginx", "-o", "name").stdout.split()[0]
    logs = kubectl("logs", "-n", "ingress-nginx", pod).stdout
    assert "NGINX Ingress controller" in logs
    kubectl("create", "configmap", "gone", "-n", "default", "--from-literal=a=b")
    out = kubectl("delete", "configmap", "gone", "-n", "default").stdout
    assert 'configmap "gone" deleted' in out
    r = kubectl("get", "configmap", "gone", "-n", "default", check=False)
    assert r.returncode != 0 and 'configmaps "gone" not found' in r.stderr


def test_delete_namespace_removes_its_content(kubectl):
    kubectl("create", "namespace", "kubectl-ns-delete")
    kubectl("create", "configmap", "x", "-n", "kubectl-ns-delete")
    kubectl("delete", "namespace", "kubectl-ns-delete", "--wait=true", "--timeout=30s")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if kubectl("get", "namespace", "kubectl-ns-delete", check=False).returncode != 0:
            return
        time.sleep(0.2)
    raise AssertionError("namespace still present")
