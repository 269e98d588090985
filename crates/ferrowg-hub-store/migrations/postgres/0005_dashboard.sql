-- The web dashboard's needs (PostgreSQL; the same columns and table as
-- migrations/sqlite/0005).
--
-- Searching devices in SQL: the text a user types is matched against the addresses and public
-- keys as the API shows them, which the store writes beside the host numbers and key bytes
-- (the store fills these columns for devices that existed before this migration when it
-- opens the database).
ALTER TABLE devices ADD COLUMN ipv4_text TEXT COLLATE "C";
ALTER TABLE devices ADD COLUMN ipv6_text TEXT COLLATE "C";
ALTER TABLE device_keys ADD COLUMN key_text TEXT COLLATE "C";

-- Sorting in SQL gives the order SQLite gives (bytes, not the database's locale), so both
-- backends list devices alike.
ALTER TABLE devices ALTER COLUMN name TYPE TEXT COLLATE "C";
ALTER TABLE devices ALTER COLUMN device_group TYPE TEXT COLLATE "C";
ALTER TABLE devices ALTER COLUMN endpoint TYPE TEXT COLLATE "C";

-- An admin asked the device to rotate its key (Unix seconds); cleared by the first handshake
-- of its next key.
ALTER TABLE devices ADD COLUMN rotate_requested_at BIGINT;

CREATE INDEX devices_by_group ON devices (device_group, name);

-- The hub nodes sharing this store, each writing its own row every few seconds (a heartbeat:
-- an observation, no event, so no NOTIFY).
CREATE TABLE nodes (
    name TEXT COLLATE "C" PRIMARY KEY,
    api TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    devices_online BIGINT NOT NULL CHECK (devices_online >= 0),
    handshakes BIGINT NOT NULL CHECK (handshakes >= 0)
);
