"""A process that exits while threads are labelling ends with its own status, not SIGABRT.

Before the labeler's exit gate, `tweetlens chaos` sometimes died with status 134 ("terminate
called without an active exception") when a failed run exited with labelling in flight.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tweetlens.imageserver import IMAGES_DIR
from tweetlens.localcloud.labelers import LabelerError, _NativeGate

# Two daemon threads label a photo in a loop, as moto's request handlers do, and the main
# thread exits with status 3 while they are inside OpenCV. Without the gate this aborted in
# every one of five tries on a 2-core machine.
EXITING_WHILE_LABELLING = textwrap.dedent(
    """
    import sys, threading, time
    from pathlib import Path
    from tweetlens.localcloud.labelers import LabelerError, OpenCvLabeler

    labeler = OpenCvLabeler()
    image = Path(sys.argv[1]).read_bytes()
    started = threading.Barrier(3)

    def label_forever() -> None:
        started.wait()
        try:
            while True:
                labeler.detect_labels(image, max_labels=10, min_confidence=50)
        except LabelerError as exc:
            # One write per line: print() writes the text and its newline separately, and the
            # two threads' lines would interleave.
            sys.stdout.write(exc.code + "\\n")
            sys.stdout.flush()

    for _ in range(2):
        threading.Thread(target=label_forever, daemon=True).start()
    started.wait()
    time.sleep(0.5)
    sys.exit(3)
    """
)


def test_exit_while_threads_are_inside_opencv_keeps_the_exit_status() -> None:
    # GIVEN a process whose daemon threads are labelling when it exits with status 3
    # WHEN it runs to the end
    done = subprocess.run(
        [sys.executable, "-c", EXITING_WHILE_LABELLING, str(IMAGES_DIR / "chelsea.jpg")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # THEN it exits 3 (not -6, SIGABRT)
    assert done.returncode == 3, done.stderr
    assert "terminate called" not in done.stderr
    # AND a thread that asked for another label after exit began was turned away in Python
    # (one that had not asked yet by the time the interpreter stopped prints nothing)
    assert set(done.stdout.split()) <= {"InternalServerError"}


def test_closed_gate_refuses_new_calls_with_a_service_error() -> None:
    # GIVEN a gate closed with no call inside
    gate = _NativeGate()
    assert gate.close(timeout=0) is True

    # WHEN a call tries to enter
    with pytest.raises(LabelerError) as refused, gate.native_call():
        pass

    # THEN it is refused with Rekognition's InternalServerError
    assert (refused.value.code, refused.value.message) == (
        "InternalServerError",
        "the local labeler is shutting down",
    )
