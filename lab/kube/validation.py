"""Light object validation, so a server-side dry run catches what a fix could get wrong.

Not Kubernetes' whole validation: names, labels, replicas, the pod template's containers (names,
images, env, ports, probes, resource quantities and requests <= limits), the Deployment
selector, Pod spec immutability, Lease and NodePool basics. Returns (field, message) causes;
the server turns them into a 422 Invalid Status.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from lab.kube.selectors import matches_label_selector

Obj = dict[str, Any]
Causes = list[tuple[str, str]]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(\d+(\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)
_SUFFIX = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}  # fmt: skip
_POD_MUTABLE = (
    "spec.containers[*].image, spec.initContainers[*].image, spec.activeDeadlineSeconds, "
    "spec.tolerations (only additions to existing tolerations), "
    "spec.terminationGracePeriodSeconds (allow it to be set to 1 if it was previously negative)"
)


def parse_quantity(value: Any) -> Decimal | None:
    """A resource quantity (``32Gi``, ``500m``, ``1``) as a number; None when malformed."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    m = _QUANTITY.match(value.strip()) if isinstance(value, str) else None
    if not m:
        return None
    try:
        number = Decimal(m["num"])
    except InvalidOperation:
        return None
    suffix = m["suffix"] or ""
    if suffix[:1] in ("e", "E"):
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * _SUFFIX[suffix]


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return len(name) <= 63 and bool(_LABEL_NAME.match(name))


def _metadata(obj: Obj, causes: Causes, *, dns_label: bool) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    pattern = _DNS_LABEL if dns_label else _DNS_SUBDOMAIN
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif not isinstance(name, str) or len(name) > 253 or not pattern.match(name):
        what = "RFC 1123 label" if dns_label else "RFC 1123 subdomain"
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase {what} must '
                "consist of lower case alphanumeric characters, '-' or '.'",
            )
        )
    for key, value in (meta.get("labels") or {}).items():
        if not _label_key_ok(str(key)):
            causes.append(("metadata.labels", f'Invalid value: "{key}": name part must be valid'))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            why = "a valid label must be an empty string or consist of alphanumeric characters"
            causes.append((f"metadata.labels.{key}", f'Invalid value: "{value}": {why}'))


def _resources(res: Any, path: str, causes: Causes) -> None:
    if res is None:
        return
    if not isinstance(res, dict):
        causes.append((path, "Invalid value: must be an object"))
        return
    parsed: dict[str, dict[str, Decimal]] = {}
    for section in ("limits", "requests"):
        for name, value in (res.get(section) or {}).items():
            quantity = parse_quantity(value)
            if quantity is None:
                causes.append(
                    (
                        f"{path}.{section}[{name}]",
                        f'Invalid value: "{value}": quantities '
                        "must match the regular expression "
                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    )
                )
            elif quantity < 0:
                causes.append(
                    (
                        f"{path}.{section}[{name}]",
                        f'Invalid value: "{value}": must be greater than or equal to 0',
                    )
                )
            else:
                parsed.setdefault(section, {})[name] = quantity
    for name, request in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(name)
        if limit is not None and request > limit:
            why = f"must be less than or equal to {name} limit of {res['limits'][name]}"
            causes.append((f"{path}.requests", f'Invalid value: "{res["requests"][name]}": {why}'))


def _probe(probe: Any, path: str, causes: Causes) -> None:
    if not isinstance(probe, dict):
        return
    for field in ("periodSeconds", "failureThreshold", "successThreshold", "timeoutSeconds"):
        value = probe.get(field)
        if value is not None and (not isinstance(value, int) or value < 1):
            causes.append(
                (f"{path}.{field}", f"Invalid value: {value}: must be greater than or equal to 1")
            )


def _container(c: Any, path: str, causes: Causes) -> None:
    if not isinstance(c, dict):
        causes.append((path, "Invalid value: must be an object"))
        return
    if not c.get("name"):
        causes.append((f"{path}.name", "Required value"))
    elif not _DNS_LABEL.match(str(c["name"])):
        causes.append((f"{path}.name", f'Invalid value: "{c["name"]}": must be a DNS label'))
    if not c.get("image"):
        causes.append((f"{path}.image", "Required value"))
    for field in ("args", "command"):
        value = c.get(field)
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            causes.append((f"{path}.{field}", "Invalid value: must be a list of strings"))
    for i, env in enumerate(c.get("env") or []):
        if not isinstance(env, dict) or not env.get("name"):
            causes.append((f"{path}.env[{i}].name", "Required value"))
        elif "value" in env and env["value"] is not None and not isinstance(env["value"], str):
            causes.append((f"{path}.env[{i}].value", "Invalid value: must be a string"))
    for i, port in enumerate(c.get("ports") or []):
        number = port.get("containerPort") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            causes.append(
                (
                    f"{path}.ports[{i}].containerPort",
                    f"Invalid value: {number}: must be between 1 and 65535, inclusive",
                )
            )
    _resources(c.get("resources"), f"{path}.resources", causes)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(probe), f"{path}.{probe}", causes)


def pod_spec(spec: Any, path: str, causes: Causes) -> None:
    if not isinstance(spec, dict):
        causes.append((path, "Required value"))
        return
    containers = spec.get("containers")
    if not containers:
        causes.append((f"{path}.containers", "Required value"))
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(field) or []):
            _container(c, f"{path}.{field}[{i}]", causes)
            name = c.get("name") if isinstance(c, dict) else None
            if name in names:
                causes.append((f"{path}.{field}[{i}].name", f'Duplicate value: "{name}"'))
            if isinstance(name, str):
                names.add(name)
    volumes = [v.get("name") for v in spec.get("volumes") or [] if isinstance(v, dict)]
    for field in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(field) or []):
            for j, mount in enumerate((c.get("volumeMounts") or []) if isinstance(c, dict) else []):
                if mount.get("name") not in volumes:
                    causes.append(
                        (
                            f"{path}.{field}[{i}].volumeMounts[{j}].name",
                            f'Not found: "{mount.get("name")}"',
                        )
                    )


def _replicas(spec: Obj, causes: Causes) -> None:
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool)):
        causes.append(("spec.replicas", f"Invalid value: {replicas!r}: must be an integer"))
    elif replicas is not None and replicas < 0:
        causes.append(
            ("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")
        )


def _workload(obj: Obj, causes: Causes) -> None:
    spec = obj.get("spec") or {}
    _replicas(spec, causes)
    selector = spec.get("selector")
    template = spec.get("template") or {}
    if not selector:
        causes.append(("spec.selector", "Required value"))
    elif not matches_label_selector(selector, (template.get("metadata") or {}).get("labels")):
        causes.append(
            (
                "spec.template.metadata.labels",
                "Invalid value: `selector` does not match template `labels`",
            )
        )
    pod_spec(template.get("spec"), "spec.template.spec", causes)


def _without_images(spec: Obj) -> Obj:
    out = {k: v for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations")}
    for field in ("containers", "initContainers"):
        if field in out:
            out[field] = [{k: v for k, v in c.items() if k != "image"} for c in out[field]]
    return out


def validate(kind: str, obj: Obj, old: Obj | None = None) -> Causes:
    """Causes that make ``obj`` invalid (empty when valid); ``old`` is set for updates."""
    causes: Causes = []
    _metadata(obj, causes, dns_label=kind in ("Namespace", "Service"))
    spec = obj.get("spec") or {}
    if kind in ("Deployment", "ReplicaSet"):
        _workload(obj, causes)
        if (
            old is not None
            and kind == "Deployment"
            and spec.get("selector") != (old.get("spec") or {}).get("selector")
        ):
            causes.append(("spec.selector", "Invalid value: field is immutable"))
    elif kind == "Pod":
        pod_spec(spec, "spec", causes)
        if old is not None and _without_images(spec) != _without_images(old.get("spec") or {}):
            causes.append(
                ("spec", f"Forbidden: pod updates may not change fields other than {_POD_MUTABLE}")
            )
    elif kind == "Lease":
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            causes.append(
                ("spec.leaseDurationSeconds", f"Invalid value: {duration}: must be greater than 0")
            )
    elif kind == "NodePool":
        for name, value in (spec.get("limits") or {}).items():
            if parse_quantity(value) is None:
                causes.append((f"spec.limits.{name}", f'Invalid value: "{value}"'))
        requirements = ((spec.get("template") or {}).get("spec") or {}).get("requirements") or []
        for i, req in enumerate(requirements):
            if req.get("operator") not in ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"):
                causes.append(
                    (
                        f"spec.template.spec.requirements[{i}].operator",
                        f'Unsupported value: "{req.get("operator")}"',
                    )
                )
    elif kind == "Scale":
        _replicas(spec, causes)
    return causes
