"""One Settings object, built once at start and passed explicitly to whatever needs it.

Sources, highest first: keyword arguments, environment (``OPSBOT_*``; Slack's own
``SLACK_BOT_TOKEN``, ``SLACK_APP_TOKEN``, ``SLACK_SIGNING_SECRET``), the YAML file named by
``OPSBOT_CONFIG``, then defaults. Defaults serve an in-cluster install. Nested sections are
set from the environment with ``__`` (``OPSBOT_THRESHOLDS__ERROR_RATE=0.02``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic import field_validator as _field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

ENV_PREFIX = "OPSBOT_"
CONFIG_FILE_ENV = "OPSBOT_CONFIG"


class ConfigError(ValueError):
    """Settings that cannot be used; each line names the setting (env var and YAML key)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Routes(_Section):
    """Which Slack channel gets alerts of each severity."""

    critical: str = "#genai-critical"
    """Channel for severity=critical."""
    warning: str = "#genai-warnings"
    """Channel for severity=warning."""
    default: str = "#genai-alerts"
    """Channel for everything else, and where chat and reports live."""


class Thresholds(_Section):
    """Limits of the daily checks (shared/SCENARIOS.md's table)."""

    error_rate: float = Field(0.01, ge=0, le=1)
    """Errors / requests over 24 h must stay below this fraction."""
    p99_latency_seconds: float = Field(5.0, gt=0)
    """The worst model's p99 over 24 h must stay below this."""
    gpu_utilization_min: float = Field(0.40, ge=0, le=1)
    """Mean GPU utilisation below this is a warning (idle spend)."""
    gpu_utilization_max: float = Field(0.80, ge=0, le=1)
    """Mean GPU utilisation above this is a warning (no headroom)."""
    gpu_memory: float = Field(0.90, gt=0, le=1)
    """Highest per-GPU mean framebuffer use must stay below this fraction."""
    vllm_memory_slack: float = Field(0.05, ge=0, le=1)
    """For a vLLM GPU, allowed use above its gpu-memory-utilization."""
    daily_budget_usd: float = Field(1000.0, gt=0)
    """The cluster's spend over the last 24 h must stay under this."""


class Approvals(_Section):
    """Who may approve fixes, and how."""

    users: list[str] = []
    """Slack user ids allowed to approve."""
    usergroup: str | None = None
    """A Slack user group id whose members may approve (checked at click time)."""
    two_person_rule: bool = True
    """The proposer may not approve their own proposal."""
    channels: list[str] = []
    """Channels where approvals are accepted; empty means the alert channels."""
    expiry_minutes: int = Field(30, gt=0)
    """A proposal not approved within this many minutes expires."""
    protected: list[str] = []
    """Extra targets no fix may touch (`KIND/NAMESPACE/NAME`, `node/NAME`)."""


class Fixes(_Section):
    """Bounds and choices of the fix catalog (shared/SCENARIOS.md's fix codes)."""

    model_cache_pvc: str = "model-cache-pvc"
    """PVC that use-model-cache-pvc mounts; it must exist and be Bound."""
    gpu_alternatives: list[str] = ["p4de.24xlarge", "p5.48xlarge"]
    """Instance types add-instance-types adds to a NodePool."""
    extra_zones: list[str] = []
    """Zones add-zones may add besides those the cluster's nodes are in."""
    nodepool_gpu_limit_max: int = Field(1024, gt=0)
    """raise-nodepool-limit never sets a NodePool's nvidia.com/gpu limit above this."""
    replicas_max_factor: float = Field(2.0, ge=1)
    """scale-up stops at this many times the replicas counted when the fix was proposed."""
    min_replicas: int = Field(1, ge=1)
    """scale-down never goes below this."""


class ClusterSettings(_Section):
    """Another cluster the bot watches (the default one is described by the top-level fields)."""

    name: str
    kubeconfig: Path | None = None
    kube_context: str | None = None
    """Context within the kubeconfig that reaches this cluster."""
    prometheus_url: str
    alertmanager_url: str
    kubecost_url: str
    kubecost_path: str = "/model/allocation"
    log_groups: list[str] = []
    aws_region: str = "ap-northeast-2"


class Settings(BaseSettings):
    """Everything opsbot can be told; see each field's docstring."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
        frozen=True,
    )

    # Slack
    slack_bot_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    """Bot token (xoxb-…)."""
    slack_app_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token")
    )
    """App-level token (xapp-…); when set, the bot uses Socket Mode."""
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret")
    )
    """Verifies HTTP events from Slack when not in Socket Mode."""
    slack_api_url: str = "https://slack.com/api/"
    """Slack Web API base URL (the lab points this at its own server)."""

    # The cluster and its services
    cluster_name: str = "prod"
    """Name used in messages and to route alerts that carry a `cluster` label."""
    kubeconfig: Path | None = None
    """Kubeconfig file; unset means in-cluster credentials."""
    kube_context: str | None = None
    """Context within the kubeconfig; unset means its current context."""
    namespace: str = "opsbot"
    """The bot's own namespace (Leases, its protected Deployment)."""
    inference_namespace: str = "inference"
    """Where the model servers run."""
    prometheus_url: str = "http://prometheus-server.monitoring.svc:80"
    alertmanager_url: str = "http://alertmanager.monitoring.svc:9093"
    kubecost_url: str = "http://kubecost-cost-analyzer.kubecost.svc:9090"
    kubecost_path: str = "/model/allocation"
    """Allocation API path; OpenCost serves it as /allocation."""
    aws_region: str = "ap-northeast-2"
    log_groups: Annotated[list[str], NoDecode] = ["/eks/genai-platform/inference"]
    """CloudWatch log groups to search; comma-separated in the environment."""

    # The bot's own model
    llm_base_url: str | None = "http://vllm-opsbot.opsbot.svc:8000/v1"
    """vLLM's OpenAI-compatible API; empty disables the LLM (runbook detectors still answer)."""
    llm_model: str = "Qwen/Qwen2.5-14B-Instruct"
    llm_api_key: SecretStr = SecretStr("EMPTY")
    llm_context_tokens: int | None = Field(None, gt=0)
    """Context window; unset means ask the server (vLLM reports max_model_len)."""
    llm_timeout_seconds: float = Field(60.0, gt=0)
    """Per model call; past it the answer falls back to the runbook detectors."""
    llm_max_tokens: int = Field(1024, gt=0)
    """Most tokens one model answer may have (``max_completion_tokens``)."""
    llm_streaming: bool = True
    """Stream answers (usage is still reported: ``stream_options.include_usage``)."""
    agent_max_steps: int = Field(6, gt=0)
    """Model calls per answer; at the limit the agent answers from what it gathered."""
    agent_memory_turns: int = Field(10, gt=0)
    """Exchanges of one thread kept as context for follow-ups (older ones are dropped)."""

    # Tools
    tool_timeout_seconds: float = Field(10.0, gt=0)
    """Timeout of every call to an outside system."""
    tool_output_tokens: int = Field(2000, gt=0)
    """Budget of each tool result's rendered text."""

    # Serving and storage
    http_host: str = "0.0.0.0"  # noqa: S104 - a pod serves on all interfaces
    http_port: int = Field(8080, ge=0, le=65535)
    webhook_token: SecretStr | None = None
    """Bearer token Alertmanager must send to POST /alertmanager."""
    db_path: Path = Path("/var/lib/opsbot/opsbot.sqlite")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    timezone: str = "Asia/Seoul"

    clusters: list[ClusterSettings] = []
    """More clusters, each with its own kube context and service URLs (YAML file)."""

    routes: Routes = Routes()
    thresholds: Thresholds = Thresholds()
    approvals: Approvals = Approvals()
    fixes: Fixes = Fixes()

    @_field_validator("log_groups", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @_field_validator("clusters")
    @classmethod
    def _unique_cluster_names(cls, value: list[ClusterSettings]) -> list[ClusterSettings]:
        names = [c.name for c in value]
        if len(set(names)) != len(names):
            raise ValueError(f"cluster names must be unique: {names}")
        return value

    @_field_validator("llm_base_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _default_cluster_not_repeated(self) -> Settings:
        if any(c.name == self.cluster_name for c in self.clusters):
            raise ValueError(
                f"clusters: {self.cluster_name!r} is the default cluster (cluster_name); "
                "list only the other clusters"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build the Settings once; a problem raises ConfigError naming each bad setting."""
    config_file = os.environ.get(CONFIG_FILE_ENV)
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"{CONFIG_FILE_ENV}: no such file {config_file!r}")
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise ConfigError(_describe(e)) from e


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        message = "unknown setting" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"{_setting_name(loc)}: {message}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def _setting_name(loc: list[str]) -> str:
    """Both spellings of a setting: its environment variable and its YAML key."""
    if not loc:
        return "(settings)"
    if loc[0].isupper():  # a validation alias such as SLACK_BOT_TOKEN
        return loc[0]
    env = ENV_PREFIX + "__".join(part.upper() for part in loc)
    return f"{env} ({'.'.join(loc)})"
