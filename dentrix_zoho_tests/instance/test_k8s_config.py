"""deploy/k8s: as far as a machine without a cluster can check it.

- the instance file loads as shipped against a real PostgreSQL (the pooled storages, queue limits), and its run
  launcher is Dagster's K8sRunLauncher configured for in-cluster credentials;
- the launcher's own config is accepted by dagster-k8s (only the credentials swapped for a
  kubeconfig that points nowhere, since there is no cluster), and the Kubernetes Job it would submit
  for an office's run is built and checked: namespace, service account, PostgreSQL password from
  its Secret, settings and secrets by name only, the shared working volume,
  resources, no Kubernetes-side retries;
- the Helm values file says the same as the instance file.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import ConfigurableClassData
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import construct_dagster_k8s_job, get_job_name_from_run_id
from kubernetes.config.config_exception import ConfigException

from dentrix_zoho.defs.pg_pool import (
    PooledPostgresEventLogStorage,
    PooledPostgresRunStorage,
    PooledPostgresScheduleStorage,
)
from dentrix_zoho_tests.instance.conftest import K8S_DIR
from dentrix_zoho_tests.instance.queue_defs import OFFICE_TAG

K8S_YAML = K8S_DIR / "dagster.yaml"
VALUES_YAML = K8S_DIR / "values.yaml"
IMAGE = "registry.example.org/dentrix-zoho:0.1.0"


def _k8s_config() -> dict[str, Any]:
    return yaml.safe_load(K8S_YAML.read_text())


@pytest.fixture
def k8s_home(tmp_path: Path, pg_env: dict[str, str]) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(K8S_YAML, home / "dagster.yaml")
    return home


@pytest.fixture
def launcher(tmp_path: Path) -> K8sRunLauncher:
    """The shipped launcher config through Dagster's config system, credentials from a kubeconfig
    that names an address where nothing listens (building a Job never calls the API)."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "none", "user": {"token": "unused"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        )
    )
    section = _k8s_config()["run_launcher"]
    config = {**section["config"], "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    data = ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(config))
    built = data.rehydrate(K8sRunLauncher)
    assert isinstance(built, K8sRunLauncher)
    return built


def test_the_instance_loads_on_postgresql_with_the_office_queue_and_an_in_cluster_launcher(k8s_home: Path) -> None:
    with dg.DagsterInstance.from_config(str(k8s_home)) as instance:
        # The pooled storages (dentrix_zoho/defs/pg_pool.py), as in deploy/local/dagster.yaml.
        assert type(instance.run_storage) is PooledPostgresRunStorage
        assert type(instance.event_log_storage) is PooledPostgresEventLogStorage
        assert type(instance.schedule_storage) is PooledPostgresScheduleStorage
        instance.get_runs()  # the tables exist and answer
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 20
        assert {limit["key"]: limit["limit"] for limit in queue.tag_concurrency_limits} == {
            OFFICE_TAG: 1,
            "dagster/partition": 1,
        }
        assert all(limit["value"] == {"applyLimitPerUniqueValue": True} for limit in queue.tag_concurrency_limits)
        assert instance.run_monitoring_enabled and instance.run_retries_max_retries == 2
        # Outside a cluster the launcher stops exactly where it reads the in-cluster service account.
        with pytest.raises(ConfigException, match="[Ss]ervice host/port"):
            instance.run_launcher  # noqa: B018


def test_the_job_for_an_office_run_is_what_the_platform_team_provisions(launcher: K8sRunLauncher) -> None:
    run = DagsterRun(job_name="full_migration", run_id=str(uuid.uuid4()), tags={OFFICE_TAG: "north-12"})
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
    assert context.namespace == "dentrix-zoho"
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image=IMAGE, run_launcher=launcher),
        args=["dagster", "api", "execute_run", "{}"],
        job_name=get_job_name_from_run_id(run.run_id),
        user_defined_k8s_config=context.run_k8s_config,
        component="run_worker",
        labels={"dagster/run-id": run.run_id},
    ).to_dict()

    assert job["spec"]["backoff_limit"] == 0 and job["spec"]["ttl_seconds_after_finished"] == 86400
    pod = job["spec"]["template"]["spec"]
    assert pod["service_account_name"] == "dentrix-zoho-run"
    (container,) = pod["containers"]
    assert container["image"] == IMAGE and container["image_pull_policy"] == "IfNotPresent"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert container["resources"]["limits"] == {"memory": "6Gi"}

    env = {item["name"]: item for item in container["env"]}
    assert env["DAGSTER_HOME"]["value"] == "/opt/dagster/dagster_home"
    password = env["DAGSTER_PG_PASSWORD"]["value_from"]["secret_key_ref"]
    assert (password["name"], password["key"]) == ("dagster-postgresql-secret", "postgresql-password")
    env_from = {(source.get("config_map_ref") or source.get("secret_ref"))["name"] for source in container["env_from"]}
    assert env_from == {"dentrix-zoho-settings", "dentrix-zoho-secrets"}

    mounts = {mount["name"]: mount["mount_path"] for mount in container["volume_mounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert mounts["dentrix-zoho-home"] == "/var/lib/dentrix-zoho"
    assert volumes["dentrix-zoho-home"]["persistent_volume_claim"]["claim_name"] == "dentrix-zoho-home"
    # Nothing else is mounted: the launcher hands the pod the instance settings in its command,
    # and the pod resolves their {env: ...} values from the ConfigMap and Secrets above.
    assert set(mounts) == set(volumes) == {"dentrix-zoho-home"}
    assert job["metadata"]["labels"]["app.kubernetes.io/part-of"] == "dentrix-zoho"


def test_the_helm_values_say_what_the_instance_file_says() -> None:
    instance = _k8s_config()
    values = yaml.safe_load(VALUES_YAML.read_text())
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queue["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert queue["tagConcurrencyLimits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]

    helm = values["runLauncher"]["config"]["k8sRunLauncher"]
    ours = instance["run_launcher"]["config"]
    assert values["runLauncher"]["type"] == instance["run_launcher"]["class"] == "K8sRunLauncher"
    assert helm["jobNamespace"] == ours["job_namespace"]
    assert helm["loadInclusterConfig"] == ours["load_incluster_config"]
    assert helm["imagePullPolicy"] == ours["image_pull_policy"]
    assert [item["name"] for item in helm["envConfigMaps"]] == ours["env_config_maps"]
    assert [item["name"] for item in helm["envSecrets"]] == ours["env_secrets"]
    assert [(m["name"], m["mountPath"]) for m in helm["volumeMounts"]] == [
        (m["name"], m["mount_path"]) for m in ours["volume_mounts"]
    ]
    assert [(v["name"], v["persistentVolumeClaim"]["claimName"]) for v in helm["volumes"]] == [
        (v["name"], v["persistent_volume_claim"]["claim_name"]) for v in ours["volumes"]
    ]
    assert helm["labels"] == ours["labels"] and helm["resources"] == ours["resources"]
    assert helm["failPodOnRunFailure"] == ours["fail_pod_on_run_failure"]
    spec = helm["runK8sConfig"]["jobSpecConfig"]
    assert (spec["backoffLimit"], spec["ttlSecondsAfterFinished"]) == (
        ours["run_k8s_config"]["job_spec_config"]["backoff_limit"],
        ours["run_k8s_config"]["job_spec_config"]["ttl_seconds_after_finished"],
    )
    assert values["global"]["postgresqlSecretName"] == ours["postgres_password_secret"]
    assert values["global"]["serviceAccountName"] == ours["service_account_name"]
    assert values["postgresql"]["enabled"] is False  # the group's own server, as in the instance file
    # The chart renders dagster-postgres' own storage classes (it has no key for others), on the same driver.
    assert values["postgresql"]["postgresqlScheme"] == instance["run_storage"]["config"]["postgres_db"]["scheme"]

    daemon = values["dagsterDaemon"]
    assert daemon["runMonitoring"]["startTimeoutSeconds"] == instance["run_monitoring"]["start_timeout_seconds"]
    assert daemon["runRetries"]["maxRetries"] == instance["run_retries"]["max_retries"]
    assert daemon["runRetries"]["retryOnAssetOrOpFailure"] == instance["run_retries"]["retry_on_asset_or_op_failure"]
