"""`python -m planner` runs the CLI."""

from planner.main import main

main()
