"""Adapters: the outside world (HTTP, processes, SSH, files, config) behind the domain ports."""
