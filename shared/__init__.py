"""Code both sides of statuspipe use: configuration, the stream contract, models and rules."""
