-- How old a device's key may grow before the device rotates it on its own schedule
-- (`ferrowg key rotate IFACE --if-due`), in seconds; 0 means no schedule. Nothing expires a
-- device: the schedule asks the device to rotate, it never disconnects it. A key's age counts
-- from its device_keys.added_at.
ALTER TABLE hub_settings ADD COLUMN rotate_after BIGINT NOT NULL DEFAULT 7776000
    CHECK (rotate_after >= 0);
