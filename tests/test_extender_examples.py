"""The deployment examples of docs/how-to/deploy-extender.md parse, and what they configure is
what the extender serves: the verbs kube-scheduler will call are routes that answer, and the
sidecar's arguments are options ``numasched extender`` accepts."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import yaml

from numasched.cli import extender as extender_cli
from numasched.extender import VERBS, Extender

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples" / "extender"
TOPOLOGY = ROOT / "docs" / "examples" / "topology" / "workers.yaml"


def documents(name: str) -> list[dict]:
    return list(yaml.safe_load_all((EXAMPLES / name).read_text()))


def deployment_parts():
    docs = {(d["kind"], d["metadata"]["name"]): d for d in documents("deployment.yaml")}
    config = yaml.safe_load(docs["ConfigMap", "numa-scheduler-config"]["data"]["config.yaml"])
    pod = docs["Deployment", "numa-scheduler"]["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    return docs, config, containers


def test_the_configmap_is_the_standalone_config():
    (config,) = documents("scheduler-config.yaml")
    assert deployment_parts()[1] == config


def test_the_configured_verbs_are_served():
    _, config, containers = deployment_parts()
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["kind"] == "KubeSchedulerConfiguration"
    (ext_config,) = config["extenders"]
    verbs = [ext_config[k] for k in ("filterVerb", "prioritizeVerb", "bindVerb")]
    assert verbs == list(VERBS)
    assert ext_config["nodeCacheCapable"] is True and ext_config["ignorable"] is False
    url = urlparse(ext_config["urlPrefix"])
    # kube-scheduler posts to urlPrefix + "/" + verb; the extender answers each of them
    ext = Extender.from_path(TOPOLOGY)
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u-1"},
           "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}}
    args = json.dumps({"Pod": pod, "NodeNames": ["worker-1"]}).encode()
    for verb in verbs[:2]:
        status, body = ext.handle("POST", f"{url.path}/{verb}", args)
        assert status == 200, body
    bind = {"PodName": "p", "PodNamespace": "default", "PodUID": "u-1", "Node": "worker-1"}
    assert ext.handle("POST", f"{url.path}/{verbs[2]}", json.dumps(bind).encode()) == \
        (200, b'{"Error":""}')
    # the sidecar listens where the config points
    ctx = extender_cli.command.make_context("extender", containers["extender"]["command"][2:])
    assert (ctx.params["host"], ctx.params["port"]) == (url.hostname, url.port)
    assert ctx.params["bind_api_server"] == "in-cluster" and ctx.params["access_log"]
    mounts = {m["mountPath"] for m in containers["extender"]["volumeMounts"]}
    assert ctx.params["topology_path"] in mounts


def test_rbac_allows_what_the_sidecars_do():
    docs, _, _ = deployment_parts()
    rules = docs["ClusterRole", "numa-scheduler-extender"]["rules"]
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    assert ("", "pods/binding", "create") in granted
    assert ("topology.node.k8s.io", "noderesourcetopologies", "list") in granted
    bound = {d["roleRef"]["name"] for (kind, _), d in docs.items() if kind == "ClusterRoleBinding"}
    assert {"system:kube-scheduler", "numa-scheduler-extender"} <= bound
