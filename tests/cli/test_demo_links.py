"""`make demo`'s links survive copying: each on a line of its own, whole, however narrow the
terminal (they were printed inside a Rich panel that wrapped them, so a copied link carried
half a key)."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

from cityops.cli.demo import demo_links

KEY = "co_" + "x" * 43


def test_every_link_is_one_whole_line():
    base = "http://127.0.0.1:8080"
    lines = demo_links(base, KEY, "co_" + "f" * 43, "co_" + "a" * 43, "Lu Chaowei")
    for link in (f"{base}/screen#key={KEY}", f"{base}/console#key={KEY}",
                 f"{base}/field#key=co_{'f' * 43}", base):
        assert link in lines
    assert "Field page (Lu Chaowei):" in lines
    # Printed as the demo prints them (print, which never wraps): each link a line, whole.
    sink = io.StringIO()
    with redirect_stdout(sink):
        for line in lines:
            print(line)
    printed = sink.getvalue().splitlines()
    assert f"{base}/screen#key={KEY}" in printed
    assert f"{base}/console#key={KEY}" in printed


def test_no_field_page_without_staff():
    lines = demo_links("http://h:1", KEY, None, KEY)
    assert not any("field" in line for line in lines)
