"""govreports: extract stage."""
