"""Subcommands of the core CLI (version, doctor, demo). Feature subcommands live in their own packages."""
