"""Dialogs of the plugin (desktop only; the Processing algorithms have no GUI code)."""
