"""gRPC next to Twirp: the controller's services for the original Go worker and agent."""
