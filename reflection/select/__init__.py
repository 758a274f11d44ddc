"""Select: the selection rules (pure), the suggestions they store, and bulk decisions."""
