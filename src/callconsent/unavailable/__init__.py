"""Calls that arrived while the app was away: counted from the hook's AstDB markers (R36)."""
