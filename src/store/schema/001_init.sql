-- entrysync library schema, version 1.
-- One library per device. Every table is STRICT. Integers that hold unsigned
-- 64-bit values (epochs) are stored bit-cast to signed.

-- Library-wide settings: 'library_id' (16-byte uuid shared by every device of
-- the library), 'local_device' (device.id of this device).
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value ANY
) STRICT;

-- Every device this library knows: itself, paired peers, and owners whose
-- entries reached it through another peer.
CREATE TABLE device (
  id        INTEGER PRIMARY KEY,
  uuid      BLOB NOT NULL UNIQUE CHECK (length(uuid) = 16),  -- stable device uuid
  name      TEXT NOT NULL,                                    -- human name, unique per library by convention
  device_id BLOB CHECK (device_id IS NULL OR length(device_id) = 32),  -- SHA-256 of the public key; NULL until known
  addr      TEXT,                                 -- host:port to dial; NULL when we never dial it
  is_local  INTEGER NOT NULL DEFAULT 0 CHECK (is_local IN (0, 1)),  -- 1 for this device only
  trusted   INTEGER NOT NULL DEFAULT 0 CHECK (trusted IN (0, 1)),   -- paired: accepted in both directions
  epoch     INTEGER NOT NULL DEFAULT 0,           -- owner's index epoch (local: ours; remote: as last seen)
  max_seq   INTEGER NOT NULL DEFAULT 0            -- local device: last seq assigned; remote: unused (see watermark)
) STRICT;

-- Indexed folders. A location belongs to one owner and takes a seq from that
-- owner's sequence like an entry does.
CREATE TABLE location (
  id        INTEGER PRIMARY KEY,
  uuid      BLOB NOT NULL UNIQUE,                 -- 16-byte uuid
  owner     INTEGER NOT NULL REFERENCES device(id),
  root_path TEXT NOT NULL,                        -- absolute path on the owner's device
  name      TEXT NOT NULL,                        -- display name (base name of root_path)
  seq       INTEGER NOT NULL,                     -- owner's seq of the last change
  deleted   INTEGER NOT NULL DEFAULT 0            -- 1: tombstone
) STRICT;
CREATE INDEX location_owner ON location(owner);

-- One row per file, folder or symlink, owned by one device.
CREATE TABLE entry (
  id           INTEGER PRIMARY KEY,
  uuid         BLOB NOT NULL UNIQUE,              -- 16-byte time-ordered uuid (v7)
  owner        INTEGER NOT NULL REFERENCES device(id),
  location     INTEGER NOT NULL REFERENCES location(id),
  parent       BLOB,                              -- uuid of the parent entry; NULL for a location's root
  name         TEXT NOT NULL,                     -- file name, extension included
  extension    TEXT NOT NULL DEFAULT '',          -- lowercase-insensitive text after the last dot, '' if none
  kind         INTEGER NOT NULL,                  -- 0 file, 1 dir, 2 symlink
  size         INTEGER NOT NULL,                  -- bytes
  inode        INTEGER NOT NULL,
  created_ns   INTEGER NOT NULL,                  -- ns since the Unix epoch (ctime on Linux)
  modified_ns  INTEGER NOT NULL,
  accessed_ns  INTEGER NOT NULL,
  content_hash BLOB,                              -- optional content hash
  seq          INTEGER NOT NULL,                  -- owner's seq of the last change (insert, update or delete)
  deleted      INTEGER NOT NULL DEFAULT 0         -- 1: tombstone; the row keeps its uuid
) STRICT;
-- The sync cursor: "owner X's changes after seq N" is one range scan.
CREATE UNIQUE INDEX entry_owner_seq ON entry(owner, seq);
-- Browsing: the children of a folder.
CREATE INDEX entry_parent ON entry(parent);

-- What this library holds of each remote owner: every change of `owner` with
-- seq <= `seq` in index epoch `epoch` is applied. Written in the same
-- transaction as the rows it covers.
CREATE TABLE watermark (
  owner      INTEGER PRIMARY KEY REFERENCES device(id),
  epoch      INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  source     INTEGER REFERENCES device(id),       -- peer the covered rows last came from
  updated_ms INTEGER NOT NULL                     -- wall clock, for display only
) STRICT;

-- What each peer told us it holds of each owner (from Hello and acks). Used
-- to choose a strategy and to know where data can be fetched; never trusted
-- for correctness.
CREATE TABLE peer_state (
  peer       INTEGER NOT NULL REFERENCES device(id),
  owner      INTEGER NOT NULL REFERENCES device(id),
  epoch      INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (peer, owner)
) STRICT;
