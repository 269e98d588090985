-- Every recorded change wakes every hub node at once: a NOTIFY on channel ferrowg_hub_events,
-- delivered when the writing transaction commits, which each node's store listens on
-- (SqlStore::forward_changes). PostgreSQL only: an SQLite file has one hub node.
CREATE FUNCTION ferrowg_hub_notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ferrowg_hub_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION ferrowg_hub_notify_event();
