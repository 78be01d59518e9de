"""dbrs: a MongoDB replica set on plain systemd hosts."""

__version__ = "0.1.0"
