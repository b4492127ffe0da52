"""Logs are JSON lines and never carry a secret, from our loggers or a library's."""

import io
import json
import logging

from bot import logs


def test_json_lines_with_secrets_redacted() -> None:
    out = io.StringIO()
    logs.configure(level="INFO", fmt="json", stream=out)
    logs.get("opsbot.test", cluster="lab").info(
        "posted", token="xoxb-2049871234567-5012345678901-Zq8vT3mYbN1x", note="HF_TOKEN=hf_abc"
    )
    logging.getLogger("urllib3.connectionpool").warning(
        "retrying with header Authorization: Bearer 0123456789abcdef"
    )
    logs.get("opsbot.test").debug("below the level")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "posted",
        "retrying with header Authorization: Bearer [REDACTED:credential]",
    ]
    assert lines[0]["cluster"] == "lab"
    assert lines[0]["level"] == "info"
    assert "xoxb-" not in out.getvalue()
    assert "hf_abc" not in out.getvalue()
    assert lines[1]["logger"] == "urllib3.connectionpool"
