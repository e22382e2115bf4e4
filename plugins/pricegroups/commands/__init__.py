"""CLI commands, one module each (see pricegroups.cli)."""
