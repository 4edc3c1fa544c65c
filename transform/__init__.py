"""govreports: transform stage."""
