"""Process wiring: settings, the runtime that assembles the parts, `serve` and the prober."""
