"""The guard every browser test ends with: console errors and failed requests fail the test."""

from __future__ import annotations

import socket

import pytest


def test_console_errors_and_failed_requests_fail_the_test(watched):
    with socket.socket() as s:            # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    watched.page.set_content("<p>guard</p>")
    watched.assert_clean()                                    # a quiet page passes
    watched.page.evaluate("console.error('something broke')")
    watched.page.evaluate(f"fetch('http://127.0.0.1:{port}/x').catch(() => null)")
    watched.page.wait_for_timeout(1000)
    with pytest.raises(AssertionError) as err:
        watched.assert_clean()
    text = str(err.value)
    assert "console error: something broke" in text and "request failed: GET" in text, text
