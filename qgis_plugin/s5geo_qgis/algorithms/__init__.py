"""Processing algorithms of the s5geo plugin."""
