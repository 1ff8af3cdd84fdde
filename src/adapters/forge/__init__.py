"""Clients of the forges' HTTP APIs (GitHub, Gitea/Forgejo)."""
