"""`python -m ndpsim` is the `ndpsim` command."""

from ndpsim.cli import main

main()
