"""ECR over its JSON 1.1 protocol: repositories, images and basic-scan findings.

Each ``aws.image_scans`` entry is one image: ``<registry>/<repository>:<tag>`` (or
``@sha256:<digest>``). The repository is the path after the registry host (the whole reference
when it has no host); an ECR host (``<account>.dkr.ecr.<region>.amazonaws.com``) gives the
registry id and region. A tagged image's digest is the one the Kubernetes fake reports as the
pod's ``imageID`` (``naming.image_id``), so the bot can join the two. Findings are generated
deterministically: ``critical`` CRITICAL, ``high`` HIGH and ``medium`` MEDIUM CVEs.
``findingSeverityCounts`` lists only the severities present, as ECR does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lab.aws import account
from lab.httpserver import Response
from lab.kube import naming
from lab.scenario import models

TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921"
CONTENT_TYPE = "application/x-amz-json-1.1"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM")
_ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_PACKAGES = ("openssl", "glibc", "zlib", "curl", "libxml2", "expat", "sqlite", "krb5", "pcre2")
_SCORES = {"CRITICAL": (9.0, 10.0), "HIGH": (7.0, 8.9), "MEDIUM": (4.0, 6.9)}
_PUSHED_AGO = timedelta(days=14)


class EcrError(Exception):
    """An ECR error: ``__type`` and message as the service words them."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def parse_reference(image: str) -> tuple[str | None, str, str | None, str | None]:
    """``host/repo:tag`` or ``host/repo@sha256:…`` as (host, repository, tag, digest)."""
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    has_host = bool(rest) and ("." in first or ":" in first or first == "localhost")
    host, path = (first, rest) if has_host else (None, name)
    last = path.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else None
    if tag is not None:
        path = path[: len(path) - len(tag) - 1]
    if tag is None and not digest:
        tag = "latest"
    return host, path, tag, digest or None


@dataclass
class Image:
    registry_id: str
    region: str
    repository: str
    digest: str
    tags: list[str]
    counts: dict[str, int]
    pushed_at: datetime
    size: int

    @property
    def scanned_at(self) -> datetime:
        return self.pushed_at + timedelta(seconds=90)

    def identifier(self, tag: str | None = None) -> dict[str, str]:
        ident = {"imageDigest": self.digest}
        if tag or self.tags:
            ident["imageTag"] = tag or self.tags[0]
        return ident

    def severity_counts(self) -> dict[str, int]:
        return {s: n for s, n in self.counts.items() if n}

    def findings(self) -> list[dict[str, Any]]:
        out = []
        for severity in SEVERITIES:
            for i in range(self.counts[severity]):
                d = naming.digest("finding", self.digest, severity, str(i))
                cve = f"CVE-{2019 + d[0] % 6}-{1000 + int.from_bytes(d[1:4]) % 49000}"
                package = _PACKAGES[d[4] % len(_PACKAGES)]
                low, high = _SCORES[severity]
                score = round(low + (high - low) * d[5] / 255, 1)
                version = f"{d[6] % 4}.{d[7] % 20}.{d[8] % 10}"
                out.append(
                    {
                        "name": cve,
                        "description": f"A flaw in {package} {version} ({severity.lower()}).",
                        "uri": f"https://nvd.nist.gov/vuln/detail/{cve}",
                        "severity": severity,
                        "attributes": [
                            {"key": "package_version", "value": version},
                            {"key": "package_name", "value": package},
                            {"key": "CVSS3_SCORE", "value": str(score)},
                        ],
                    }
                )
        return out


@dataclass
class Repository:
    registry_id: str
    region: str
    name: str
    images: list[Image] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"{self.registry_id}.dkr.ecr.{self.region}.amazonaws.com/{self.name}"

    def describe(self, now: datetime) -> dict[str, Any]:
        return {
            "repositoryArn": f"arn:aws:ecr:{self.region}:{self.registry_id}:repository/{self.name}",
            "registryId": self.registry_id,
            "repositoryName": self.name,
            "repositoryUri": self.uri,
            "createdAt": account.epoch(now - timedelta(days=180)),
            "imageTagMutability": "MUTABLE",
            "imageScanningConfiguration": {"scanOnPush": True},
            "encryptionConfiguration": {"encryptionType": "AES256"},
        }

    def find(self, ident: dict[str, str]) -> Image:
        tag, digest = ident.get("imageTag"), ident.get("imageDigest")
        for image in self.images:
            if (tag is None or tag in image.tags) and (digest is None or digest == image.digest):
                return image
        shown = f"{{imageDigest:'{digest or 'null'}', imageTag:'{tag or 'null'}'}}"
        raise EcrError(
            "ImageNotFoundException",
            f"The image with imageId {shown} does not exist within the repository with name "
            f"'{self.name}' in the registry with id '{self.registry_id}'",
        )


def build(scans: list[models.ImageScan], *, now: datetime, region: str) -> list[Repository]:
    """The repositories (in first-seen order) holding the scanned images."""
    repos: dict[tuple[str, str], Repository] = {}
    for scan in scans:
        host, path, tag, digest = parse_reference(scan.image)
        match = _ECR_HOST.match(host or "")
        registry_id, where = (
            (match.group(1), match.group(2)) if match else (account.ACCOUNT_ID, region)
        )
        repo = repos.setdefault((registry_id, path), Repository(registry_id, where, path))
        digest = digest or naming.image_id(scan.image).split("@", 1)[1]
        counts = {"CRITICAL": scan.critical, "HIGH": scan.high, "MEDIUM": scan.medium}
        existing = next((i for i in repo.images if i.digest == digest), None)
        if existing is not None:
            existing.counts = counts
            if tag and tag not in existing.tags:
                existing.tags.append(tag)
            continue
        d = naming.digest("pushed", scan.image)
        pushed = now - _PUSHED_AGO - timedelta(minutes=int.from_bytes(d[:2]) % 1440)
        size = 50_000_000 + int.from_bytes(d[2:6]) % 4_000_000_000
        repo.images.append(
            Image(registry_id, where, path, digest, [tag] if tag else [], counts, pushed, size)
        )
    return list(repos.values())


def _page(items: list[Any], body: dict[str, Any], *, default: int) -> tuple[list[Any], str | None]:
    """ECR's nextToken paging (the token is an opaque offset here)."""
    limit = body.get("maxResults") or default
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise EcrError("InvalidParameterException", "maxResults must be between 1 and 1000")
    token = str(body.get("nextToken") or "0")
    if not token.isdigit():
        raise EcrError("InvalidParameterException", "Invalid parameter at 'nextToken'")
    start = int(token)
    end = start + limit
    return items[start:end], (str(end) if end < len(items) else None)


class Registry:
    """Answers one ECR operation from the scenario's scans."""

    def __init__(self, scenario: models.Scenario, *, now: datetime) -> None:
        scans = scenario.aws.image_scans if scenario.aws else []
        self.now = now
        self.region = account.region(scenario)
        self.repositories = build(scans, now=now, region=self.region)

    def handle(self, operation: str, body: dict[str, Any]) -> Response:
        method = {
            "DescribeRepositories": self.describe_repositories,
            "DescribeImages": self.describe_images,
            "DescribeImageScanFindings": self.describe_image_scan_findings,
            "BatchGetImage": self.batch_get_image,
        }.get(operation)
        try:
            if method is None:
                raise EcrError("UnknownOperationException", f"Unknown operation {operation}")
            return _json(method(body))
        except EcrError as e:
            return _json({"__type": e.code, "message": e.message}, e.status)

    def _repository(self, body: dict[str, Any]) -> Repository:
        name = body.get("repositoryName")
        registry = body.get("registryId") or account.ACCOUNT_ID
        if not name:
            raise EcrError("InvalidParameterException", "repositoryName must not be empty")
        for repo in self.repositories:
            if repo.name == name and repo.registry_id == registry:
                return repo
        raise EcrError(
            "RepositoryNotFoundException",
            f"The repository with name '{name}' does not exist in the registry with id "
            f"'{registry}'",
        )

    def describe_repositories(self, body: dict[str, Any]) -> dict[str, Any]:
        registry = body.get("registryId")
        names = body.get("repositoryNames")
        if names:
            repos = [self._repository({"repositoryName": n, "registryId": registry}) for n in names]
        else:
            repos = [r for r in self.repositories if registry in (None, r.registry_id)]
        page, token = _page([r.describe(self.now) for r in repos], body, default=100)
        return {"repositories": page, **({"nextToken": token} if token else {})}

    def describe_images(self, body: dict[str, Any]) -> dict[str, Any]:
        repo = self._repository(body)
        if body.get("imageIds"):
            images = [repo.find(ident) for ident in body["imageIds"]]
        else:
            images = list(repo.images)
        status = (body.get("filter") or {}).get("tagStatus", "ANY")
        if status != "ANY":
            images = [i for i in images if bool(i.tags) == (status == "TAGGED")]
        page, token = _page([self._detail(i) for i in images], body, default=100)
        return {"imageDetails": page, **({"nextToken": token} if token else {})}

    def _detail(self, image: Image) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "registryId": image.registry_id,
            "repositoryName": image.repository,
            "imageDigest": image.digest,
            "imageSizeInBytes": image.size,
            "imagePushedAt": account.epoch(image.pushed_at),
            "imageScanStatus": _COMPLETE,
            "imageScanFindingsSummary": {
                "imageScanCompletedAt": account.epoch(image.scanned_at),
                "vulnerabilitySourceUpdatedAt": account.epoch(
                    image.scanned_at - timedelta(hours=3)
                ),
                "findingSeverityCounts": image.severity_counts(),
            },
            "imageManifestMediaType": MANIFEST_TYPE,
            "artifactMediaType": CONFIG_TYPE,
            "lastRecordedPullTime": account.epoch(self.now - timedelta(hours=1)),
        }
        if image.tags:
            detail["imageTags"] = list(image.tags)
        return detail

    def describe_image_scan_findings(self, body: dict[str, Any]) -> dict[str, Any]:
        repo = self._repository(body)
        ident = body.get("imageId") or {}
        image = repo.find(ident)
        findings, token = _page(image.findings(), body, default=100)
        return {
            "registryId": image.registry_id,
            "repositoryName": image.repository,
            "imageId": image.identifier(ident.get("imageTag")),
            "imageScanStatus": _COMPLETE,
            "imageScanFindings": {
                "imageScanCompletedAt": account.epoch(image.scanned_at),
                "vulnerabilitySourceUpdatedAt": account.epoch(
                    image.scanned_at - timedelta(hours=3)
                ),
                "findingSeverityCounts": image.severity_counts(),
                "findings": findings,
            },
            **({"nextToken": token} if token else {}),
        }

    def batch_get_image(self, body: dict[str, Any]) -> dict[str, Any]:
        repo = self._repository(body)
        images, failures = [], []
        for ident in body.get("imageIds") or []:
            try:
                image = repo.find(ident)
            except EcrError:
                failures.append(
                    {
                        "imageId": ident,
                        "failureCode": "ImageNotFound",
                        "failureReason": "Requested image not found",
                    }
                )
                continue
            images.append(
                {
                    "registryId": image.registry_id,
                    "repositoryName": image.repository,
                    "imageId": image.identifier(ident.get("imageTag")),
                    "imageManifest": _manifest(image),
                    "imageManifestMediaType": MANIFEST_TYPE,
                }
            )
        return {"images": images, "failures": failures}


_COMPLETE = {"status": "COMPLETE", "description": "The scan was completed successfully."}


def _manifest(image: Image) -> str:
    layer = naming.hex_id("layer", image.digest, length=64)
    config = naming.hex_id("config", image.digest, length=64)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "size": 7023, "digest": f"sha256:{config}"},
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": image.size,
                    "digest": f"sha256:{layer}",
                }
            ],
        },
        indent=3,
    )


def _json(data: dict[str, Any], status: int = 200) -> Response:
    return Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": account.request_id()},
    )
