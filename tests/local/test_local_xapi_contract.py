"""The tooling writes X API pages; the producer reads them: the reader's fields are the contract.

``tweetlens.demo_stream`` (the writer: demo and chaos streams) may not import the producer's
models (``functions/`` is not on the CLI's path), so both sides have their own. The producer's
``producer.xapi_models`` say what is read; this test fails as soon as it reads a field the
writer does not write, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from producer import xapi_models as reader
from tweetlens import demo_stream as writer

# Fields the producer reads that the streams leave out on purpose.
NOT_WRITTEN = {
    # X lists partial errors here; the streams model a stream without any.
    ("XPageEnvelope", "errors"),
}

PAIRS = [
    (reader.XPageEnvelope, writer.PageBody),
    (reader.XIncludesEnvelope, writer.Includes),
    (reader.XPost, writer.Post),
    (reader.XMedia, writer.Media),
    (reader.XMeta, writer.Meta),
    (reader.XEntities, writer.Entities),
    (reader.XHashtag, writer.Hashtag),
    (reader.XAttachments, writer.Attachments),
]


@pytest.mark.parametrize(
    ("read", "written"), PAIRS, ids=[read.__name__ for read, _written in PAIRS]
)
def test_every_field_the_producer_reads_is_written(
    read: type[BaseModel], written: type[BaseModel]
) -> None:
    # GIVEN a model the producer reads a page part with, and the streams' model of that part
    # WHEN their fields are compared
    missing = {
        name
        for name in read.model_fields
        if name not in written.model_fields and (read.__name__, name) not in NOT_WRITTEN
    }
    # THEN the streams write every field the producer reads
    assert missing == set()
