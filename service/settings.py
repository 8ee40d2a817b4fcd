"""Configuration from the environment (one place; documented in the README's configuration table)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .knowledge.base import PROJECT_ROOT


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind (make run, container entry point).")
    port: int = Field(8000, description="Port to bind.")
    workers: int = Field(1, ge=1, description="Worker processes (uvicorn supervises and restarts them).")
    rules_dir: Path = Field(PROJECT_ROOT / "rules", description="Knowledge base: rule files, sources, terminology.")
    schemas_dir: Path = Field(PROJECT_ROOT / "schemas", description="JSON Schemas (rule format, fact vocabulary).")
    contract_path: Path = Field(PROJECT_ROOT / "openapi.yaml", description="The OpenAPI contract the service serves.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Requests with larger bodies get 413.")
    log_level: str = Field("info", description="Python log level.")
    ldn_env: Literal["development", "production"] = Field(
        "development", description="production refuses to start without authentication, trusted proxy "
                                   "addresses and an audit HMAC secret.")
    database_url: str = Field(f"sqlite:///{PROJECT_ROOT / 'var' / 'audit.db'}",
                              description="Audit store: SQLite file (embedded default) or postgresql+psycopg://...")
    audit_hmac_secret: SecretStr | None = Field(
        None, description="Key for the HMAC of patient references in audit records. Development default: a "
                          "random key kept in var/audit-hmac.key.")
    audit_batch_size: int = Field(200, ge=1, description="Audit records written per batch.")
    audit_flush_interval_s: float = Field(0.5, gt=0, description="Longest wait before a partial batch is written.")
    audit_queue_max: int = Field(10000, ge=100, description="Audit records buffered in memory before drops.")
    api_keys_file: Path | None = Field(None, description="YAML/JSON file of API keys (id, sha256, scopes) for /v1/*.")
    auth_issuers_file: Path | None = Field(None, description="YAML/JSON file of JWT issuers (audience, jwks_file) "
                                                             "for /v1/*.")
    forwarded_allow_ips: str | None = Field(None, description="Addresses of the TLS-terminating proxy whose "
                                                              "X-Forwarded-* headers are trusted (comma-separated).")
