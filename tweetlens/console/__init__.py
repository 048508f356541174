"""The web console (`tweetlens console`): results, executions, dead letters and the overview.

``create_app`` builds the Flask application over a ``ConsoleData`` (where the stack is and how
to read it); ``ConsoleServer`` serves it on a loopback address only. Pages are thin views over
``data``, which reuses the library the CLI uses (``results``, ``trace``, ``dlq``,
``accounting``); ``security`` holds every request check and response header.
"""

from tweetlens.console.app import create_app
from tweetlens.console.data import CloudActivity, ConsoleData
from tweetlens.console.server import ConsoleServer, NotLoopback

__all__ = ["CloudActivity", "ConsoleData", "ConsoleServer", "NotLoopback", "create_app"]
