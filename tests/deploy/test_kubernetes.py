"""deploy/kubernetes/: every manifest valid for the newest Kubernetes that kubernetes-validate ships (strict: an
unknown field fails), and the properties a hospital's platform team checks: probes, limits, non-root, read-only
root, no privilege escalation, graceful termination longer than the drain and the audit flush, selectors that
match, configuration from a ConfigMap and Secrets holding placeholders only."""
from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from service.settings import Settings

from ..conftest import ROOT

MANIFESTS = ROOT / "deploy" / "kubernetes"
LABELS = {"app.kubernetes.io/name": "ldn-cds"}


def _docs() -> list[tuple[Path, dict]]:
    return [(path, doc) for path in sorted(MANIFESTS.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def _kind(kind: str) -> list[dict]:
    return [doc for _, doc in _docs() if doc["kind"] == kind]


def test_every_manifest_is_valid_strictly():
    version = kubernetes_validate.latest_version()
    kinds = []
    for path, doc in _docs():
        kubernetes_validate.validate(doc, version, strict=True)      # raises, naming the path, on any error
        kinds.append(doc["kind"])
    assert sorted(kinds) == sorted(["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy",
                                    "PodDisruptionBudget", "Secret", "Secret", "Service"])


def test_strict_validation_catches_a_misspelt_field():
    (deployment,) = _kind("Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def _container() -> dict:
    (deployment,) = _kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_probes_resources_and_hardening():
    (deployment,) = _kind("Deployment")
    pod, c = deployment["spec"]["template"]["spec"], _container()
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and {"cpu", "memory"} <= set(c["resources"]["limits"])
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and pod["automountServiceAccountToken"] is False
    # Writable: only emptyDirs that are mounted, and only /tmp (Prometheus' per-worker files).
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert [m["mountPath"] for m in c["volumeMounts"] if m["name"] in empty] == ["/tmp"]
    assert all(m.get("readOnly") for m in c["volumeMounts"] if m["name"] not in empty)


def test_termination_outlasts_drain_in_flight_and_audit_flush():
    (deployment,) = _kind("Deployment")
    (config,) = _kind("ConfigMap")
    from service.serve import uvicorn_config
    in_flight = uvicorn_config(Settings()).timeout_graceful_shutdown
    needed = float(config["data"]["SHUTDOWN_DRAIN_S"]) + in_flight + float(config["data"]["AUDIT_SHUTDOWN_TIMEOUT_S"])
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > needed


def test_selectors_match_the_pods():
    (deployment,) = _kind("Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"] == LABELS == deployment["spec"]["selector"]["matchLabels"]
    (service,) = _kind("Service")
    (pdb,) = _kind("PodDisruptionBudget")
    (policy,) = _kind("NetworkPolicy")
    assert service["spec"]["selector"] == pdb["spec"]["selector"]["matchLabels"] == LABELS
    assert policy["spec"]["podSelector"]["matchLabels"] == LABELS
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (hpa,) = _kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2 and pdb["spec"]["minAvailable"] >= 1


def test_configuration_is_settings_and_secrets_are_placeholders():
    (config,) = _kind("ConfigMap")
    fields = {name.upper() for name in Settings.model_fields}
    env, files = _kind("Secret")
    assert set(config["data"]) | set(env["stringData"]) <= fields       # no misspelt variable is silently ignored
    assert {"DATABASE_URL", "AUDIT_HMAC_SECRET"} <= set(env["stringData"])
    assert all("REPLACE-ME" in value for value in env["stringData"].values())
    assert set(files["stringData"]) == {"api-keys.yaml", "cds-issuers.yaml"}
    assert yaml.safe_load(files["stringData"]["api-keys.yaml"]) == {"keys": None}         # no key, not even a hash
    settings = Settings(**{k.lower(): v for k, v in config["data"].items()},
                        audit_hmac_secret="x" * 32, database_url="postgresql+psycopg://h/db")
    assert settings.ldn_env == "production" and settings.api_keys_file.parent == Path("/etc/ldn/secrets")
    (c,) = [_container()]
    refs = {next(iter(r.values()))["name"] for r in c["envFrom"]}
    assert refs == {config["metadata"]["name"], env["metadata"]["name"]}
