-- Baseline of the follow schema. Follow requests, follows, quotas and SMS codes are
-- added by the vehicle-follow issue's migrations (0002+); the outbox and inbox tables
-- come from the shared plumbing track.
COMMENT ON SCHEMA follow IS 'cqtraffic vehicle-follow service: follows, quotas, SMS codes';
