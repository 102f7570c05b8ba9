"""Reaching CDSE products: download, or read in place over S3 or from the eodata mount."""

from scanner.access.eodata import ACCESS_MODES, check_access, check_ready, is_remote, object_key

__all__ = ["ACCESS_MODES", "check_access", "check_ready", "is_remote", "object_key"]
