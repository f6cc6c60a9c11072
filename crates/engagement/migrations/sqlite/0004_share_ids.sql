-- Share ids are unique, so an import can skip a share whose id exists with one
-- `INSERT ... ON CONFLICT DO NOTHING`.
CREATE UNIQUE INDEX shares_by_id ON shares (id);
