"""`python -m eventscope` runs the CLI."""

from eventscope.cli import run

run()
