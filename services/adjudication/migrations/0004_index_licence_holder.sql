-- Every eligibility question (R-Q-3: one per list page) looks up the caller's licence by
-- its holder; without this it is a sequential scan of every licence.
CREATE INDEX licences_person_idx ON licences (person_id);
