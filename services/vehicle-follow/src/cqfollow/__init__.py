"""Vehicle-follow service: follow requests, owner consent (in the app or by SMS), follows
and quotas. Publishes FollowStarted and FollowEnded."""
