-- Key lists are read a page at a time in (created_at, id) order.
CREATE INDEX api_keys_created ON api_keys (created_at, id);
