"""Domain rules, one module per area. Views call services, never the reverse."""
