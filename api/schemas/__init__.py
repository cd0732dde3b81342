"""Request and response bodies of the HTTP API (`XCreate` in, `XPublic` out)."""
