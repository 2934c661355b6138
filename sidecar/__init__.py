"""idaw sidecar package."""
