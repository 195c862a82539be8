"""Pure query rules: access decisions (R-Q-1), masking (R-Q-4), cursors."""
