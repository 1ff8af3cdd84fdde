"""The controller: Twirp services for workers, the HTTP API for users, scheduling and liveness."""
