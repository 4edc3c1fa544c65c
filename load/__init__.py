"""govreports: load stage."""
