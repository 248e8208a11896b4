#include "store/entry_writer.h"

namespace entrysync {
namespace {

constexpr const char* kPutEntry =
    "INSERT INTO entry(uuid, owner, location, parent, name, extension, kind, size, inode,"
    " created_ns, modified_ns, accessed_ns, content_hash, seq, deleted)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    " ON CONFLICT(uuid) DO UPDATE SET owner = excluded.owner, location = excluded.location,"
    " parent = excluded.parent, name = excluded.name, extension = excluded.extension,"
    " kind = excluded.kind, size = excluded.size, inode = excluded.inode,"
    " created_ns = excluded.created_ns, modified_ns = excluded.modified_ns,"
    " accessed_ns = excluded.accessed_ns, content_hash = excluded.content_hash,"
    " seq = excluded.seq, deleted = excluded.deleted";

constexpr const char* kPutLocation =
    "INSERT INTO location(uuid, owner, root_path, name, seq, deleted) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT(uuid) DO UPDATE SET owner = excluded.owner, root_path = excluded.root_path,"
    " name = excluded.name, seq = excluded.seq, deleted = excluded.deleted";

}  // namespace

Result<EntryWriter> EntryWriter::Make(Library& lib) {
  EntryWriter w(lib);
  store::Db& db = lib.db();
  ES_ASSIGN_OR_RETURN(w.put_entry_, db.Prepare(kPutEntry));
  ES_ASSIGN_OR_RETURN(w.put_entry_newer_,
                      db.Prepare(std::string(kPutEntry) + " WHERE excluded.seq > entry.seq"));
  ES_ASSIGN_OR_RETURN(w.put_location_, db.Prepare(kPutLocation));
  ES_ASSIGN_OR_RETURN(w.put_location_newer_,
                      db.Prepare(std::string(kPutLocation) + " WHERE excluded.seq > location.seq"));
  ES_ASSIGN_OR_RETURN(w.find_location_, db.Prepare("SELECT id FROM location WHERE uuid = ?"));
  return w;
}

Result<LocationRowId> EntryWriter::LocationRow(const Uuid& location) {
  auto it = locations_.find(location);
  if (it != locations_.end()) return it->second;
  find_location_.Bind(1, location);
  auto row = find_location_.Step();
  LocationRowId id(row.ok() && *row ? find_location_.Int(0) : 0);
  find_location_.Reset();
  if (!row.ok()) return row.status();
  if (id.value() == 0) return NotFound("unknown location " + location.ToString());
  locations_.emplace(location, id);
  return id;
}

Result<bool> EntryWriter::PutEntry(DeviceRowId owner, const EntryRecord& r, bool only_if_newer) {
  auto loc = LocationRow(r.location);
  if (!loc.ok()) {
    return InvalidArgument("entry " + r.uuid.ToString() + " refers to " + loc.status().message());
  }
  store::Stmt& st = only_if_newer ? put_entry_newer_ : put_entry_;
  st.Bind(1, r.uuid).Bind(2, owner.value()).Bind(3, loc->value());
  if (r.parent.is_nil()) st.BindNull(4); else st.Bind(4, r.parent);
  st.Bind(5, r.name).Bind(6, r.extension).Bind(7, static_cast<int64_t>(r.kind));
  st.Bind(8, static_cast<int64_t>(r.size)).Bind(9, static_cast<int64_t>(r.inode));
  st.Bind(10, r.created_ns).Bind(11, r.modified_ns).Bind(12, r.accessed_ns);
  if (r.content_hash.empty()) st.BindNull(13);
  else st.BindBlob(13, r.content_hash.data(), r.content_hash.size());
  st.Bind(14, r.seq.value()).Bind(15, r.deleted ? 1 : 0);
  auto done = st.Step();
  st.Reset();
  if (!done.ok()) return done.status().Wrap("write entry " + r.uuid.ToString());
  return lib_->db().Changes() > 0;
}

Result<bool> EntryWriter::PutLocation(DeviceRowId owner, const LocationRecord& r, bool only_if_newer) {
  store::Stmt& st = only_if_newer ? put_location_newer_ : put_location_;
  st.Bind(1, r.uuid).Bind(2, owner.value()).Bind(3, r.root_path).Bind(4, r.name);
  st.Bind(5, r.seq.value()).Bind(6, r.deleted ? 1 : 0);
  auto done = st.Step();
  st.Reset();
  if (!done.ok()) return done.status().Wrap("write location " + r.uuid.ToString());
  return lib_->db().Changes() > 0;
}

}  // namespace entrysync
