"""The characters a rejection's reason may carry in an SQS String message attribute.

SQS accepts #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and #x10000-#x10FFFF in message
attributes and bodies. The shared pattern (common.closing) lists the code points outside that
set rather than negating it: the negated class took 6 ms of CPU to compile at every cold start.
"""

from __future__ import annotations

from classifier.logic import _attribute_safe
from common.closing import NOT_SQS_CHARS

SQS_ACCEPTS = ((0x9, 0x9), (0xA, 0xA), (0xD, 0xD), (0x20, 0xD7FF), (0xE000, 0xFFFD))
SQS_ACCEPTS += ((0x10000, 0x10FFFF),)


def accepted(code_point: int) -> bool:
    return any(low <= code_point <= high for low, high in SQS_ACCEPTS)


def test_the_pattern_matches_exactly_the_code_points_sqs_refuses() -> None:
    # GIVEN every Unicode code point
    every = [chr(code_point) for code_point in range(0x110000)]

    # WHEN the pattern is tried on each
    matched = [char for char in every if NOT_SQS_CHARS.fullmatch(char)]

    # THEN it matches the refused ones and no other
    assert matched == [char for char in every if not accepted(ord(char))]
    assert len(matched) == 2_079


def test_a_reason_keeps_what_sqs_accepts_and_replaces_the_rest() -> None:
    # GIVEN a reason with a tab, a NUL, a lone surrogate, U+FFFE and an emoji
    reason = "a\tb\x00c\ud800d\ufffee\U0001f431"

    # WHEN it is made safe for a message attribute
    # THEN only the refused characters became "?"
    assert _attribute_safe(reason) == "a\tb?c?d?e\U0001f431"
