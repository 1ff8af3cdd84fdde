"""Twirp v7 JSON adapter: the proto3 JSON codec and the worker's controller client."""
