"""One lab server for ECR and EC2: requests with ``X-Amz-Target`` are ECR (JSON 1.1), form
posts with ``Action=`` are EC2 (query protocol), so both endpoint variables can name it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from lab.aws import ec2, ecr
from lab.httpserver import LabServer, Request, Response
from lab.scenario import models


class Aws:
    """Routes each request to the ECR or EC2 side by its protocol."""

    def __init__(self, scenario: models.Scenario, *, now: datetime | None = None) -> None:
        moment = now or datetime.now(UTC).replace(microsecond=0)
        self.now = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        self.ecr = ecr.Registry(scenario, now=self.now)
        self.ec2 = ec2.Ebs(scenario, now=self.now)

    def handle(self, request: Request) -> Response:
        target = request.header("x-amz-target")
        if target:
            prefix, _, operation = target.partition(".")
            if prefix != ecr.TARGET_PREFIX:
                operation = target  # another JSON service: answered as an unknown operation
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return self.ecr.handle("SerializationException", {})
            return self.ecr.handle(operation, body)
        params = {k: v for k, values in request.query.items() for v in values[:1]}
        params.update(parse_qsl(request.body.decode(errors="replace"), keep_blank_values=True))
        return self.ec2.handle(params)


def start_aws(scenario: models.Scenario, *, now: datetime | None = None) -> LabServer:
    """Serve ECR and EC2 for ``scenario`` on a free port; point both endpoint URLs at it."""
    return LabServer(Aws(scenario, now=now).handle, name="aws").start()
