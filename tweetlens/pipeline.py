"""This repository's template on the local cloud, with its loopback image server and posts.

The generic local cloud (``tweetlens.localcloud``) knows nothing of tweetlens; this module
adds what the application needs to run offline: recorded X API posts replayed through the
producer's real tweepy path, and the image server the fetch function is allowed to reach
(through template parameters: its safety checks stay on).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from tweetlens.demo_stream import Recording, build_recording
from tweetlens.imageserver import ImageServer
from tweetlens.localcloud import Labeler, LocalCloud, OpenCvLabeler, PictureCachingLabeler
from tweetlens.project import find_template
from tweetlens.stack import write_local_state

STACK_NAME = "tweetlens-local"
PRODUCER = "ProducerFunction"


# Step Functions timeouts (the workflow's and each task's) x 3 by default: here every function
# runs on at most a few workers of 2 shared cores and the labeler is serialised, so a burst of
# images queues where Lambda and Rekognition would scale out. The template's own values are
# what AWS enforces; tests of timeouts pass their own scale.
LOCAL_TIMEOUT_HEADROOM = 3.0
# Locally logs cost nothing: an EXPRESS workflow logs every execution with its data, so each
# one can be listed in the console and drawn by `tweetlens trace` (the template's own default,
# what AWS bills, is ERROR). A parameter override wins; STANDARD ignores it.
LOCAL_EXPRESS_LOG_LEVEL = "ALL"


class LocalPipeline:
    """Start with ``with LocalPipeline() as pipeline:``; ``pipeline.cloud`` is the LocalCloud."""

    def __init__(
        self,
        *,
        # Default: template.yaml in the current directory (``tweetlens.project``).
        template: Path | None = None,
        # A recording, or a function of the image server's base URL (known once it listens).
        recording: Recording | Callable[[str], Recording] | None = None,
        seed: int = 2026,
        time_scale: float = 0.02,
        run_schedules: bool = False,
        run_pollers: bool = True,
        parameter_overrides: dict[str, str] | None = None,
        state_file: Path | None = None,
        execution_timeout_scale: float = LOCAL_TIMEOUT_HEADROOM,
        visibility_timeout_scale: float = 1.0,
        # SQS mappings' batching windows on a faster clock (``LocalCloud``'s).
        batching_window_scale: float = 1.0,
        # Deploy only what this function needs (``LocalCloud``'s ``only_function``).
        only_function: str | None = None,
        # Default: OpenCV's labeler, each picture labelled once (see ``start``).
        labeler: Labeler | None = None,
    ) -> None:
        self.template = find_template(template)
        self._recording = recording
        self.seed = seed
        self.time_scale = time_scale
        self.run_schedules = run_schedules
        self.run_pollers = run_pollers
        self.parameter_overrides = dict(parameter_overrides or {})
        self.state_file = state_file
        self.execution_timeout_scale = execution_timeout_scale
        self.visibility_timeout_scale = visibility_timeout_scale
        self.batching_window_scale = batching_window_scale
        self.only_function = only_function
        self._labeler = labeler
        self.images = ImageServer()
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._cloud: LocalCloud | None = None
        self.recording_path: Path | None = None
        self.recording: Recording | None = None

    @property
    def cloud(self) -> LocalCloud:
        if self._cloud is None:
            raise RuntimeError("the local pipeline is not started")
        return self._cloud

    def start(self) -> None:
        self.images.start()
        try:
            self._workdir = tempfile.TemporaryDirectory(prefix="tweetlens-local-")
            if callable(self._recording):
                self.recording = self._recording(self.images.base_url)
            else:
                self.recording = self._recording or build_recording(
                    self.images.base_url, seed=self.seed
                )
            self.recording_path = Path(self._workdir.name) / "x-api-recording.json"
            self.recording_path.write_text(self.recording.to_json(), encoding="utf-8")
            parameters = {
                "PostSource": "replay",
                "ReplayUri": str(self.recording_path),
                "AllowedImageHosts": self.images.host,
                "ImageHostAllowedNetworks": self.images.allowed_network,
                "ScheduleEnabled": "true" if self.run_schedules else "false",
                "ExpressLogLevel": LOCAL_EXPRESS_LOG_LEVEL,
                **self.parameter_overrides,
            }
            self._cloud = LocalCloud(
                self.template,
                stack_name=STACK_NAME,
                parameter_overrides=parameters,
                # The local labeler spends about a second of CPU per photo, one photo at a
                # time; the demo stream shows the same few pictures under many URLs, and the
                # labeler is deterministic, so each picture is labelled once and remembered.
                labeler=self._labeler or PictureCachingLabeler(OpenCvLabeler()),
                time_scale=self.time_scale,
                # The fetch function verifies TLS like in AWS; locally it trusts the image
                # server's freshly generated CA instead of the public ones.
                extra_env={"SSL_CERT_FILE": str(self.images.ca_file)},
                run_schedules=self.run_schedules,
                run_pollers=self.run_pollers,
                execution_timeout_scale=self.execution_timeout_scale,
                visibility_timeout_scale=self.visibility_timeout_scale,
                batching_window_scale=self.batching_window_scale,
                only_function=self.only_function,
            )
            self._cloud.start()
            if self.state_file is not None:
                write_local_state(
                    self.state_file,
                    endpoint_url=self._cloud.endpoint_url,
                    region=self._cloud.region,
                    resources=dict(self._cloud.resources),
                    template=self.template,
                    parameter_overrides=self.parameter_overrides,
                    functions=list(self._cloud.functions),
                )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._cloud is not None:
            self._cloud.stop()
            self._cloud = None
        self.images.stop()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
