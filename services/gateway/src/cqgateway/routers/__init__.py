"""HTTP routers, one per area: health, auth, me and violations (mini-program), internal
(counter)."""
