"""The real Prometheus (Debian's package), with the scenario's history backfilled before start.

The series are written as OpenMetrics with explicit timestamps (the last sample at "now"),
turned into TSDB blocks by ``promtool tsdb create-blocks-from openmetrics``, and served by a
Prometheus started on those blocks, so every PromQL function works on them.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO

from lab import process
from lab.scenario.models import Metrics

CONFIG = """\
global:
  scrape_interval: 1m
  evaluation_interval: 1m
scrape_configs: []
"""


class BackfillError(RuntimeError):
    """promtool refused the generated OpenMetrics; the message carries its output."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def write_openmetrics(metrics: Metrics, *, now: float, out: TextIO) -> int:
    """Write every series, grouped by metric name as OpenMetrics requires; returns samples."""
    step = metrics.interval.total_seconds()
    by_name: dict[str, list[tuple[dict[str, str], list[float | None]]]] = {}
    for name, labels, samples in metrics.expanded().values():
        by_name.setdefault(name, []).append((labels, samples))
    written = 0
    for name, series in by_name.items():
        for labels, samples in series:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            selector = f"{name}{{{label_text}}}" if label_text else name
            last = len(samples) - 1
            for i, value in enumerate(samples):
                if value is None:
                    continue
                stamp = now - (last - i) * step
                out.write(f"{selector} {_number(value)} {stamp:.3f}\n")
                written += 1
    out.write("# EOF\n")
    return written


def backfill(metrics: Metrics, *, now: float, data_dir: Path, workdir: Path) -> int:
    """Turn the scenario's series into TSDB blocks in ``data_dir``; returns the sample count."""
    source = workdir / "series.om"
    with source.open("w", encoding="utf-8") as out:
        samples = write_openmetrics(metrics, now=now, out=out)
    if samples == 0:
        return 0
    result = subprocess.run(
        [
            _binary("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "-q",
            str(source),
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise BackfillError(f"promtool backfill failed:\n{result.stdout}{result.stderr}")
    return samples


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise process.LabProcessError(
            f"{name} is not installed; run `make setup` (Debian: apt-get install prometheus)"
        )
    return path


class LabPrometheus:
    """Prometheus on 127.0.0.1 with the scenario's history; ``url`` for the bot."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = process.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.samples = 0
        self._process: process.ManagedProcess | None = None

    def start(self, metrics: Metrics | None, *, now: datetime | None = None) -> LabPrometheus:
        data_dir = self.workdir / "prometheus-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        if metrics is not None:
            stamp = now.timestamp() if now else time.time()
            self.samples = backfill(metrics, now=stamp, data_dir=data_dir, workdir=self.workdir)
        config = self.workdir / "prometheus.yml"
        config.write_text(CONFIG)
        self._process = process.ManagedProcess(
            "prometheus",
            [
                _binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={data_dir}",
                "--storage.tsdb.retention.time=30d",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--web.enable-admin-api",
            ],
            log_path=self.workdir / "prometheus.log",
            ready_url=f"{self.url}/-/ready",
        ).start(timeout=60)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
