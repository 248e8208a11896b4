-- entrysync snapshot file, format version 1: one owner's locations and
-- entries. Standalone: no local ids of any library; the owner is implied
-- (meta 'owner_uuid'). See docs/snapshot-format.md.
-- The writer sets PRAGMA page_size = 4096, application_id = 0x45534e50
-- ('ESNP') and user_version = 1 before creating these tables.

-- Key/value metadata. Keys (all required): format_version INTEGER,
-- library_id BLOB(16), owner_uuid BLOB(16), owner_name TEXT, epoch INTEGER
-- (u64 bit-cast), max_seq INTEGER, entries INTEGER, locations INTEGER,
-- content_sum INTEGER (u64 bit-cast), exported_by BLOB(16), created_ms INTEGER.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value ANY
) STRICT;

-- The owner's locations, tombstones included.
CREATE TABLE location (
  id        INTEGER PRIMARY KEY,                  -- file-local number, referenced by entry.location only
  uuid      BLOB NOT NULL UNIQUE CHECK (length(uuid) = 16),
  root_path TEXT NOT NULL,                        -- absolute path on the owner's device
  name      TEXT NOT NULL,
  seq       INTEGER NOT NULL,                     -- owner's seq of the last change
  deleted   INTEGER NOT NULL CHECK (deleted IN (0, 1))
) STRICT;

-- The owner's entries, tombstones included, keyed by seq (unique per owner):
-- the table is its own seq index and is written in seq order, so the file
-- has no secondary index and no free pages.
CREATE TABLE entry (
  seq          INTEGER PRIMARY KEY,               -- owner's seq of the last change
  uuid         BLOB NOT NULL CHECK (length(uuid) = 16),
  location     INTEGER NOT NULL,                  -- location.id in this file
  parent       BLOB,                              -- parent entry uuid; NULL for a location root
  name         TEXT NOT NULL,
  extension    TEXT NOT NULL,
  kind         INTEGER NOT NULL,                  -- 0 file, 1 dir, 2 symlink
  size         INTEGER NOT NULL,
  inode        INTEGER NOT NULL,
  created_ns   INTEGER NOT NULL,
  modified_ns  INTEGER NOT NULL,
  accessed_ns  INTEGER NOT NULL,
  content_hash BLOB,                              -- NULL when not computed
  deleted      INTEGER NOT NULL                   -- 1: tombstone
) STRICT;
