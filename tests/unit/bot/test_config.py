"""Settings: defaults for an in-cluster install, env and YAML sources, errors that name the key."""

from pathlib import Path

import pytest

from bot import config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("OPSBOT_", "SLACK_")):
            monkeypatch.delenv(name)


def test_defaults_point_at_in_cluster_services() -> None:
    settings = config.load_settings()
    assert settings.prometheus_url.endswith(".svc:80")
    assert ".svc:" in settings.alertmanager_url
    assert ".svc:" in settings.kubecost_url
    assert settings.llm_base_url is not None and ".svc:" in settings.llm_base_url
    assert settings.routes.critical == "#genai-critical"
    assert settings.routes.warning == "#genai-warnings"
    assert settings.routes.default == "#genai-alerts"
    assert settings.thresholds.daily_budget_usd == 1000
    assert settings.approvals.two_person_rule is True
    assert settings.approvals.expiry_minutes == 30
    assert settings.kubeconfig is None  # in-cluster credentials


def test_environment_with_prefix_and_slack_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSBOT_PROMETHEUS_URL", "http://127.0.0.1:9090")
    monkeypatch.setenv("OPSBOT_THRESHOLDS__ERROR_RATE", "0.02")
    monkeypatch.setenv("OPSBOT_LOG_GROUPS", "/eks/a, /eks/b")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-123-456-abc")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cr3t")
    settings = config.load_settings()
    assert settings.prometheus_url == "http://127.0.0.1:9090"
    assert settings.thresholds.error_rate == 0.02
    assert settings.log_groups == ["/eks/a", "/eks/b"]
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-123-456-abc"
    assert "xoxb" not in repr(settings)  # secrets never print


def test_yaml_file_below_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "opsbot.yaml"
    path.write_text(
        "cluster_name: prod-apne2\n"
        "routes: {critical: '#sre-pager'}\n"
        "approvals: {users: [U012AB3CD], usergroup: S0614TZR7}\n"
        "thresholds: {daily_budget_usd: 2500}\n"
        "kubecost_url: http://from-yaml:9090\n"
    )
    monkeypatch.setenv("OPSBOT_CONFIG", str(path))
    monkeypatch.setenv("OPSBOT_KUBECOST_URL", "http://from-env:9090")
    settings = config.load_settings()
    assert settings.cluster_name == "prod-apne2"
    assert settings.routes.critical == "#sre-pager"
    assert settings.routes.warning == "#genai-warnings"  # untouched keys keep defaults
    assert settings.approvals.users == ["U012AB3CD"]
    assert settings.thresholds.daily_budget_usd == 2500
    assert settings.kubecost_url == "http://from-env:9090"


def test_errors_name_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPSBOT_THRESHOLDS__ERROR_RATE", "lots")
    monkeypatch.setenv("OPSBOT_HTTP_PORT", "70000")
    with pytest.raises(config.ConfigError) as err:
        config.load_settings()
    text = str(err.value)
    assert "OPSBOT_THRESHOLDS__ERROR_RATE (thresholds.error_rate)" in text
    assert "OPSBOT_HTTP_PORT (http_port)" in text


def test_unknown_yaml_key_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "opsbot.yaml"
    path.write_text("routes: {critcal: '#x'}\n")
    monkeypatch.setenv("OPSBOT_CONFIG", str(path))
    with pytest.raises(config.ConfigError, match=r"routes\.critcal\): unknown setting"):
        config.load_settings()


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPSBOT_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(config.ConfigError, match="OPSBOT_CONFIG"):
        config.load_settings()


def test_empty_llm_url_disables_the_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSBOT_LLM_BASE_URL", "")
    assert config.load_settings().llm_base_url is None
