"""Command-line interface: ``s5geo <subcommand>``."""
