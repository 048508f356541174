"""The tooling writes X API pages; the producer reads them, with the same models.

Both sides import ``tweetlens_xapi.models`` (one file, see
``tests/unit/packaging/test_xapi_models_packaging.py``), so no field can be written under one
name and read under another. What the models alone cannot say is that a written page survives
the trip: dumped to the replay recording, read back by the producer's recording loader and page
reader, it must give the very posts, media and meta that were built, with nothing set aside.
"""

from __future__ import annotations

import pytest

from producer.page import SearchPage, read_page_object
from tweetlens.chaos.config import ChaosConfig
from tweetlens.chaos.stream import build_chaos_stream
from tweetlens.demo_stream import Recording, build_recording
from tweetlens_xapi.recording import ReplayRecording

BASE = "https://localhost:4443"
STREAMS = {
    "demo": lambda: build_recording(BASE),
    # 45 posts at 10 a page leave a short last page.
    "chaos": lambda: (
        build_chaos_stream(BASE, ChaosConfig(seed=5, posts=45, page_size=10)).recording
    ),
}


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_every_written_page_reads_back_as_built(stream: str) -> None:
    # GIVEN a stream's recording, as the tooling builds it
    recording: Recording = STREAMS[stream]()

    # WHEN it is written as the replay recording and the producer reads each page of it
    replayed = ReplayRecording.model_validate_json(recording.to_json())
    read = [read_page_object(page.json_body) for page in replayed.pages]

    # THEN every page is a page, with the posts, media and meta that were built, none rejected
    assert all(isinstance(page, SearchPage) for page in read)
    pages = [page for page in read if isinstance(page, SearchPage)]
    assert len(pages) == len(recording.pages)
    for page, built in zip(pages, recording.pages, strict=True):
        written_media = built.body.includes.media if built.body.includes else []
        assert (page.rejected_posts, page.rejected_media, page.errors) == ((), (), ())
        assert list(page.posts) == built.body.data
        assert page.media == {media.media_key: media for media in written_media}
        assert page.meta == built.body.meta
