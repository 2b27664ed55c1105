"""Settings: explicit argument, then environment (``ADPILOT_*``, ``MISTRAL_*``), then default.

One frozen object; secrets are ``SecretStr`` so they never show in a repr or a log.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PlatformChoice = Literal["sandbox", "google_ads", "meta"]

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = PACKAGE_ROOT / "policies" / "default.yaml"


class TierSettings(BaseSettings):
    """Model and sampling parameters of one model tier."""

    model_config = SettingsConfigDict(frozen=True)

    model: str
    fallback: str | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 2048


class Settings(BaseSettings):
    """All of adpilot's configuration."""

    model_config = SettingsConfigDict(env_prefix="ADPILOT_", frozen=True, extra="ignore",
                                      env_nested_delimiter="__")

    home: Path = Field(default_factory=lambda: Path.home() / ".adpilot",
                       description="Where the warehouse, checkpoints, audit log and caches live.")
    actor: str | None = Field(default=None, description="Who is acting (ADPILOT_ACTOR).")
    policy_file: Path = Field(default=DEFAULT_POLICY, description="The policy YAML in force.")
    jobs_file: Path | None = Field(default=None, description="Scheduled jobs YAML.")

    # Which implementation serves each account: {"<account_id>": "sandbox" | "google_ads" | "meta"}.
    platforms: dict[str, PlatformChoice] = Field(default_factory=dict)

    mistral_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MISTRAL_API_KEY", "ADPILOT_MISTRAL_API_KEY"))
    mistral_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("MISTRAL_BASE_URL", "ADPILOT_MISTRAL_BASE_URL"))

    planner_model: str = "mistral-large-latest"
    planner_fallback: str | None = None
    bulk_model: str = "open-mixtral-8x22b"
    bulk_fallback: str | None = "mistral-small-latest"
    code_model: str = "codestral-latest"
    code_fallback: str | None = None
    embedding_model: str = "mistral-embed"
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 2048
    bulk_temperature: float = 0.7
    # Per-tier sampling; None means the shared temperature / top_p / max_tokens above.
    planner_temperature: float | None = None
    planner_top_p: float | None = None
    planner_max_tokens: int | None = None
    bulk_top_p: float | None = None
    bulk_max_tokens: int | None = None
    code_temperature: float | None = None
    code_top_p: float | None = None
    code_max_tokens: int | None = None

    request_timeout_s: float = 60.0
    max_retries: int = 4
    retry_base_delay_s: float = 1.0
    # Longest single wait between retries, whatever Retry-After asks for.
    retry_max_wait_s: float = 60.0
    model_cache: bool = Field(default=True, description="Cache deterministic (temperature 0) model responses.")
    requests_per_second: float = 5.0
    tokens_per_second: float = 50_000.0

    # EUR per million tokens (input, output). Public list prices; override per deployment.
    prices: dict[str, tuple[Decimal, Decimal]] = Field(default_factory=lambda: {
        "mistral-large-latest": (Decimal("2"), Decimal("6")),
        "open-mixtral-8x22b": (Decimal("2"), Decimal("6")),
        "mistral-small-latest": (Decimal("0.2"), Decimal("0.6")),
        "codestral-latest": (Decimal("0.3"), Decimal("0.9")),
        "mistral-embed": (Decimal("0.1"), Decimal("0")),
    })

    google_ads_yaml: Path | None = Field(default=None, description="Path of google-ads.yaml.")
    # Manager (MCC) account per client account: {"1234567890": "9876543210"} → login-customer-id header.
    google_ads_login_customer_ids: dict[str, str] = Field(default_factory=dict)
    meta_app_id: str | None = Field(default=None, validation_alias=AliasChoices("META_APP_ID", "ADPILOT_META_APP_ID"))
    meta_app_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("META_APP_SECRET", "ADPILOT_META_APP_SECRET"))
    meta_access_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("META_ACCESS_TOKEN", "ADPILOT_META_ACCESS_TOKEN"))
    meta_api_version: str = "v24.0"
    meta_page_id: str | None = Field(default=None, description="Facebook page that publishes new Meta ads.")

    @field_validator("home", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse file."""
        return self.home / "warehouse.duckdb"

    @property
    def checkpoints_path(self) -> Path:
        """The LangGraph SQLite checkpointer."""
        return self.home / "checkpoints.sqlite"

    @property
    def audit_path(self) -> Path:
        """The append-only, hash-chained audit log."""
        return self.home / "audit.sqlite"

    @property
    def chroma_path(self) -> Path:
        """The Chroma store for brand knowledge."""
        return self.home / "chroma"

    def platform_for(self, account_id: str) -> PlatformChoice:
        """Which implementation serves an account; the sandbox unless configured otherwise."""
        return self.platforms.get(account_id, "sandbox")

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with explicit values (the CLI's flags) taking precedence."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        return self.model_copy(update=clean)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit non-None arguments taking precedence."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
