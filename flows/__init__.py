"""govreports: flows stage."""
