"""Serving an ASGI app over HTTP: the listening socket (``listen``) and uvicorn (``serving``)."""
