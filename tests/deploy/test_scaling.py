"""Scale-out on k3s, checked offline on the rendered overlays: no shared volume, autoscalers on the app's own
metrics, certificates and Traefik middlewares, a MongoDB replica set, persistent Redis, backups.

The custom resources (KEDA's ScaledObject, cert-manager's ClusterIssuer, Traefik's Middleware) have no schema in
kubernetes-validate, so test_manifests.py validates everything else strictly and these tests check the fields
those controllers require. Overlays are rendered by kubectl kustomize (``tests/support/deploy_tools.py``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from tests.support.deploy_tools import DEPLOY, OVERLAYS, Doc, documents, kustomized, objects, rendered

MONGO_MEMBERS = {"dev": 1, "production": 3}
PROMETHEUS_SERVICE = "prometheus"


def pod_spec(workload: Doc) -> Doc:
    spec = workload["spec"]["jobTemplate"]["spec"] if workload["kind"] == "CronJob" else workload["spec"]
    return spec["template"]["spec"]


def env_of(container: Doc) -> dict[str, str]:
    return {variable["name"]: variable["value"] for variable in container.get("env", []) if "value" in variable}


def catalog_families() -> set[str]:
    """The metric families medchat declares (``medchat.platform.metrics``)."""
    from prometheus_client.metrics import MetricWrapperBase

    from medchat.platform import metrics

    return {
        family.name
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
        for family in metric.describe()
    }


def metric_names(query: str) -> set[str]:
    return set(re.findall(r"\b(medchat_[a-z0-9_]+)\b", query))


def claim_modes(docs: list[Doc]) -> list[tuple[str, list[str]]]:
    """Access modes of every claim: PersistentVolumeClaims and StatefulSets' volumeClaimTemplates."""
    modes = [(name, claim["spec"]["accessModes"]) for name, claim in objects(docs, "PersistentVolumeClaim").items()]
    for statefulset in objects(docs, "StatefulSet").values():
        for template in statefulset["spec"].get("volumeClaimTemplates", []):
            modes.append(
                (f"{statefulset['metadata']['name']}/{template['metadata']['name']}", template["spec"]["accessModes"])
            )
    return modes


# --- no shared volume -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_claim_is_read_write_many_and_medchat_pods_mount_no_claim(overlay: str):
    docs = rendered(overlay)
    modes = claim_modes(docs)
    assert modes, "the stores and backups still have their volumes"
    assert all(access == ["ReadWriteOnce"] for _, access in modes), modes
    for name in ("medchat-web", "medchat-worker"):
        volumes = pod_spec(objects(docs, "Deployment")[name])["volumes"]
        assert not [volume for volume in volumes if "persistentVolumeClaim" in volume], name
    config = next(
        doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("medchat-config")
    )
    assert config["data"]["MEDCHAT_ORIGINALS_STORE"] == "mongodb"


def test_compose_shares_no_uploads_volume():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name in ("web", "worker"):
        assert not compose["services"][name].get("volumes"), name
    assert "medchat-data" not in compose["volumes"]


# --- autoscaling ----------------------------------------------------------------------------------------------


def _prometheus_url(docs: list[Doc], namespace: str) -> str:
    port = objects(docs, "Service")[PROMETHEUS_SERVICE]["spec"]["ports"][0]["port"]
    return f"http://{PROMETHEUS_SERVICE}.{namespace}.svc.cluster.local:{port}"


def test_worker_scales_with_keda_on_the_queue_depth_the_app_exports():
    docs = rendered("production")
    scaler = objects(docs, "ScaledObject")["medchat-worker"]
    assert scaler["apiVersion"] == "keda.sh/v1alpha1"
    target = scaler["spec"]["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment" and target["name"] in objects(docs, "Deployment")
    assert target["name"] == "medchat-worker"
    assert scaler["spec"]["minReplicaCount"] == 1 < scaler["spec"]["maxReplicaCount"]
    assert scaler["spec"]["cooldownPeriod"] >= 60
    [trigger] = scaler["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["serverAddress"] == _prometheus_url(docs, OVERLAYS["production"])
    assert metric_names(trigger["metadata"]["query"]) == {"medchat_queue_depth"}
    assert "medchat_queue_depth" in catalog_families()
    assert float(trigger["metadata"]["threshold"]) > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_worker_leaves_replicas_to_the_autoscaler_and_finishes_its_jobs(overlay: str):
    from medchat.settings import Settings

    docs = rendered(overlay)
    worker = objects(docs, "Deployment")["medchat-worker"]
    assert "replicas" not in worker["spec"], "a fixed count would fight the autoscaler on every apply"
    grace = pod_spec(worker)["terminationGracePeriodSeconds"]
    shutdown = int(env_of(pod_spec(worker)["containers"][0])["MEDCHAT_WORKER_SHUTDOWN_GRACE_SECONDS"])
    assert shutdown == Settings.model_fields["worker_shutdown_grace_seconds"].default
    assert grace >= shutdown + 20, "running jobs finish, then the stores close, before the kill"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_deployment_has_at_most_one_autoscaler(overlay: str):
    docs = rendered(overlay)
    targets = [hpa["spec"]["scaleTargetRef"]["name"] for hpa in objects(docs, "HorizontalPodAutoscaler").values()]
    targets += [scaler["spec"]["scaleTargetRef"]["name"] for scaler in objects(docs, "ScaledObject").values()]
    assert len(targets) == len(set(targets)), targets
    assert set(targets) <= set(objects(docs, "Deployment"))


def test_web_scales_on_cpu_and_on_streams_in_flight():
    docs = rendered("production")
    scaler = objects(docs, "ScaledObject")["medchat-web"]
    assert scaler["spec"]["scaleTargetRef"]["name"] == "medchat-web"
    triggers = {trigger["type"]: trigger for trigger in scaler["spec"]["triggers"]}
    assert set(triggers) == {"cpu", "prometheus"}
    assert triggers["cpu"]["metricType"] == "Utilization" and 0 < int(triggers["cpu"]["metadata"]["value"]) <= 100
    prometheus = triggers["prometheus"]["metadata"]
    assert prometheus["serverAddress"] == _prometheus_url(docs, OVERLAYS["production"])
    assert metric_names(prometheus["query"]) == {"medchat_streams_in_flight"}
    assert "medchat_streams_in_flight" in catalog_families()
    assert not objects(docs, "HorizontalPodAutoscaler"), "KEDA makes the HPAs; the base one is removed"


def test_keda_may_query_prometheus_through_its_network_policy():
    docs = rendered("production")
    policy = objects(docs, "NetworkPolicy")["prometheus-from-keda"]
    [rule] = policy["spec"]["ingress"]
    assert [port["port"] for port in rule["ports"]] == [9090]
    assert rule["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "keda"}


def test_plain_hpa_fallback_renders_on_the_same_metrics(tmp_path: Path):
    """deploy/components/autoscaling-hpa on the base: HPAs an operator without KEDA can choose, fed by the
    prometheus-adapter rules shipped beside them."""
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(DEPLOY / "base", tmp_path)],  # kustomize wants relative paths
                "components": [os.path.relpath(DEPLOY / "components" / "autoscaling-hpa", tmp_path)],
            }
        )
    )
    docs = documents(kustomized(tmp_path))
    hpas = objects(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {"medchat-web", "medchat-worker"}
    web_metrics = {metric["type"]: metric for metric in hpas["medchat-web"]["spec"]["metrics"]}
    assert web_metrics["Resource"]["resource"]["name"] == "cpu"
    assert web_metrics["External"]["external"]["metric"]["name"] == "medchat_streams_in_flight"
    [worker_metric] = hpas["medchat-worker"]["spec"]["metrics"]
    assert worker_metric["external"]["metric"]["name"] == "medchat_queue_depth"
    values = yaml.safe_load((DEPLOY / "components" / "autoscaling-hpa" / "prometheus-adapter-values.yaml").read_text())
    served = {rule["name"]["as"] for rule in values["rules"]["external"]}
    assert served == {"medchat_queue_depth", "medchat_streams_in_flight"} <= catalog_families()
    for rule in values["rules"]["external"]:
        assert metric_names(rule["seriesQuery"]) <= catalog_families()


# --- certificates and Traefik ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_gets_its_certificate_from_a_cluster_issuer_and_uses_the_middlewares(overlay: str):
    docs = rendered(overlay)
    namespace = OVERLAYS[overlay]
    issuers, middlewares = objects(docs, "ClusterIssuer"), objects(docs, "Middleware")
    ingresses = objects(docs, "Ingress")
    https, http = ingresses["medchat"], ingresses["medchat-http"]
    annotations = https["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"] in issuers
    assert annotations["traefik.ingress.kubernetes.io/router.entrypoints"] == "websecure"
    [tls] = https["spec"]["tls"]
    assert tls["secretName"] and tls["hosts"] == [https["spec"]["rules"][0]["host"]]
    assert http["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.entrypoints"] == "web"
    assert http["spec"]["rules"][0]["host"] == https["spec"]["rules"][0]["host"]
    used = {}
    for ingress in (https, http):
        for reference in ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"].split(
            ","
        ):
            match = re.fullmatch(rf"{namespace}-(.+)@kubernetescrd", reference.strip())
            assert match and match.group(1) in middlewares, reference
            used[ingress["metadata"]["name"]] = middlewares[match.group(1)]["spec"]
    assert used["medchat"]["headers"]["stsSeconds"] == 31536000
    assert used["medchat"]["headers"]["stsIncludeSubdomains"] is True
    assert used["medchat"]["headers"].get("stsPreload", False) is False
    assert used["medchat-http"]["redirectScheme"] == {"scheme": "https", "permanent": True}
    config = next(
        doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("medchat-config")
    )
    assert config["data"]["MEDCHAT_PUBLIC_URL"] == f"https://{https['spec']['rules'][0]['host']}"


def test_cluster_issuers_have_what_cert_manager_requires():
    [production] = objects(rendered("production"), "ClusterIssuer").values()
    assert production["apiVersion"] == "cert-manager.io/v1"
    assert "namespace" not in production["metadata"], "cluster-scoped: kustomize must not give it a namespace"
    acme = production["spec"]["acme"]
    assert acme["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert re.fullmatch(r"[^@\s]+@[^@\s]+", acme["email"])
    assert acme["privateKeySecretRef"]["name"]
    [solver] = acme["solvers"]
    assert solver["http01"]["ingress"]["ingressClassName"] == "traefik"
    [development] = objects(rendered("dev"), "ClusterIssuer").values()
    assert development["spec"] == {"selfSigned": {}}
    assert "namespace" not in development["metadata"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_are_only_the_known_ones_with_their_api_versions(overlay: str):
    versions = {
        "ScaledObject": "keda.sh/v1alpha1",
        "ClusterIssuer": "cert-manager.io/v1",
        "Middleware": "traefik.io/v1alpha1",
    }
    for doc in rendered(overlay):
        if doc["kind"] in versions:
            assert doc["apiVersion"] == versions[doc["kind"]], doc["metadata"]["name"]
            assert doc["metadata"]["name"] and isinstance(doc["spec"], dict)
        else:
            group = doc["apiVersion"].rpartition("/")[0]
            assert "." not in group or group.endswith(".k8s.io"), f"{doc['kind']}: a custom resource nobody checks"


# --- stores ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mongodb_is_a_replica_set_with_an_idempotent_init_job(overlay: str):
    docs = rendered(overlay)
    statefulset = objects(docs, "StatefulSet")["medchat-mongodb"]
    assert statefulset["spec"]["replicas"] == MONGO_MEMBERS[overlay]
    [mongod] = pod_spec(statefulset)["containers"]
    args = mongod["args"]
    assert args[args.index("--replSet") + 1] == "rs0"
    keyfile = args[args.index("--keyFile") + 1]
    assert any(keyfile.startswith(mount["mountPath"] + "/") for mount in mongod["volumeMounts"])
    service = objects(docs, "Service")[statefulset["spec"]["serviceName"]]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    job = objects(docs, "Job")["medchat-mongodb-init"]
    [init] = pod_spec(job)["containers"]
    assert int(env_of(init)["MONGO_MEMBERS"]) == MONGO_MEMBERS[overlay]
    script = init["command"][-1]
    assert "rs.initiate" in script and "NotYetInitialized" in script, "initiates once, then only adds members"
    assert job["spec"]["ttlSecondsAfterFinished"] > 0, "re-created, so re-run, by the next apply"


def test_the_app_connects_to_the_replica_set():
    text = (DEPLOY / "secrets.sh").read_text()
    [uri] = re.findall(r'MEDCHAT_MONGODB_URI="([^"]+)"', text)
    assert "replicaSet=rs0" in uri
    assert "MONGO_KEYFILE=" in text


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_persists_its_queue(overlay: str):
    statefulset = objects(rendered(overlay), "StatefulSet")["medchat-redis"]
    [redis] = pod_spec(statefulset)["containers"]
    command = " ".join(redis["args"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command
    data_dir = re.search(r"--dir (\S+)", command).group(1)
    [mount] = [mount for mount in redis["volumeMounts"] if mount["mountPath"] == data_dir]
    [template] = [
        claim for claim in statefulset["spec"]["volumeClaimTemplates"] if claim["metadata"]["name"] == mount["name"]
    ]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_backups_run_nightly_onto_their_own_volumes_with_retention(overlay: str):
    docs = rendered(overlay)
    cronjobs = objects(docs, "CronJob")
    claims = objects(docs, "PersistentVolumeClaim")
    scripts = {}
    for name in ("medchat-mongodb-backup", "medchat-qdrant-backup"):
        cronjob = cronjobs[name]
        assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
        spec = pod_spec(cronjob)
        [container] = spec["containers"]
        assert int(env_of(container)["BACKUP_RETENTION_DAYS"]) > 0
        [backups] = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/backups"]
        [volume] = [volume for volume in spec["volumes"] if volume["name"] == backups["name"]]
        assert claims[volume["persistentVolumeClaim"]["claimName"]]["spec"]["accessModes"] == ["ReadWriteOnce"]
        scripts[name] = container["args"][-1]
        assert '-mtime +"$BACKUP_RETENTION_DAYS" -delete' in scripts[name]
    assert "mongodump" in scripts["medchat-mongodb-backup"]
    assert "--archive" in scripts["medchat-mongodb-backup"] and "--gzip" in scripts["medchat-mongodb-backup"]
    assert (
        "-X POST" in scripts["medchat-qdrant-backup"]
        and "/collections/$QDRANT_COLLECTION/snapshots" in (scripts["medchat-qdrant-backup"])
    )
    qdrant = pod_spec(cronjobs["medchat-qdrant-backup"])["containers"][0]
    config = next(
        doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("medchat-config")
    )
    assert env_of(qdrant)["QDRANT_COLLECTION"] == config["data"]["MEDCHAT_QDRANT_COLLECTION"]
    assert env_of(qdrant)["QDRANT_URL"] == config["data"]["MEDCHAT_QDRANT_URL"]
