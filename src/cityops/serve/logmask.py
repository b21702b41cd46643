"""Phone and ID numbers never reach a log: every record is masked as it is made.

`MaskingFilter` rewrites a record's message (and its formatted traceback) with the masking of
`cityops.domain.privacy`. A filter attached to a handler only sees what reaches that handler,
and handlers come and go (the CLI's, uvicorn's, a test's capture), so `install_log_masking`
runs the filter inside the log record factory instead: every record, from every logger, is
masked once, before any handler sees it.
"""

from __future__ import annotations

import logging
import threading

from cityops.domain.privacy import mask_text

_lock = threading.Lock()
_installed: MaskingFilter | None = None


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the handler's to report, as it would be
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


def install_log_masking() -> MaskingFilter:
    """Idempotent; also attaches the filter to the root logger's handlers, for records made
    by a factory someone installs after this one."""
    global _installed
    with _lock:
        if _installed is None:
            masking = MaskingFilter()
            made_by = logging.getLogRecordFactory()

            def factory(*args, **kwargs) -> logging.LogRecord:
                record = made_by(*args, **kwargs)
                masking.filter(record)
                return record

            logging.setLogRecordFactory(factory)
            _installed = masking
        for handler in logging.getLogger().handlers:
            if _installed not in handler.filters:
                handler.addFilter(_installed)
        return _installed
