-- Sandbox roster loads (R-SBX-1): one row per load that completed every step (records,
-- violations, the paid one, follows). The gateway's /readyz asks the registry whether one
-- exists (GetSandboxRosterStatus) before it calls a sandbox ready.
CREATE TABLE sandbox_roster_loads (
    load_id    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    loaded_at  timestamptz NOT NULL DEFAULT now(),
    records    integer     NOT NULL CHECK (records >= 0),
    violations integer     NOT NULL CHECK (violations >= 0),
    follows    integer     NOT NULL CHECK (follows >= 0)
);
CREATE INDEX sandbox_roster_loads_loaded_at ON sandbox_roster_loads (loaded_at);
