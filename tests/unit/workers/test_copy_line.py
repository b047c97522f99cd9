"""COPY text-format lines: the fast path must give exactly what escaping every field gives."""

from datetime import UTC, datetime

import pytest

from workers.store.postgres import copy_line

T = datetime(2026, 1, 15, 12, 0, 30, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "line"),
    [
        (("SMabc", "sent", 3), "SMabc\tsent\t3\n"),
        (("a", None, None), "a\t\\N\t\\N\n"),
        ((T,), "2026-01-15 12:00:30.250000+00:00\n"),
        (("tab\there", None), "tab\\there\t\\N\n"),
        (("new\nline", "cr\r"), "new\\nline\tcr\\r\n"),
        (("back\\slash", None), "back\\\\slash\t\\N\n"),
        (("\\N",), "\\\\N\n"),  # a literal backslash-N is text, not NULL
        (('{"k":"v\\"q"}',), '{"k":"v\\\\"q"}\n'),
        (("",), "\n"),
    ],
)
def test_copy_line(values, line):
    assert copy_line(values) == line
