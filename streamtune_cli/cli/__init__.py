"""Command-line layer: Typer commands that parse arguments, call the core, and render with rich."""
