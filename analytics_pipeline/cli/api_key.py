"""Create an API key: `python -m analytics_pipeline.cli.api_key --scope client=c-1`.

Prints the key once; only its SHA-256 is stored (ANALYTICS_API_KEYS_FILE locally, the
ANALYTICS_API_KEYS_SECRET secret on AWS).
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
    parser.add_argument(
        "--scope",
        required=True,
        type=_scope,
        help="global, client=<id> or reseller=<client id>/<reseller id>",
    )
    args = parser.parse_args(argv)
    print(key_store_for(Settings.from_env()).add_key(args.scope))


if __name__ == "__main__":
    main()
