"""The errors FetchImageFunction raises.

The state machine matches them by class name (Lambda reports ``type(error).__name__`` as the
error), so each class is raised as itself and never through a subclass with another name.
Messages are shown in the execution history and the workflow dead-letter queue: they name
the host and the reason, never the whole URL, which may carry credentials or tokens.
"""


class FetchImageError(Exception):
    """Base of every error this function raises on purpose."""


class InvalidFetchRequest(FetchImageError):
    """Permanent: the task input itself is malformed (missing url or bucket, wrong types)."""


class BlockedUrl(FetchImageError):
    """Permanent: a safety rule refused the URL, a redirect target or the server's identity."""


class ImageNotFound(FetchImageError):
    """Permanent: the image host answered 404 or 410 (the post or its photo was deleted)."""


class ImageUnavailable(FetchImageError):
    """Permanent: any other refusal by the image host (401, 403, other 4xx, odd 2xx/3xx)."""


class ImageTooLarge(FetchImageError):
    """Permanent: the image is larger than MAX_IMAGE_BYTES."""


class UnsupportedImageType(FetchImageError):
    """Permanent: the bytes are neither JPEG nor PNG, whatever Content-Type claims."""


class ImageHostError(FetchImageError):
    """Transient: 5xx, 408, 429, timeouts, connection failures, DNS failures; also the S3
    write of the image throttled, failing or timing out (fetch_image.fetcher.store), since this
    is the one name the Fetch Image state retries."""
