"""The FUSE mount: pyfuse3 handlers over snapshots (fs/operations.py puts them together)."""
