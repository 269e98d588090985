-- The ferrowg hub's store, schema version 1 (SQLite).
--
-- Written in the SQL that SQLite and PostgreSQL share so that the PostgreSQL migration can keep
-- the same tables, columns and constraints (only BLOB becomes BYTEA, INTEGER PRIMARY KEY an
-- identity column). Times are Unix seconds (BIGINT). Addresses are stored as host numbers inside
-- the pools of hub_settings (1 is the hub itself); the UNIQUE constraints on them are what makes
-- two devices with one address impossible, whatever the code above does.

-- Written once by `ferrowg hub init`.
CREATE TABLE hub_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    endpoint TEXT NOT NULL,
    pool4 TEXT NOT NULL,
    pool6 TEXT,
    public_key BLOB NOT NULL CHECK (length(public_key) = 32),
    created_at BIGINT NOT NULL
);

-- The change counter: every write transaction that changes something increments it, and the
-- row lock serialises writers on databases that lock rows.
CREATE TABLE event_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO event_counter (id, seq) VALUES (1, 0);

-- What changed at each sequence number, for the data plane to reload.
CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    at BIGINT NOT NULL
);

CREATE TABLE enrolment_tokens (
    id TEXT PRIMARY KEY,
    device_group TEXT NOT NULL,
    secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
    -- NULL: unlimited.
    uses_left BIGINT CHECK (uses_left IS NULL OR uses_left >= 0),
    -- NULL: never expires.
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    device_group TEXT NOT NULL,
    ipv4_host BIGINT NOT NULL UNIQUE CHECK (ipv4_host >= 2),
    ipv6_host BIGINT UNIQUE CHECK (ipv6_host IS NULL OR ipv6_host >= 2),
    state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'revoked')),
    token_id TEXT REFERENCES enrolment_tokens (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_handshake BIGINT,
    endpoint TEXT,
    rx_bytes BIGINT NOT NULL DEFAULT 0,
    tx_bytes BIGINT NOT NULL DEFAULT 0
);

-- Every public key the hub knows, current or the pending next one of a rotation: one primary
-- key over both, so no key can belong to two devices, nor twice to one. Keys of revoked devices
-- stay here so that they cannot enrol again.
CREATE TABLE device_keys (
    public_key BLOB PRIMARY KEY CHECK (length(public_key) = 32),
    device_id BIGINT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('current', 'next')),
    added_at BIGINT NOT NULL,
    UNIQUE (device_id, role)
);

-- Subnets a device advertises (a site behind it), and whether they are approved.
CREATE TABLE device_routes (
    device_id BIGINT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    prefix TEXT NOT NULL,
    approved BOOLEAN NOT NULL,
    PRIMARY KEY (device_id, prefix)
);

CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    label TEXT NOT NULL,
    secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE policy_versions (
    version BIGINT PRIMARY KEY,
    text TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
