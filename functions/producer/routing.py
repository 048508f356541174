"""Fan-out: one ``PhotoMessage`` per (post, photo, route) whose hashtags the post carries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from common.messages import MAX_TEXT_LENGTH, PhotoMessage
from producer.extract import Photo, PhotoError, PostPhotos
from producer.validation import describe


class RejectedPhoto(BaseModel):
    """One photo of a post that cannot be published on one route, and why."""

    model_config = ConfigDict(frozen=True)

    post_id: str
    media_key: str
    route: str
    error: PhotoError
    reason: str


class RoutedPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: dict[str, list[PhotoMessage]]
    unrouted: tuple[str, ...]
    rejected: tuple[RejectedPhoto, ...]


class Router:
    """Maps a post's hashtags to routes, case-insensitively, in configuration order."""

    def __init__(self, routes: Mapping[str, Sequence[str]]) -> None:
        self._routes = {
            route: frozenset(tag.lower() for tag in tags) for route, tags in routes.items()
        }

    def routes_for(self, hashtags: Iterable[str]) -> list[str]:
        tags = {tag.lower() for tag in hashtags}
        return [route for route, route_tags in self._routes.items() if tags & route_tags]

    def route_page(self, posts: Iterable[PostPhotos]) -> RoutedPage:
        """Messages per route; each photo that cannot be one costs only itself, per route."""
        messages: dict[str, list[PhotoMessage]] = {route: [] for route in self._routes}
        unrouted: list[str] = []
        rejected: list[RejectedPhoto] = []
        for post in posts:
            routes = self.routes_for(post.hashtags)
            if not routes:
                unrouted.append(post.post_id)
                continue
            for route in routes:
                rejected.extend(
                    RejectedPhoto(
                        post_id=post.post_id,
                        media_key=problem.media_key,
                        route=route,
                        error=problem.error,
                        reason=problem.reason,
                    )
                    for problem in post.problems
                )
                for photo in post.photos:
                    built = _message(post, photo, route)
                    if isinstance(built, PhotoMessage):
                        messages[route].append(built)
                    else:
                        rejected.append(built)
        return RoutedPage(messages=messages, unrouted=tuple(unrouted), rejected=tuple(rejected))


def _message(post: PostPhotos, photo: Photo, route: str) -> PhotoMessage | RejectedPhoto:
    try:
        return PhotoMessage(
            url=photo.url,
            post_id=post.post_id,
            media_key=photo.media_key,
            # Long posts would fail the contract; the classifier only keeps the text for
            # context, so a cut text beats a lost photo.
            text=post.text[:MAX_TEXT_LENGTH],
            hashtags=list(post.hashtags),
            route=route,
        )
    except ValidationError as error:
        return RejectedPhoto(
            post_id=post.post_id,
            media_key=photo.media_key,
            route=route,
            error="InvalidPhotoMessage",
            reason=describe(error, "message"),
        )
