"""One module per CLI verb. Each exposes `register(app)` and prints; library code never does."""
