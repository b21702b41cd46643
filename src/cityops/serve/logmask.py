"""Phone and ID numbers never reach a log: kept under its older names, the filter is now
`cityops.logsafe`'s, which also escapes control characters so no message can forge a line."""

from __future__ import annotations

from cityops.logsafe import SafeLogFilter as MaskingFilter
from cityops.logsafe import install_safe_logging as install_log_masking

__all__ = ["MaskingFilter", "install_log_masking"]
