"""Fan-out: one ``PhotoMessage`` per (post, photo, route) whose hashtags the post carries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, ValidationError

from common.messages import MAX_TEXT_LENGTH, PhotoMessage
from producer.extract import PostPhotos


class RejectedPost(BaseModel):
    """A post whose photos cannot form a valid message (e.g. a non-https URL)."""

    model_config = ConfigDict(frozen=True)

    post_id: str
    error: str


class RoutedPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: dict[str, list[PhotoMessage]]
    unrouted: tuple[str, ...]
    rejected: tuple[RejectedPost, ...]


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
        messages: dict[str, list[PhotoMessage]] = {route: [] for route in self._routes}
        unrouted: list[str] = []
        rejected: list[RejectedPost] = []
        for post in posts:
            routes = self.routes_for(post.hashtags)
            if not routes:
                unrouted.append(post.post_id)
                continue
            try:
                built = [
                    (
                        route,
                        PhotoMessage(
                            url=photo.url,
                            post_id=post.post_id,
                            media_key=photo.media_key,
                            # Long posts would fail the contract; the classifier only keeps
                            # the text for context, so a cut text beats a lost photo.
                            text=post.text[:MAX_TEXT_LENGTH],
                            hashtags=list(post.hashtags),
                            route=route,
                        ),
                    )
                    for photo in post.photos
                    for route in routes
                ]
            except ValidationError as error:
                rejected.append(RejectedPost(post_id=post.post_id, error=_first_error(error)))
                continue
            for route, message in built:
                messages[route].append(message)
        return RoutedPage(messages=messages, unrouted=tuple(unrouted), rejected=tuple(rejected))


def _first_error(error: ValidationError) -> str:
    detail = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in detail["loc"])
    return f"{where}: {detail['msg']}"
