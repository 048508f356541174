"""ProducerFunction: reads photo posts from X API v2 recent search and routes them to queues."""
