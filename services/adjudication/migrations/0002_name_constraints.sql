-- Explicit, stable constraint names: cqadjudication.adapters.constraints maps each name a
-- request can hit to its stable error code (R-ERR-1: never a 500 from bad input), and a
-- test walks pg_constraint so that no constraint ships unmapped. Renaming a unique
-- constraint renames its index too; ON CONFLICT clauses name columns, not constraints.

ALTER TABLE vehicles RENAME CONSTRAINT vehicles_plate_type_plate_number_key TO vehicles_plate_unique;

ALTER TABLE licences RENAME CONSTRAINT licences_licence_no_key TO licences_licence_no_unique;

ALTER TABLE violation_codes RENAME CONSTRAINT violation_codes_points_check TO violation_codes_points_range;

ALTER TABLE violations RENAME CONSTRAINT violations_vehicle_id_fkey TO violations_vehicle_fk;
ALTER TABLE violations RENAME CONSTRAINT violations_licence_id_fkey TO violations_licence_fk;
ALTER TABLE violations RENAME CONSTRAINT violations_fine_fen_check TO violations_fine_positive;
ALTER TABLE violations RENAME CONSTRAINT violations_points_check TO violations_points_range;
ALTER TABLE violations RENAME CONSTRAINT violations_source_check TO violations_source_known;
ALTER TABLE violations RENAME CONSTRAINT violations_procedure_check TO violations_procedure_known;
ALTER TABLE violations RENAME CONSTRAINT violations_status_check TO violations_status_known;
ALTER TABLE violations RENAME CONSTRAINT violations_decision_no_key TO violations_decision_no_unique;
ALTER TABLE violations
    RENAME CONSTRAINT violations_source_system_source_record_id_key TO violations_source_record_unique;

-- DOMAIN.md: a record that claims a decision carries its number and date; one that does
-- not carries neither. Both write paths (RecordViolation, the bulk snapshot) already do.
ALTER TABLE violations ADD CONSTRAINT violations_decision_pair
    CHECK ((decision_no IS NULL) = (decision_date IS NULL));
