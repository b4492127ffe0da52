"""Redaction on the token shapes that really leak: each must be masked, neighbours kept."""

import pytest

from tools import redact

# Shapes as the issuers print them (values are fake but well-formed).
SLACK_BOT = "xoxb-2049871234567-5012345678901-Zq8vT3mYbN1xR4kLw9PdE2sH"
SLACK_USER = "xoxp-2049871234567-2049871234568-5012345678901-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
SLACK_APP = (
    "xapp-1-A05ABCDEF12-5012345678901-"
    "9c1b7e0f4d2a6b8c3e5f7a9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f"
)
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SESSION_KEY_ID = "ASIAY34FZKBOKMUTVV7A"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
HF_TOKEN = "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"
PEM = """-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB
aFDrBz9vFqU4yW2Vx6EJ0HnGmh6wLxCgR1Jc5y6q8o3+Qo0N0uq4KJ3j5T9JvQIDAQAB
-----END RSA PRIVATE KEY-----"""
OPENSSH = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
-----END OPENSSH PRIVATE KEY-----"""


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        (f"SLACK_BOT_TOKEN={SLACK_BOT}", SLACK_BOT, "slack-token"),
        (f"posting with {SLACK_BOT} now", SLACK_BOT, "slack-token"),
        (f"user token {SLACK_USER}", SLACK_USER, "slack-token"),
        (f"socket mode with {SLACK_APP}", SLACK_APP, "slack-token"),
        (f"aws_access_key_id = {AWS_KEY_ID}", AWS_KEY_ID, "aws-key-id"),
        (f"creds {AWS_SESSION_KEY_ID}:x", AWS_SESSION_KEY_ID, "aws-key-id"),
        (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, "secret"),
        (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET, "secret"),
        (f'{{"SecretAccessKey": "{AWS_SECRET}"}}', AWS_SECRET, "secret"),
        (f"HF_TOKEN={HF_TOKEN}", HF_TOKEN, ""),
        (f"huggingface-cli login --token {HF_TOKEN}", HF_TOKEN, ""),
        (
            "Authorization: Bearer eyJhbGciOi.payload-part.sig_part",
            "eyJhbGciOi.payload-part.sig_part",
            "credential",
        ),
        (
            "curl -H 'Authorization: Bearer 0123456789abcdef0123'",
            "0123456789abcdef0123",
            "credential",
        ),
        ("Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy", "credential"),
        ('{"Authorization": "token ghx0123456789abcdef"}', "ghx0123456789abcdef", "credential"),
        ("DB_PASSWORD=hunter2hunter2", "hunter2hunter2", "secret"),
        ("password: correct-horse-battery", "correct-horse-battery", "secret"),
        ("GET https://models.internal/v1?token=abc123def456&model=x", "abc123def456", "secret"),
        ("https://hub.internal/dl?api_key=K3y-V4lue&x=1", "K3y-V4lue", "secret"),
        ("postgresql://opsbot:s3cr3t-pw@db.internal:5432/opsbot", "s3cr3t-pw", "password"),
        ('{"client_secret": "c1i3nt-s3cr3t"}', "c1i3nt-s3cr3t", "secret"),
        (f"key:\n{PEM}\nrest", "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn", "private-key"),
        (OPENSSH, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", "private-key"),
    ],
)
def test_secret_is_masked(text: str, secret: str, kind: str) -> None:
    out = redact.redact(text)
    assert secret not in out
    assert f"[REDACTED:{kind}" in out if kind else "[REDACTED:" in out


@pytest.mark.parametrize(
    "text",
    [
        "--max-num-batched-tokens 8192 --gpu-memory-utilization 0.95",
        "MAX_NUM_BATCHED_TOKENS=8192",
        'vllm:prompt_tokens_total{model_name="llama-3-70b"} 1.2e+06',
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
        "pod llama-2-7b-6f7c9-x2k4p on ip-10-1-2-33.ap-northeast-2.compute.internal",
        "tokenizer_config.json loaded",
        "the basic configuration works; token budget exceeded",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact.redact(text) == text


def test_redaction_is_idempotent() -> None:
    text = f"HF_TOKEN={HF_TOKEN} Authorization: Bearer abcdefghijkl password=x1y2z3"
    once = redact.redact(text)
    assert redact.redact(once) == once


def test_kubernetes_env_list_values_are_masked_by_name() -> None:
    spec = {
        "env": [
            {"name": "HUGGING_FACE_HUB_TOKEN", "value": "plain-looking"},
            {"name": "MAX_NUM_SEQS", "value": "256"},
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
        ],
        "db_password": "x",
        "max_tokens": 512,
    }
    out = redact.redact_data(spec)
    assert out["env"][0]["value"] == "[REDACTED:secret]"
    assert out["env"][1]["value"] == "256"
    assert out["env"][2]["valueFrom"] == spec["env"][2]["valueFrom"]  # a reference, not a secret
    assert out["db_password"] == "[REDACTED:secret]"
    assert out["max_tokens"] == 512
    assert spec["db_password"] == "x"  # the input is not changed


def test_sensitive_key_names() -> None:
    for name in [
        "HF_TOKEN",
        "db-password",
        "aws_secret_access_key",
        "apiKey",
        "SLACK_SIGNING_SECRET",
    ]:
        assert redact.is_sensitive_key(name), name
    for name in ["max_num_batched_tokens", "tokenizer", "MAX_NUM_SEQS", "secretary"]:
        assert not redact.is_sensitive_key(name), name
