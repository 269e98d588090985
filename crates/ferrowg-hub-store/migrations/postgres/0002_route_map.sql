-- A site route may be reachable through a mapped prefix of the same length (1:1 NETMAP in the
-- hub), so that two sites with one real prefix can both be reached. A mapped prefix belongs to
-- one route at most.
ALTER TABLE device_routes ADD COLUMN mapped TEXT;
CREATE UNIQUE INDEX device_routes_mapped ON device_routes (mapped) WHERE mapped IS NOT NULL;
