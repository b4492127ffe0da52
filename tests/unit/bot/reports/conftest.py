"""Fixtures for the daily checks: an ``ask`` over the catalog, and addresses nothing answers.

A closed port is what an unreachable backend looks like from the bot: connection refused.
The port is taken from the OS and released, so nothing listens there during the test.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import clients
from bot.config import Settings
from bot.reports import checks
from tools import catalog
from tools.base import ToolResult

AskFor = Callable[[Settings], checks.Ask]


@pytest.fixture(scope="session")
def ask_for() -> AskFor:
    """A plain catalog call against ``settings`` as ``ask`` (no sharing, no counting)."""

    def build(settings: Settings) -> checks.Ask:
        box = clients.build_toolbox(settings)

        def ask(tool: str, /, **arguments: Any) -> ToolResult:  # k8s_describe takes `name`
            return catalog.get(tool).run(box, arguments)

        return ask

    return build


@pytest.fixture(scope="session")
def closed_url() -> str:
    """``http://127.0.0.1:PORT`` with nothing listening on PORT."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def closed_kubeconfig(tmp_path_factory: pytest.TempPathFactory, closed_url: str) -> Path:
    """A kubeconfig whose API server is ``closed_url``."""
    path = tmp_path_factory.mktemp("kube") / "kubeconfig"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gone", "cluster": {"server": closed_url}}],
        "users": [{"name": "gone", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "gone"}}],
        "current-context": "gone",
    }
    path.write_text(yaml.safe_dump(doc))
    return path
