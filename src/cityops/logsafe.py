"""Log lines that cannot be forged and carry no phone or ID number.

Log messages carry what callers sent: an incident's title, a path, a device id. A newline in
one of them would start what reads as a new log line ("... INFO cityops: key k_admin revoked"),
and a carriage return or an escape sequence could hide text on a terminal. Every record's
message therefore has its control characters (C0 and C1, DEL, and the Unicode line and
paragraph separators) written as escapes (`\\n`, `\\r`, `\\t`, `\\x1b`, `\\u2028`) and its phone
and ID numbers masked (`cityops.domain.privacy.mask_text`).

A traceback or stack attached to a record keeps its line breaks, which are its structure (and
which a log reader expects to see indented under the record's own line); the other control
characters are escaped there too, and the numbers masked.

A filter attached to a handler only sees what reaches that handler, and handlers come and go
(the CLI's, uvicorn's, a test's capture), so `install_safe_logging` runs the filter inside the
log record factory: every record, from every logger, is made safe once, before any handler
sees it. The node (serve side) and the CLI install it at start.
"""

from __future__ import annotations

import logging
import re
import threading

from cityops.domain.privacy import mask_text

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_lock = threading.Lock()
_installed: SafeLogFilter | None = None


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with control characters written as escapes (newlines kept if asked)."""
    return (_CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL).sub(_escape, text)


def safe_text(text: str) -> str:
    return escape_controls(mask_text(text))


class SafeLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the handler's to report, as it would be
            return True
        safe = safe_text(message)
        if safe != message:
            record.msg, record.args = safe, None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = escape_controls(mask_text(text), keep_newlines=True)
        if record.stack_info:
            record.stack_info = escape_controls(mask_text(record.stack_info),
                                                keep_newlines=True)
        return True


def install_safe_logging() -> SafeLogFilter:
    """Idempotent; also attaches the filter to the root logger's handlers, for records made
    by a factory someone installs after this one."""
    global _installed
    with _lock:
        if _installed is None:
            safe = SafeLogFilter()
            made_by = logging.getLogRecordFactory()

            def factory(*args, **kwargs) -> logging.LogRecord:
                record = made_by(*args, **kwargs)
                safe.filter(record)
                return record

            logging.setLogRecordFactory(factory)
            _installed = safe
        for handler in logging.getLogger().handlers:
            if _installed not in handler.filters:
                handler.addFilter(_installed)
        return _installed
