"""Storage adapters of the controller: ``domain.store.ControllerStore`` on SQLite and on
PostgreSQL, with versioned schema migrations."""
