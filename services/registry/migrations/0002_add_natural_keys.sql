-- Records are found by their natural key (person: ID number, vehicle: VIN, driver: licence
-- number, violation code: the code); their ids are random, assigned on first sight.
-- Rows imported before this migration carried caller-chosen ids and get no natural key
-- (code rows excepted: their code is their key); re-import them into a fresh database.
ALTER TABLE master_records ADD COLUMN natural_key text;
UPDATE master_records SET natural_key = record_id WHERE kind = 'violation_code';
CREATE UNIQUE INDEX master_records_natural_key ON master_records (kind, natural_key);
