"""HTTP routers, one per area: health, auth, violations (mini-program), internal (counter)."""
