"""Issue an API key: the entry for API_KEYS_FILE (its hash, never the key) on stdout, the key itself apart.

    echo 'keys:' > keys.yaml                                   # once
    .venv/bin/python -m tools.apikey --id pharmacy-a --scopes evaluate,order-check >> keys.yaml
    .venv/bin/python -m tools.apikey --id pharmacy-b --scopes evaluate --key-file pharmacy-b.key >> keys.yaml

The key goes to stderr (shown once: give it to the caller), or with --key-file into a new file of its own
(mode 0600), so redirecting stdout into the keys file never stores the secret beside its hash.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys

import yaml

from service.web.auth import SCOPES, hash_key


def _write_key_file(path: str, key: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)   # never overwrites another key
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True, help="a name for the caller, safe to log")
    parser.add_argument("--scopes", required=True, help=f"comma-separated, from {','.join(SCOPES)}")
    parser.add_argument("--key-file", help="write the key into this new file (0600) instead of stderr")
    args = parser.parse_args(argv)
    scopes = [s for s in args.scopes.split(",") if s]
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        parser.error(f"unknown scopes {sorted(unknown)}")
    key = "ldn_" + secrets.token_urlsafe(32)
    if args.key_file:
        try:
            _write_key_file(args.key_file, key)
        except FileExistsError:
            parser.error(f"{args.key_file} exists: a key file is never overwritten")
        print(f"the key for {args.id} is in {args.key_file}", file=sys.stderr)
    else:
        print(f"the key for {args.id} (shown once, give it to the caller): {key}", file=sys.stderr)
    # One list item, to append under the `keys:` line of API_KEYS_FILE.
    sys.stdout.write(yaml.safe_dump([{"id": args.id, "sha256": hash_key(key), "scopes": scopes}],
                                    sort_keys=False, default_flow_style=None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
