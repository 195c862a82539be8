"""Query service: a read model built from every service's events, the access rules of
R-Q-1 and the masking of R-Q-4. It owns no business data and publishes nothing."""
