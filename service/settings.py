"""Configuration from the environment (one place; documented in the README's configuration table)."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
