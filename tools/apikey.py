"""Issue an API key: prints the key once (give it to the caller) and the entry for API_KEYS_FILE (store it).

    .venv/bin/python -m tools.apikey --id pharmacy-a --scopes evaluate,order-check
"""
from __future__ import annotations

import argparse
import secrets

import yaml

from service.web.auth import SCOPES, hash_key


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True, help="a name for the caller, safe to log")
    parser.add_argument("--scopes", required=True, help=f"comma-separated, from {','.join(SCOPES)}")
    args = parser.parse_args()
    scopes = [s for s in args.scopes.split(",") if s]
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        parser.error(f"unknown scopes {sorted(unknown)}")
    key = "ldn_" + secrets.token_urlsafe(32)
    print(f"# the key (shown once): {key}")
    print(yaml.safe_dump({"keys": [{"id": args.id, "sha256": hash_key(key), "scopes": scopes}]}, sort_keys=False))


if __name__ == "__main__":
    main()
