-- entrysync library schema, version 3: an owner is its key; set digests and
-- signed checkpoints (docs/trust.md).

-- An owner's uuid is derived from its key (OwnerUuidOf: SHA-256 of the
-- device id, as a version 8 uuid). Rows stay attached to their device row
-- (entry.owner is a local id), so rewriting the uuid keeps them.
UPDATE device SET uuid = es_owner_uuid(device_id) WHERE device_id IS NOT NULL;
-- Owners known only through a relay have no key on record: their rows are
-- dropped and fetched again, with their owner's signed checkpoints.
DELETE FROM entry WHERE owner IN (SELECT id FROM device WHERE device_id IS NULL AND is_local = 0);
DELETE FROM location WHERE owner IN (SELECT id FROM device WHERE device_id IS NULL AND is_local = 0);
DELETE FROM watermark WHERE owner IN (SELECT id FROM device WHERE device_id IS NULL AND is_local = 0);
DELETE FROM device WHERE device_id IS NULL AND is_local = 0;

-- Removed with `peer remove`: its rows and checkpoints are refused from
-- every peer afterwards (unpaired devices that were never removed are still
-- relayed).
ALTER TABLE device ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1));

-- The seq at which this replica's digest of the owner last matched the
-- owner's signed checkpoint (0: never). Verified when equal to seq.
ALTER TABLE watermark ADD COLUMN verified_seq INTEGER NOT NULL DEFAULT 0;

-- Each owner's set digest: the LtHash16 state (1024 16-bit lanes,
-- little-endian, 2048 bytes) of all its rows, tombstones included. Kept by
-- the triggers below; Library fills it for rows stored before version 3.
CREATE TABLE owner_digest (
  owner  INTEGER PRIMARY KEY REFERENCES device(id),
  lthash BLOB NOT NULL CHECK (length(lthash) = 2048)
) STRICT;

-- The latest checkpoint known of each owner and epoch, its signature
-- verified: the owner signed (library, owner, epoch, seq, digest).
CREATE TABLE checkpoint (
  owner      INTEGER NOT NULL REFERENCES device(id),
  epoch      INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  digest     BLOB NOT NULL CHECK (length(digest) = 32),       -- SHA-256 of the LtHash state
  public_key BLOB NOT NULL CHECK (length(public_key) = 32),   -- the owner's Ed25519 key
  signature  BLOB NOT NULL CHECK (length(signature) = 64),    -- Ed25519
  PRIMARY KEY (owner, epoch)
) STRICT;

-- Every row version written or removed reaches its owner's digest through
-- SQLite's pre-update hook on the library's connection (store/digest.h).
-- The first version of this migration created triggers instead; 004 drops
-- them where they were made.
