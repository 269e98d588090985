-- The web dashboard's needs (SQLite; migrations/postgres/0005 has the same columns and table).
--
-- Searching devices in SQL: the text a user types is matched against the addresses and public
-- keys as the API shows them, which the store writes beside the host numbers and key bytes
-- (the store fills these columns for devices that existed before this migration when it
-- opens the database).
ALTER TABLE devices ADD COLUMN ipv4_text TEXT;
ALTER TABLE devices ADD COLUMN ipv6_text TEXT;
ALTER TABLE device_keys ADD COLUMN key_text TEXT;

-- An admin asked the device to rotate its key (Unix seconds); cleared by the first handshake
-- of its next key.
ALTER TABLE devices ADD COLUMN rotate_requested_at BIGINT;

CREATE INDEX devices_by_group ON devices (device_group, name);

-- The hub nodes sharing this store, each writing its own row every few seconds (a heartbeat:
-- an observation, no event).
CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    api TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    devices_online BIGINT NOT NULL CHECK (devices_online >= 0),
    handshakes BIGINT NOT NULL CHECK (handshakes >= 0)
);
