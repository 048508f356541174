"""`python -m tweetlens` is the `tweetlens` command."""

from tweetlens.cli import main

main()
