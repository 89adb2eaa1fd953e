"""`python -m minisd <command>`: generate images, try them in a browser, apply a params profile."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="minisd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    from minisd import demo, generate, profiles

    generate.add_arguments(commands.add_parser("generate", help="text -> sketch with a trained pipeline"))
    demo.add_arguments(commands.add_parser("demo", help="a local web page: type a prompt, see sketches"))
    profiles.add_arguments(commands.add_parser("profile", help="write a profile's values into params.yaml"))
    args = parser.parse_args(argv)
    sys.exit(args.run(args) or 0)


if __name__ == "__main__":
    main()
