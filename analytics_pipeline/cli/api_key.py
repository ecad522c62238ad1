"""Create, list or revoke API keys: `python -m analytics_pipeline.cli.api_key --scope client=c-1`.

--scope prints a new key once; only its SHA-256 is stored (ANALYTICS_API_KEYS_FILE locally,
the ANALYTICS_API_KEYS_SECRET secret on AWS). --list shows each key's id, scope and creation
time; --revoke <id, id prefix or key> removes one key, refused from the next request on
(within a minute on AWS, where the API caches the secret).
"""

from __future__ import annotations

import argparse

from analytics_pipeline.serving.deployment import key_store_for
from analytics_pipeline.serving.scopes import Scope
from analytics_pipeline.settings import Settings


def _scope(text: str) -> Scope:
    try:
        return Scope.parse(text)
    except ValueError as error:  # argparse shows only an ArgumentTypeError's own message
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--scope",
        type=_scope,
        help="create a key: global, client=<id> or reseller=<client id>/<reseller id>",
    )
    action.add_argument(
        "--revoke",
        metavar="KEY_ID",
        help="remove a key: its id (as --list shows), a unique prefix of it, or the key itself",
    )
    action.add_argument("--list", action="store_true", help="each key's id, scope and creation")
    args = parser.parse_args(argv)
    store = key_store_for(Settings.from_env())
    if args.scope is not None:
        print(store.add_key(args.scope))
    elif args.revoke is not None:
        try:
            entry = store.revoke(args.revoke)
        except ValueError as error:
            parser.exit(1, f"api_key: {error}\n")
        print(f"revoked {entry['id']} ({entry['scope']}, created {entry['created']})")
    else:
        for entry in store.entries():
            print(f"{entry['id']}  {entry['scope']}  {entry['created']}")


if __name__ == "__main__":
    main()
