"""The command line: the entry point, the typer app, the fast parser that answers without it, what is printed, and
the docker shim's entry point."""
