"""Photos and hashtags of the posts on one search page, photo by photo."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from producer.page import RejectedItem, SearchPage
from producer.validation import shorten
from tweetlens_xapi.models import PHOTO, MediaType, XMedia, XPost

SkipReason = Literal["no_media", "no_photos"]
# Why one photo of a post cannot be published (each is also a dead letter's ``error``).
PhotoError = Literal[
    "MediaMissing", "InvalidMedia", "UnknownMediaType", "PhotoWithoutUrl", "InvalidPhotoMessage"
]

# The media types X documents for posts; only photos are classified.
KNOWN_MEDIA_TYPES = frozenset(get_args(MediaType))


class Photo(BaseModel):
    model_config = ConfigDict(frozen=True)

    media_key: str
    url: str


class PhotoProblem(BaseModel):
    """A media key of a post that should be a photo but cannot be published."""

    model_config = ConfigDict(frozen=True)

    media_key: str
    error: PhotoError
    reason: str


class PostPhotos(BaseModel):
    """One post with at least one photo, or one media key that should have been one."""

    model_config = ConfigDict(frozen=True)

    post_id: str
    text: str
    hashtags: tuple[str, ...]
    photos: tuple[Photo, ...]
    problems: tuple[PhotoProblem, ...] = ()


class SkippedPost(BaseModel):
    """A sound post with nothing to classify: no media, or only videos and GIFs."""

    model_config = ConfigDict(frozen=True)

    post_id: str
    reason: SkipReason


class Extraction(BaseModel):
    model_config = ConfigDict(frozen=True)

    posts: tuple[PostPhotos, ...]
    skipped: tuple[SkippedPost, ...]


def extract_photos(page: SearchPage) -> Extraction:
    """Split a page's valid posts into posts with photos (or photo problems) and skipped ones."""
    rejected_media = {item.key: item for item in page.rejected_media if item.key is not None}
    posts: list[PostPhotos] = []
    skipped: list[SkippedPost] = []
    for post in page.posts:
        keys = list(dict.fromkeys(post.attachments.media_keys if post.attachments else []))
        if not keys:
            skipped.append(SkippedPost(post_id=post.id, reason="no_media"))
            continue
        photos: list[Photo] = []
        problems: list[PhotoProblem] = []
        for key in keys:
            found = _photo(key, page, rejected_media)
            if isinstance(found, Photo):
                photos.append(found)
            elif found is not None:
                problems.append(found)
        if not photos and not problems:
            skipped.append(SkippedPost(post_id=post.id, reason="no_photos"))
            continue
        posts.append(_post_photos(post, photos, problems))
    return Extraction(posts=tuple(posts), skipped=tuple(skipped))


def _post_photos(post: XPost, photos: list[Photo], problems: list[PhotoProblem]) -> PostPhotos:
    hashtags = tuple(
        dict.fromkeys(tag.tag for tag in (post.entities.hashtags if post.entities else []))
    )
    return PostPhotos(
        post_id=post.id,
        text=post.text,
        hashtags=hashtags,
        photos=tuple(photos),
        problems=tuple(problems),
    )


def _photo(
    key: str, page: SearchPage, rejected_media: dict[str, RejectedItem]
) -> Photo | PhotoProblem | None:
    """The photo behind a media key, why it cannot be one, or None for a video or a GIF."""
    media = page.media.get(key)
    if media is not None:
        return _from_media(key, media)
    if key in rejected_media:
        return PhotoProblem(media_key=key, error="InvalidMedia", reason=rejected_media[key].error)
    # X drops media it cannot hydrate (deleted or withheld) and usually says so in ``errors``.
    reported = _reported_error(key, page.errors)
    reason = f"media key {key} is not in includes.media"
    return PhotoProblem(
        media_key=key,
        error="MediaMissing",
        reason=shorten(f"{reason}; X: {reported}") if reported else reason,
    )


def _from_media(key: str, media: XMedia) -> Photo | PhotoProblem | None:
    if media.type == PHOTO:
        if media.url:
            return Photo(media_key=key, url=media.url)
        return PhotoProblem(media_key=key, error="PhotoWithoutUrl", reason="photo without url")
    if media.type not in KNOWN_MEDIA_TYPES:
        # It may be a photo under a new name: someone should look rather than lose it.
        return PhotoProblem(
            media_key=key,
            error="UnknownMediaType",
            reason=f"unknown media type {media.type[:40]!r}",
        )
    return None


def _reported_error(key: str, errors: tuple[Any, ...]) -> str | None:
    for error in errors:
        if isinstance(error, dict) and key in (error.get("resource_id"), error.get("value")):
            detail = error.get("detail") or error.get("title")
            return str(detail) if detail is not None else None
    return None
