"""Photos and hashtags of the posts on one search page."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from producer.xapi_models import XMedia, XSearchResponse

SkipReason = Literal["no_media", "no_photos", "missing_media", "unusable_media"]

# The media types X documents for posts; only photos are classified.
KNOWN_MEDIA_TYPES = frozenset({"photo", "video", "animated_gif"})


class Photo(BaseModel):
    model_config = ConfigDict(frozen=True)

    media_key: str
    url: str


class PostPhotos(BaseModel):
    """One post with at least one photo."""

    model_config = ConfigDict(frozen=True)

    post_id: str
    text: str
    hashtags: tuple[str, ...]
    photos: tuple[Photo, ...]


class SkippedPost(BaseModel):
    model_config = ConfigDict(frozen=True)

    post_id: str
    reason: SkipReason
    missing_media_keys: tuple[str, ...] = ()
    # "<media key>: <why>" for media that is neither a usable photo nor a known other type.
    unusable_media: tuple[str, ...] = ()


class Extraction(BaseModel):
    model_config = ConfigDict(frozen=True)

    posts: tuple[PostPhotos, ...]
    skipped: tuple[SkippedPost, ...]


def extract_photos(page: XSearchResponse) -> Extraction:
    """Split a page into posts with photos and posts skipped, with the reason for each."""
    media_by_key: dict[str, XMedia] = {}
    if page.includes is not None:
        media_by_key = {media.media_key: media for media in page.includes.media}

    posts: list[PostPhotos] = []
    skipped: list[SkippedPost] = []
    for post in page.data:
        keys = post.attachments.media_keys if post.attachments else []
        if not keys:
            skipped.append(SkippedPost(post_id=post.id, reason="no_media"))
            continue
        missing = tuple(key for key in keys if key not in media_by_key)
        if missing:
            # X drops media it cannot hydrate (deleted or withheld) and reports it in
            # ``errors``; such a post is usually gone, so none of it is published.
            skipped.append(
                SkippedPost(post_id=post.id, reason="missing_media", missing_media_keys=missing)
            )
            continue
        photos = tuple(
            Photo(media_key=key, url=media.url)
            for key in keys
            if (media := media_by_key[key]).type == "photo" and media.url
        )
        if not photos:
            # A video or a GIF is an ordinary post without photos; an unknown type or a photo
            # without url means X's answer changed shape, which someone should hear about.
            unusable = tuple(
                problem for key in keys if (problem := _unusable(key, media_by_key[key]))
            )
            if unusable:
                skipped.append(
                    SkippedPost(post_id=post.id, reason="unusable_media", unusable_media=unusable)
                )
            else:
                skipped.append(SkippedPost(post_id=post.id, reason="no_photos"))
            continue
        hashtags = tuple(
            dict.fromkeys(tag.tag for tag in (post.entities.hashtags if post.entities else []))
        )
        posts.append(PostPhotos(post_id=post.id, text=post.text, hashtags=hashtags, photos=photos))
    return Extraction(posts=tuple(posts), skipped=tuple(skipped))


def _unusable(key: str, media: XMedia) -> str | None:
    if media.type not in KNOWN_MEDIA_TYPES:
        return f"{key}: unknown media type {media.type[:40]!r}"
    if media.type == "photo" and not media.url:
        return f"{key}: photo without url"
    return None
