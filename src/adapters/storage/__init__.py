"""Storage adapters of the controller: ``domain.store.ControllerStore`` on SQLite (and later
PostgreSQL), with versioned schema migrations."""
