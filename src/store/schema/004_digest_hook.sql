-- entrysync library schema, version 4: the set digests are kept by the
-- library's pre-update hook (store/digest.h), not by triggers. Libraries
-- that ran the first version of 003 have the triggers; they go.
DROP TRIGGER IF EXISTS entry_digest_insert;
DROP TRIGGER IF EXISTS entry_digest_update;
DROP TRIGGER IF EXISTS entry_digest_delete;
DROP TRIGGER IF EXISTS location_digest_insert;
DROP TRIGGER IF EXISTS location_digest_update;
DROP TRIGGER IF EXISTS location_digest_delete;
