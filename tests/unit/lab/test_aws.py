"""The AWS fake through real boto3 clients: ECR scan findings, EBS volumes and snapshots."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lab.aws import server as aws_server
from lab.httpserver import LabServer
from lab.kube import naming, volumes
from lab.scenario import loader

NOW = datetime(2024, 5, 15, 6, 0, tzinfo=UTC)
GATEWAY = "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/gateway:1.14.2"
SCENARIO = f"""
name: aws
cluster:
  nodes:
    - {{name: gpu-a, instance_type: p4d.24xlarge, zone: ap-northeast-2c}}
  workloads:
    - name: llama-2-7b
      containers: [{{name: vllm, image: vllm/vllm-openai:v0.11.0}}]
      volumes: [{{name: cache, persistentVolumeClaim: {{claimName: model-cache-pvc}}}}]
  pvcs:
    - {{name: model-cache-pvc, namespace: inference, size: 200Gi}}
    - {{name: scratch, namespace: batch, size: 1Ti, storage_class: gp2}}
    - {{name: waiting, namespace: inference, phase: Pending}}
aws:
  image_scans:
    - {{image: "{GATEWAY}", critical: 1, high: 4, medium: 9}}
    - {{image: 123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/team/vllm:0.11.0, high: 2}}
  snapshots:
    - {{pvc: inference/model-cache-pvc, at: -30h}}
    - {{pvc: inference/model-cache-pvc, at: -54h}}
    - {{pvc: batch/scratch, at: -2h}}
"""
CACHE_VOLUME = volumes.volume_id_for("inference", "model-cache-pvc")


@pytest.fixture(scope="module")
def server() -> Iterator[LabServer]:
    with aws_server.start_aws(loader.load_text(SCENARIO), now=NOW) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_local_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Whatever ~/.aws holds must not reach these clients."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))


def _client(service: str, server: LabServer) -> Any:
    return boto3.client(
        service,
        region_name="ap-northeast-2",
        endpoint_url=server.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_scan_findings_carry_the_scenario_counts(server: LabServer) -> None:
    ecr = _client("ecr", server)
    answer = ecr.describe_image_scan_findings(
        repositoryName="gateway", imageId={"imageTag": "1.14.2"}
    )
    assert answer["imageScanStatus"]["status"] == "COMPLETE"
    assert answer["registryId"] == "123456789012"
    findings = answer["imageScanFindings"]
    assert findings["findingSeverityCounts"] == {"CRITICAL": 1, "HIGH": 4, "MEDIUM": 9}
    listed = findings["findings"]
    assert [f["severity"] for f in listed] == ["CRITICAL"] + ["HIGH"] * 4 + ["MEDIUM"] * 9
    assert all(f["name"].startswith("CVE-") and f["uri"].endswith(f["name"]) for f in listed)
    assert len({f["name"] for f in listed}) == 14


def test_findings_page_through_the_sdk_paginator(server: LabServer) -> None:
    ecr = _client("ecr", server)
    pages = ecr.get_paginator("describe_image_scan_findings").paginate(
        repositoryName="gateway",
        imageId={"imageTag": "1.14.2"},
        PaginationConfig={"PageSize": 5},
    )
    assert len(pages.build_full_result()["imageScanFindings"]["findings"]) == 14


def test_images_list_digest_tags_and_a_summary_without_zero_counts(server: LabServer) -> None:
    ecr = _client("ecr", server)
    [image] = ecr.describe_images(repositoryName="team/vllm")["imageDetails"]
    assert image["imageTags"] == ["0.11.0"]
    assert image["imageScanStatus"]["status"] == "COMPLETE"
    # ECR lists only the severities found.
    assert image["imageScanFindingsSummary"]["findingSeverityCounts"] == {"HIGH": 2}
    # The digest is the one the Kubernetes fake reports as a pod's imageID for this image.
    reference = "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/team/vllm:0.11.0"
    assert image["imageDigest"] == naming.image_id(reference).split("@", 1)[1]
    by_digest = ecr.describe_image_scan_findings(
        repositoryName="team/vllm", imageId={"imageDigest": image["imageDigest"]}
    )
    assert by_digest["imageScanFindings"]["findingSeverityCounts"] == {"HIGH": 2}


def test_repositories_are_the_paths_after_the_registry_host(server: LabServer) -> None:
    ecr = _client("ecr", server)
    repos = ecr.describe_repositories()["repositories"]
    assert [r["repositoryName"] for r in repos] == ["gateway", "team/vllm"]
    assert repos[0]["repositoryUri"] == GATEWAY.rsplit(":", 1)[0]


def test_an_unknown_repository_is_repository_not_found(server: LabServer) -> None:
    ecr = _client("ecr", server)
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException) as caught:
        ecr.describe_images(repositoryName="nope")
    assert "'nope' does not exist" in str(caught.value)


def test_an_unknown_tag_is_image_not_found(server: LabServer) -> None:
    ecr = _client("ecr", server)
    with pytest.raises(ecr.exceptions.ImageNotFoundException):
        ecr.describe_image_scan_findings(repositoryName="gateway", imageId={"imageTag": "9.9"})


def test_snapshots_by_volume_id_start_at_now_minus_at(server: LabServer) -> None:
    ec2 = _client("ec2", server)
    snaps = ec2.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": [CACHE_VOLUME]}]
    )["Snapshots"]
    assert [s["StartTime"] for s in snaps] == [NOW - timedelta(hours=30), NOW - timedelta(hours=54)]
    assert {(s["VolumeId"], s["State"], s["Progress"], s["VolumeSize"]) for s in snaps} == {
        (CACHE_VOLUME, "completed", "100%", 200)
    }
    assert all(s["SnapshotId"].startswith("snap-0") for s in snaps)


def test_snapshots_by_owner(server: LabServer) -> None:
    ec2 = _client("ec2", server)
    mine = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert len(mine) == 3
    assert ec2.describe_snapshots(OwnerIds=["123456789012"])["Snapshots"] == mine
    assert ec2.describe_snapshots(OwnerIds=["amazon"])["Snapshots"] == []
    scratch = volumes.volume_id_for("batch", "scratch")
    [recent] = [s for s in mine if s["VolumeId"] == scratch]
    assert recent["StartTime"] == NOW - timedelta(hours=2)
    assert recent["VolumeSize"] == 1024


def test_volumes_carry_the_ebs_csi_pvc_tags(server: LabServer) -> None:
    ec2 = _client("ec2", server)
    [volume] = ec2.describe_volumes(
        Filters=[
            {"Name": "tag:kubernetes.io/created-for/pvc/namespace", "Values": ["inference"]},
            {"Name": "tag:kubernetes.io/created-for/pvc/name", "Values": ["model-cache-*"]},
        ]
    )["Volumes"]
    assert volume["VolumeId"] == CACHE_VOLUME
    tags = {t["Key"]: t["Value"] for t in volume["Tags"]}
    assert tags["kubernetes.io/created-for/pvc/name"] == "model-cache-pvc"
    assert tags["kubernetes.io/created-for/pv/name"] == volumes.volume_name(
        "inference", "model-cache-pvc"
    )
    assert (volume["Size"], volume["VolumeType"], volume["State"]) == (200, "gp3", "in-use")
    # In the zone of the pod that mounts it, attached to that node.
    assert volume["AvailabilityZone"] == "ap-northeast-2c"
    assert volume["Attachments"][0]["InstanceId"] == naming.instance_id("gpu-a")


def test_volumes_by_id_and_only_for_bound_claims(server: LabServer) -> None:
    ec2 = _client("ec2", server)
    everything = ec2.describe_volumes()["Volumes"]
    assert len(everything) == 2  # the Pending claim has no volume
    [one] = ec2.describe_volumes(VolumeIds=[CACHE_VOLUME])["Volumes"]
    assert one["VolumeId"] == CACHE_VOLUME
    with pytest.raises(ClientError) as caught:
        ec2.describe_volumes(VolumeIds=["vol-0000000000000000f"])
    assert caught.value.response["Error"]["Code"] == "InvalidVolume.NotFound"


def test_an_unknown_filter_is_rejected(server: LabServer) -> None:
    ec2 = _client("ec2", server)
    with pytest.raises(ClientError) as caught:
        ec2.describe_snapshots(Filters=[{"Name": "colour", "Values": ["blue"]}])
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_plain_clients_find_the_lab_through_the_endpoint_variables(
    server: LabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", server.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    server.clear()
    ecr = boto3.client("ecr")
    [image] = ecr.describe_images(repositoryName="gateway")["imageDetails"]
    assert image["imageScanFindingsSummary"]["findingSeverityCounts"]["CRITICAL"] == 1
    assert len(boto3.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 3
    ecr_call, ec2_call = server.calls("POST")
    assert ecr_call.header("x-amz-target").endswith(".DescribeImages")
    assert b"Action=DescribeSnapshots" in ec2_call.body
