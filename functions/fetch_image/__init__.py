"""FetchImageFunction: the state machine's safe download of one image into S3."""
