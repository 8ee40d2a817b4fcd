"""Configuration from the environment (one place; documented in the README's configuration table)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .knowledge.base import PROJECT_ROOT


OPEN_NETWORK_CONSENT = "i-understand-anyone-on-this-network-can-call-it"


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
    shutdown_drain_s: float = Field(0, ge=0, le=300, description="On SIGTERM, how long a worker keeps serving "
                                                                  "with /readyz answering 503 before it stops.")
    ldn_allow_open_network: str | None = Field(
        None, description=f"Only on a closed test network: set to {OPEN_NETWORK_CONSENT} to serve without "
                          "authentication on an address other than loopback.")
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
    audit_shutdown_timeout_s: float = Field(10.0, gt=0, description="Longest wait to flush audit records at "
                                                                   "shutdown.")
    api_keys_file: Path | None = Field(None, description="YAML/JSON file of API keys (id, sha256, scopes) for /v1/*.")
    auth_issuers_file: Path | None = Field(None, description="YAML/JSON file of JWT issuers (audience, jwks_file) "
                                                             "for /v1/*.")
    auth_jwt_max_lifetime_s: float = Field(3600, gt=0, description="Longest time a /v1 bearer JWT may still be "
                                                                  "valid (exp - now): longer-lived tokens get 401.")
    forwarded_allow_ips: str | None = Field(None, description="Addresses of the TLS-terminating proxy whose "
                                                              "X-Forwarded-* headers are trusted (comma-separated).")
    # CDS Hooks (service/cds_hooks; README "CDS Hooks"). No trusted issuers: /cds-services is open (embedded default).
    cds_issuers_file: Path | None = Field(
        None, description="YAML/JSON file of trusted CDS Hooks clients: issuers, each with a jwks_file and/or "
                          "allow-listed jku URLs (and tenants). Set: every /cds-services call needs a valid JWT.")
    cds_jwt_leeway_s: float = Field(30, ge=0, le=300, description="Clock skew allowed on exp, iat and nbf of "
                                                                  "CDS Hooks JWTs.")
    cds_jwt_max_lifetime_s: float = Field(3600, gt=0, description="Longest time a CDS Hooks JWT may still be valid "
                                                                  "(exp - now); jti are remembered that long.")
    cds_jwks_cache_s: float = Field(3600, gt=0, description="How long a JWK Set fetched from a jku is cached.")
    cds_fhir_timeout_s: float = Field(3.0, gt=0, le=30, description="Timeout of each request to a CDS client's "
                                                                    "fhirServer (prefetch fallback).")
    cds_fhir_servers: str = Field("", description="Comma-separated FHIR base URLs the service may fetch from with "
                                                  "a client's token. Empty: any https server (http: loopback only).")
    cds_feedback_timeout_s: float = Field(5.0, gt=0, le=60, description="Longest wait for CDS Hooks feedback to be "
                                                                      "stored before a 503 (send it again).")
    public_base_url: str | None = Field(None, description="External base URL (https://cds.example.org) when behind a "
                                                          "proxy: the CDS Hooks JWT aud check and card links use it.")
    cors_origins: str = Field("", description="Comma-separated browser origins allowed by CORS (e.g. "
                                              "https://sandbox.cds-hooks.org). Empty: no CORS headers.")
    api_docs: bool | None = Field(None, description="Serve the API documentation (Swagger UI at /docs, ReDoc at "
                                                    "/redoc, assets from this service). Unset: on in development, "
                                                    "off in production.")

    @property
    def docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.ldn_env != "production"
