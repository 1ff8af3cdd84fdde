"""The controller's web interface: server-rendered pages, live updates (SSE) and badges."""
