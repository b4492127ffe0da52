"""Secret redaction: the one function everything passes text through before it leaves.

Used by logging now and by tools, Slack, the LLM path and the store. It errs towards
redacting: a masked harmless value costs little, a leaked token costs a rotation and an incident.
A redaction keeps the kind (``[REDACTED:slack-token]``) so people can still tell what was there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_SENSITIVE_NAME = (
    r"(?i:password|passwd|pwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|secret[_-]?key|private[_-]?key|credentials?|auth[_-]?token|session[_-]?key|signing[_-]?key)"
)
# A key like HF_TOKEN, db-password, aws_secret_access_key or SecretAccessKey, but not
# max_num_batched_tokens or tokenizer: the name must start and end at a word or camelCase edge.
_START = r"(?:(?<![A-Za-z0-9])|(?<=[a-z0-9])(?=[A-Z]))"
_END = r"(?:(?![A-Za-z0-9])|(?=[A-Z][a-z]))"
_KEY = rf"[A-Za-z0-9_.-]*{_START}{_SENSITIVE_NAME}{_END}[A-Za-z0-9_.-]*"
_SENSITIVE_KEY = re.compile(rf"^{_KEY}$")


def _mask(kind: str) -> Callable[[re.Match[str]], str]:
    return lambda m: f"[REDACTED:{kind}]"


def _keep_prefix(kind: str) -> Callable[[re.Match[str]], str]:
    return lambda m: f"{m.group('prefix')}[REDACTED:{kind}]"


_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE "
            r"KEY-----|\Z)",
            re.DOTALL,
        ),
        _mask("private-key"),
    ),
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{8,}"), _mask("slack-token")),
    (re.compile(r"\bxapp-\d-[A-Za-z0-9-]{8,}"), _mask("slack-token")),
    (re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"), _mask("slack-webhook")),
    (
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
        _mask("aws-key-id"),
    ),
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), _mask("hf-token")),
    (
        re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}\b|\bgithub_pat_\w{40,}"),
        _mask("github-token"),
    ),
    (re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}"), _mask("api-key")),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), _mask("jwt")),
    (
        re.compile(r"(?P<prefix>\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
        _keep_prefix("credential"),
    ),
    (
        re.compile(
            r"(?P<prefix>\bAuthorization[\"']?\s*[:=]\s*[\"']?(?:[A-Za-z]+\s+)?)(?!\[)[^\s\"']{8,}",
            re.IGNORECASE,
        ),
        _keep_prefix("credential"),
    ),
    # user:password@ in URLs and connection strings
    (
        re.compile(r"(?P<prefix>\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+(?=@)"),
        _keep_prefix("password"),
    ),
    # "key": "value" (JSON) and key: value / key=value (env, YAML, query strings, flags)
    (
        re.compile(rf"(?P<prefix>[\"']{_KEY}[\"']\s*:\s*[\"'])[^\"']+(?=[\"'])"),
        _keep_prefix("secret"),
    ),
    (
        re.compile(
            rf"(?P<prefix>(?<![A-Za-z0-9_.-]){_KEY}\s*[=:]\s*[\"']?)(?![\[\s\"'])[^\s\"'&,;]+"
        ),
        _keep_prefix("secret"),
    ),
    (
        re.compile(rf"(?P<prefix>--{_KEY}[= ])(?!-)[^\s\"']+"),
        _keep_prefix("secret"),
    ),
)


def redact(text: str) -> str:
    """``text`` with every secret we recognise replaced by ``[REDACTED:<kind>]``."""
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    return text


def is_sensitive_key(name: str) -> bool:
    """Whether a field or variable called ``name`` holds a secret (HF_TOKEN, db_password)."""
    return bool(_SENSITIVE_KEY.match(name))


def redact_data(value: Any) -> Any:
    """A copy of JSON-like data with secrets redacted, by key name and by content.

    Handles Kubernetes env lists (``[{"name": "HF_TOKEN", "value": "…"}]``) too.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        name = value.get("name")
        out: dict[Any, Any] = {}
        for key, item in value.items():
            hidden = isinstance(key, str) and is_sensitive_key(key) and item not in (None, "")
            env_value = key == "value" and isinstance(name, str) and is_sensitive_key(name)
            if (hidden or env_value) and not isinstance(item, Mapping | list):
                out[key] = "[REDACTED:secret]"
            else:
                out[key] = redact_data(item)
        return out
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value
