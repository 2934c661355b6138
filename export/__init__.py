"""idaw export package."""
