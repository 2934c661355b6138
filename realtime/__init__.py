"""idaw realtime package."""
