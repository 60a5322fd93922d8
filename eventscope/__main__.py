"""`python -m eventscope` runs the CLI."""

from eventscope.cli import main

main()
