"""`python -m streamtune_cli` runs the CLI."""

from streamtune_cli.cli.app import main

main()
