"""AWS through boto3: ECR scan findings of running images and the age of EBS snapshots."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tools import awsapi, base, budget
from tools.toolbox import ClusterConfig, Toolbox

SOURCE = "aws"
_SEVERITY_RANK = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3, "INFORMATIONAL": 4}
_SCANNED = ("COMPLETE", "ACTIVE")
TOP_FINDINGS = 3


def _run(
    box: Toolbox,
    *,
    tool: str,
    call: str,
    cluster: str | None,
    fetch: Callable[[ClusterConfig, float], base.Output],
) -> base.ToolResult:
    """``fetch`` for the named cluster through ``base.run``; an unknown cluster is refused."""
    try:
        config = box.cluster(cluster)
    except KeyError as e:
        problem = base.Rejected(SOURCE, str(e.args[0]))

        def refuse(_: float) -> base.Output:
            raise problem

        return base.run(tool=tool, source=SOURCE, call=call, fetch=refuse, limits=box.limits)
    return base.run(
        tool=tool,
        source=SOURCE,
        call=call,
        fetch=lambda remaining: fetch(config, remaining),
        limits=box.limits,
        cluster=config.name,
    )


# --- ECR ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageRef:
    """An image reference as ECR wants it: registry, region, repository and tag or digest."""

    image: str
    repository: str
    tag: str | None
    digest: str | None
    registry_id: str | None
    region: str | None

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        """``host/repo:tag`` or ``host/repo@sha256:…``; off ECR, the path is the repository."""
        name, _, digest = image.partition("@")
        first, _, rest = name.partition("/")
        has_host = bool(rest) and ("." in first or ":" in first or first == "localhost")
        host, path = (first, rest) if has_host else ("", name)
        last = path.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last else None
        if tag is not None:
            path = path[: len(path) - len(tag) - 1]
        if tag is None and not digest:
            tag = "latest"
        p = host.split(".")
        ecr = len(p) >= 6 and p[1:3] == ["dkr", "ecr"] and p[0].isdigit()  # <acct>.dkr.ecr.<rgn>
        return cls(image, path, tag, digest or None, *((p[0], p[3]) if ecr else (None, None)))

    def image_id(self) -> dict[str, str]:
        return {"imageDigest": self.digest} if self.digest else {"imageTag": self.tag or "latest"}


def image_scan_findings(
    *, box: Toolbox, images: Sequence[str], cluster: str | None = None
) -> base.ToolResult:
    """Vulnerability counts and the worst findings of each image, from ECR's image scans.

    An image ECR has no scan for (not in ECR, never scanned, scan failed) is listed and says so.
    """
    wanted = list(dict.fromkeys(i.strip() for i in images if i.strip()))

    def fetch(config: ClusterConfig, remaining: float) -> base.Output:
        deadline = time.monotonic() + remaining
        made = awsapi.clients(box, config)
        found = [_scan(made, ImageRef.parse(i), deadline=deadline) for i in wanted]
        return _render_scans(found, box.limits.max_chars)

    call = "ecr:DescribeImageScanFindings " + ", ".join(wanted)
    return _run(box, tool="ecr_image_scan_findings", call=call, cluster=cluster, fetch=fetch)


def _scan(made: awsapi.Clients, ref: ImageRef, *, deadline: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"image": ref.image, "repository": ref.repository, "scanned": False}
    params: dict[str, Any] = {"repositoryName": ref.repository, "imageId": ref.image_id()}
    if ref.registry_id:
        params["registryId"] = ref.registry_id
    try:
        answer = awsapi.request(
            made,
            "ecr",
            "describe_image_scan_findings",
            deadline=deadline,
            source=SOURCE,
            region=ref.region,
            maxResults=1000,
            **params,
        )
    except (base.NotFound, base.Rejected) as e:
        entry["note"] = f"no scan: {e.message}"
        return entry
    status = (answer.get("imageScanStatus") or {}).get("status", "UNKNOWN")
    scan = answer.get("imageScanFindings") or {}
    if status not in _SCANNED:
        said = (answer.get("imageScanStatus") or {}).get("description")
        entry["note"] = f"no completed scan: {status}" + (f" ({said})" if said else "")
        return entry
    counts = {str(k): int(v) for k, v in (scan.get("findingSeverityCounts") or {}).items()}
    findings = [_finding(f) for f in scan.get("findings") or []]
    findings += [_enhanced(f) for f in scan.get("enhancedFindings") or []]
    findings.sort(key=lambda f: (_SEVERITY_RANK.get(f["severity"], 9), -(f["score"] or 0)))
    completed = scan.get("imageScanCompletedAt")
    entry.update(
        scanned=True,
        status=status,
        counts=counts,
        scanned_at=completed.astimezone(UTC).isoformat() if completed else None,
        top=findings[:TOP_FINDINGS],
    )
    return entry


def _finding(f: Mapping[str, Any]) -> dict[str, Any]:
    attributes = {a.get("key"): a.get("value") for a in f.get("attributes") or []}
    score = attributes.get("CVSS3_SCORE") or attributes.get("CVSS2_SCORE")
    package = " ".join(
        filter(None, (attributes.get("package_name"), attributes.get("package_version")))
    )
    return {
        "name": f.get("name"),
        "severity": f.get("severity", "UNDEFINED"),
        "score": float(score) if score else None,
        "package": package or None,
    }


def _enhanced(f: Mapping[str, Any]) -> dict[str, Any]:
    details = f.get("packageVulnerabilityDetails") or {}
    packages = details.get("vulnerablePackages") or [{}]
    package = " ".join(filter(None, (packages[0].get("name"), packages[0].get("version"))))
    return {
        "name": details.get("vulnerabilityId") or f.get("title"),
        "severity": f.get("severity", "UNDEFINED"),
        "score": f.get("score"),
        "package": package or None,
    }


def _render_scans(found: list[dict[str, Any]], max_chars: int) -> base.Output:
    if not found:
        return base.Output(data=[], text="no images given", no_data=True)

    def worst(e: dict[str, Any]) -> tuple[int, ...]:
        return (not e["scanned"], *(-(e.get("counts") or {}).get(s, 0) for s in _SEVERITY_RANK))

    ordered = sorted(found, key=worst)
    rows = []
    for e in ordered:
        if not e["scanned"]:
            rows.append([e["image"], "-", "-", "-", e["note"]])
            continue
        c = e["counts"]
        top = "; ".join(
            f"{f['name']} {f['severity']}"
            + (f" {f['score']:g}" if f["score"] is not None else "")
            + (f" ({f['package']})" if f["package"] else "")
            for f in e["top"]
        )
        rows.append(
            [e["image"], c.get("CRITICAL", 0), c.get("HIGH", 0), c.get("MEDIUM", 0), top or "-"]
        )
    unscanned = sum(1 for e in found if not e["scanned"])
    head = f"{len(found)} images; {len(found) - unscanned} scanned, {unscanned} without a scan"
    text, cut = budget.fit_table(
        ["IMAGE", "CRITICAL", "HIGH", "MEDIUM", "TOP FINDINGS / NOTE"],
        rows,
        max_chars - len(head) - 1,
        what="images",
    )
    return base.Output(data=ordered, text=f"{head}\n{text}", cut=cut)


# --- EBS snapshots --------------------------------------------------------------------------
def snapshot_ages(
    *,
    box: Toolbox,
    volume_ids: Sequence[str],
    now: datetime | None = None,
    names: Mapping[str, str] | None = None,
    cluster: str | None = None,
) -> base.ToolResult:
    """The newest completed EBS snapshot of each volume and its age in hours, oldest first.

    A volume without a completed snapshot is listed and says so (the case a backup check is
    for). ``names`` labels volumes for people, e.g. with the PVC each one backs.
    """
    wanted = list(dict.fromkeys(v.strip() for v in volume_ids if v.strip()))
    moment = now or datetime.now(UTC)

    def fetch(config: ClusterConfig, remaining: float) -> base.Output:
        if not wanted:
            return base.Output(data=[], text="no volumes given", no_data=True)
        deadline = time.monotonic() + remaining
        made = awsapi.clients(box, config)
        snapshots: list[dict[str, Any]] = []
        for start in range(0, len(wanted), 100):  # EC2 takes up to 200 values per filter
            params: dict[str, Any] = {
                "Filters": [{"Name": "volume-id", "Values": wanted[start : start + 100]}]
            }
            while True:
                page = awsapi.request(
                    made,
                    "ec2",
                    "describe_snapshots",
                    deadline=deadline,
                    source=SOURCE,
                    OwnerIds=["self"],
                    MaxResults=1000,
                    **params,
                )
                snapshots.extend(page.get("Snapshots") or [])
                if not page.get("NextToken"):
                    break
                params["NextToken"] = page["NextToken"]
        return _render_snapshots(wanted, snapshots, moment, names or {}, box.limits.max_chars)

    call = f"ec2:DescribeSnapshots OwnerIds=[self] Filters=[volume-id={','.join(wanted)}]"
    return _run(box, tool="ebs_snapshot_ages", call=call, cluster=cluster, fetch=fetch)


def _render_snapshots(
    wanted: list[str],
    snapshots: list[dict[str, Any]],
    now: datetime,
    names: Mapping[str, str],
    max_chars: int,
) -> base.Output:
    entries = []
    for volume in wanted:
        mine = [s for s in snapshots if s.get("VolumeId") == volume]
        done = [s for s in mine if s.get("State") == "completed"]
        pending = [s for s in mine if s.get("State") == "pending"]
        entry: dict[str, Any] = {"volume_id": volume, "name": names.get(volume)}
        if done:
            newest = max(done, key=lambda s: s["StartTime"])
            taken: datetime = newest["StartTime"]
            entry.update(
                snapshot_id=newest.get("SnapshotId"),
                start_time=taken.astimezone(UTC).isoformat(),
                age_hours=round((now - taken).total_seconds() / 3600, 1),
                completed_snapshots=len(done),
            )
        else:
            entry.update(snapshot_id=None, start_time=None, age_hours=None, completed_snapshots=0)
        notes = ["no completed snapshot"] if not done else []
        notes += [f"{len(pending)} in progress"] if pending else []
        entry["note"] = "; ".join(notes)
        entries.append(entry)
    # the worst first: no snapshot at all, then the oldest
    entries.sort(key=lambda e: (e["age_hours"] is not None, -(e["age_hours"] or 0)))
    rows = [
        [
            e["volume_id"] + (f" ({e['name']})" if e["name"] else ""),
            e["snapshot_id"] or "-",
            e["start_time"][:19].replace("T", " ") if e["start_time"] else "-",
            f"{e['age_hours']:.1f}" if e["age_hours"] is not None else "-",
            e["note"],
        ]
        for e in entries
    ]
    missing = sum(1 for e in entries if e["age_hours"] is None)
    head = f"{len(entries)} volumes; {missing} without a completed snapshot"
    text, cut = budget.fit_table(
        ["VOLUME", "NEWEST SNAPSHOT", "TAKEN (UTC)", "AGE (h)", "NOTE"],
        rows,
        max_chars - len(head) - 1,
        what="volumes",
    )
    return base.Output(data=entries, text=f"{head}\n{text}", cut=cut)
