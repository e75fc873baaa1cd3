"""Pure Flax Linen modules (no data, no losses)."""
