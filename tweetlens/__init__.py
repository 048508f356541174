"""tweetlens: classify the photos posted on X under chosen hashtags.

The package also holds the Docker-less local cloud (``tweetlens.localcloud``).
"""
