"""Developer tools: scripts that make the documentation's pictures."""
