"""Code shared by the tweetlens Lambda functions: the message contract and observability."""
