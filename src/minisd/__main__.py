"""`python -m minisd <command>`: generate images, apply a params profile."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="minisd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    from minisd import generate, profiles

    generate.add_arguments(commands.add_parser("generate", help="text -> sketch with a trained pipeline"))
    profiles.add_arguments(commands.add_parser("profile", help="write a profile's values into params.yaml"))
    args = parser.parse_args(argv)
    sys.exit(args.run(args) or 0)


if __name__ == "__main__":
    main()
