#include "proto/batch_codec.h"

#include <array>
#include <unordered_map>

#include "proto/varint.h"

namespace entrysync {
namespace {

using proto::PutBytes;
using proto::PutVarint;
using proto::Reader;
using proto::UnZigZag;
using proto::ZigZag;

// Layout tags (first two bytes of an encoded batch).
constexpr char kEntryTag = 'E';
constexpr char kLocationTag = 'L';
constexpr char kVersion = 1;

// Entry flag bits (column kFlags).
constexpr uint8_t kKindMask = 0x03;
constexpr uint8_t kDeletedBit = 0x04;
constexpr uint8_t kExtStrippedBit = 0x08;  // stored name lacks "." + extension
constexpr uint8_t kHasHashBit = 0x10;
constexpr uint8_t kKnownFlags = 0x1F;

// Parent column codes.
constexpr uint64_t kParentNil = 0;
constexpr uint64_t kParentSame = 1;         // same parent as the previous row
constexpr uint64_t kParentLiteral = 2;      // next 16 bytes of kParentLiterals
constexpr uint64_t kParentBackRefBase = 2;  // code c >= 3: uuid of row i-(c-2)

constexpr int64_t kNsPerSec = 1000000000;

// Entry columns, in wire order.
enum EntryColumn {
  kFlags,           // 1 byte per row
  kUuidHi,          // zigzag delta of the uuid's first 8 bytes (big-endian u64)
  kUuidLo,          // zigzag delta of the uuid's last 8 bytes
  kParent,          // parent codes (see above)
  kParentLiterals,  // 16 bytes per literal parent
  kLocation,        // varint D, D x 16 bytes dictionary, then 1 index per row
  kNamePrefix,      // bytes shared with the previous stored name
  kNameSuffixLen,   // length of the rest of the stored name
  kNameSuffix,      // the rest, concatenated
  kExtension,       // adaptive dictionary index (== size: new literal)
  kExtLiterals,     // length-prefixed new extensions, in first-use order
  kSize,            // varint
  kInode,           // zigzag delta from the previous row
  kModifiedSec,     // zigzag delta of floor(modified_ns / 1e9) from previous row
  kModifiedNsec,    // modified_ns mod 1e9, in [0, 1e9)
  kCreated,         // zigzag(created_ns - modified_ns)
  kAccessed,        // zigzag(accessed_ns - modified_ns)
  kSeq,             // zigzag delta from the previous row (first row: from 0)
  kHash,            // length-prefixed content hash, rows with kHasHashBit only
  kNumEntryColumns,
};

// Location columns, in wire order.
enum LocationColumn {
  kLocFlags,     // 1 byte per row: bit 0 deleted
  kLocUuid,      // 16 bytes per row
  kLocRootPath,  // length-prefixed
  kLocName,      // length-prefixed
  kLocSeq,       // zigzag delta from the previous row
  kNumLocationColumns,
};

uint64_t Hi(const Uuid& u) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | u.bytes[i];
  return v;
}
uint64_t Lo(const Uuid& u) {
  uint64_t v = 0;
  for (int i = 8; i < 16; ++i) v = (v << 8) | u.bytes[i];
  return v;
}
Uuid FromHiLo(uint64_t hi, uint64_t lo) {
  Uuid u;
  for (int i = 0; i < 8; ++i) {
    u.bytes[7 - i] = static_cast<uint8_t>(hi >> (8 * i));
    u.bytes[15 - i] = static_cast<uint8_t>(lo >> (8 * i));
  }
  return u;
}
std::string_view UuidBytes(const Uuid& u) {
  return std::string_view(reinterpret_cast<const char*>(u.bytes.data()), 16);
}

uint64_t U(int64_t v) { return static_cast<uint64_t>(v); }
int64_t S(uint64_t v) { return static_cast<int64_t>(v); }

// Splits t into (floor(t / 1e9), t mod 1e9) without overflow.
void SplitNs(int64_t t, int64_t* sec, uint64_t* nsec) {
  int64_t s = t / kNsPerSec;
  int64_t r = t % kNsPerSec;
  if (r < 0) {
    r += kNsPerSec;
    --s;
  }
  *sec = s;
  *nsec = static_cast<uint64_t>(r);
}

std::string Assemble(char tag, uint64_t rows, const std::string* columns, size_t n) {
  size_t total = 12;
  for (size_t i = 0; i < n; ++i) total += columns[i].size() + 5;
  std::string out;
  out.reserve(total);
  out.push_back(tag);
  out.push_back(kVersion);
  PutVarint(&out, rows);
  for (size_t i = 0; i < n; ++i) PutBytes(&out, columns[i]);
  return out;
}

// Splits an encoded batch into its header row count and column readers.
Status Disassemble(std::string_view encoded, char tag, const char* what, uint64_t* rows, Reader* columns,
                   size_t n) {
  Reader r(encoded);
  uint8_t t, v;
  if (!r.Byte(&t) || !r.Byte(&v)) return Corruption(std::string(what) + ": truncated header");
  if (static_cast<char>(t) != tag) return Corruption(std::string(what) + ": wrong layout tag");
  if (v != kVersion) {
    return Corruption(std::string(what) + ": unsupported layout version " + std::to_string(v));
  }
  if (!r.Varint(rows)) return Corruption(std::string(what) + ": truncated header");
  for (size_t i = 0; i < n; ++i) {
    std::string_view col;
    if (!r.LengthPrefixed(&col)) {
      return Corruption(std::string(what) + ": column " + std::to_string(i) + " truncated");
    }
    columns[i] = Reader(col);
  }
  if (!r.empty()) return Corruption(std::string(what) + ": trailing bytes");
  return Status::Ok();
}

Status CheckConsumed(const Reader* columns, size_t n, const char* what) {
  for (size_t i = 0; i < n; ++i) {
    if (!columns[i].empty()) {
      return Corruption(std::string(what) + ": column " + std::to_string(i) + " has trailing bytes");
    }
  }
  return Status::Ok();
}

// Writes entry rows into the entry columns (see EntryColumn), row by row;
// each column is coded against the rows before.
class EntryEncoder {
 public:
  explicit EntryEncoder(size_t rows) {
    col_[kFlags].reserve(rows);
    row_of_.reserve(rows);
    location_refs_.reserve(rows);
  }

  // Appends `e` as row `i`. REQUIRES: rows 0..i-1 were added.
  void Add(size_t i, const EntryRecord& e) {
    const std::string_view name = PutFlags(e);
    PutUuid(e.uuid);
    PutParent(i, e);
    PutLocation(e.location);
    PutName(name);
    PutExtension(e.extension);
    PutSizeAndInode(e);
    PutTimes(e);
    PutSeq(e.seq);
    if (!e.content_hash.empty()) PutBytes(&col_[kHash], e.content_hash);
  }

  // The encoded batch of the `rows` rows added.
  std::string Finish(size_t rows) {
    std::string& loc_col = col_[kLocation];
    PutVarint(&loc_col, locations_.size());
    for (const Uuid& u : locations_) loc_col.append(UuidBytes(u));
    for (uint64_t ref : location_refs_) PutVarint(&loc_col, ref);
    return Assemble(kEntryTag, rows, col_.data(), col_.size());
  }

 private:
  // kFlags. Returns the name as stored: without "." + extension when the
  // name ends with it (kExtStrippedBit).
  std::string_view PutFlags(const EntryRecord& e) {
    std::string_view name = e.name;
    uint8_t flags = static_cast<uint8_t>(e.kind) & kKindMask;
    if (e.deleted) flags |= kDeletedBit;
    if (!e.extension.empty() && name.size() > e.extension.size() &&
        name[name.size() - e.extension.size() - 1] == '.' && name.ends_with(e.extension)) {
      flags |= kExtStrippedBit;
      name.remove_suffix(e.extension.size() + 1);
    }
    if (!e.content_hash.empty()) flags |= kHasHashBit;
    col_[kFlags].push_back(static_cast<char>(flags));
    return name;
  }

  // kUuidHi, kUuidLo.
  void PutUuid(const Uuid& uuid) {
    const uint64_t hi = Hi(uuid), lo = Lo(uuid);
    PutVarint(&col_[kUuidHi], ZigZag(hi - prev_hi_));
    PutVarint(&col_[kUuidLo], ZigZag(lo - prev_lo_));
    prev_hi_ = hi;
    prev_lo_ = lo;
  }

  // kParent, kParentLiterals; then remembers row `i` as the last with e.uuid.
  void PutParent(size_t i, const EntryRecord& e) {
    if (e.parent.is_nil()) {
      PutVarint(&col_[kParent], kParentNil);
    } else if (e.parent == prev_parent_) {
      PutVarint(&col_[kParent], kParentSame);
    } else if (auto it = row_of_.find(e.parent); it != row_of_.end()) {
      PutVarint(&col_[kParent], kParentBackRefBase + (i - it->second));
    } else {
      PutVarint(&col_[kParent], kParentLiteral);
      col_[kParentLiterals].append(UuidBytes(e.parent));
    }
    prev_parent_ = e.parent;
    row_of_[e.uuid] = static_cast<uint32_t>(i);
  }

  // kLocation's per-row index (the column is written by Finish).
  void PutLocation(const Uuid& location) {
    auto [loc, inserted] = location_index_.try_emplace(location, locations_.size());
    if (inserted) locations_.push_back(location);
    location_refs_.push_back(loc->second);
  }

  // kNamePrefix, kNameSuffixLen, kNameSuffix.
  void PutName(std::string_view name) {
    size_t prefix = 0;
    const size_t max_prefix = std::min(prev_name_.size(), name.size());
    while (prefix < max_prefix && prev_name_[prefix] == name[prefix]) ++prefix;
    PutVarint(&col_[kNamePrefix], prefix);
    PutVarint(&col_[kNameSuffixLen], name.size() - prefix);
    col_[kNameSuffix].append(name.substr(prefix));
    prev_name_.assign(name);
  }

  // kExtension, kExtLiterals.
  void PutExtension(const std::string& extension) {
    auto [ext, new_ext] = ext_index_.try_emplace(extension, ext_index_.size());
    PutVarint(&col_[kExtension], ext->second);
    if (new_ext) PutBytes(&col_[kExtLiterals], extension);
  }

  // kSize, kInode.
  void PutSizeAndInode(const EntryRecord& e) {
    PutVarint(&col_[kSize], e.size);
    PutVarint(&col_[kInode], ZigZag(e.inode - prev_inode_));
    prev_inode_ = e.inode;
  }

  // kModifiedSec, kModifiedNsec, kCreated, kAccessed.
  void PutTimes(const EntryRecord& e) {
    int64_t sec;
    uint64_t nsec;
    SplitNs(e.modified_ns, &sec, &nsec);
    PutVarint(&col_[kModifiedSec], ZigZag(U(sec) - U(prev_sec_)));
    PutVarint(&col_[kModifiedNsec], nsec);
    prev_sec_ = sec;
    PutVarint(&col_[kCreated], ZigZag(U(e.created_ns) - U(e.modified_ns)));
    PutVarint(&col_[kAccessed], ZigZag(U(e.accessed_ns) - U(e.modified_ns)));
  }

  // kSeq.
  void PutSeq(Seq seq) {
    PutVarint(&col_[kSeq], ZigZag(U(seq.value()) - prev_seq_));
    prev_seq_ = U(seq.value());
  }

  std::array<std::string, kNumEntryColumns> col_;
  std::unordered_map<Uuid, uint32_t> row_of_;  // uuid -> last row that has it
  std::vector<Uuid> locations_;
  std::unordered_map<Uuid, uint64_t> location_index_;
  std::vector<uint64_t> location_refs_;
  std::unordered_map<std::string, uint64_t> ext_index_;
  uint64_t prev_hi_ = 0, prev_lo_ = 0, prev_inode_ = 0, prev_seq_ = 0;
  int64_t prev_sec_ = 0;
  Uuid prev_parent_ = Uuid::Nil();
  std::string prev_name_;
};

constexpr const char* kEntryWhat = "entry batch";

Status BadEntries(const std::string& what) { return Corruption(std::string(kEntryWhat) + ": " + what); }

std::string RowName(uint64_t i) { return "row " + std::to_string(i); }

// Reads entry rows from the entry columns of one batch, row by row; each
// column is decoded against the rows before. Every failure is a Corruption
// "entry batch: <what>".
class EntryDecoder {
 public:
  // Splits `encoded` into its columns, checks their sizes against the row
  // count and reads the location dictionary.
  Status Open(std::string_view encoded) {
    ES_RETURN_IF_ERROR(Disassemble(encoded, kEntryTag, kEntryWhat, &rows_, col_.data(), col_.size()));
    // One flag byte per row bounds the row count by the input size.
    if (rows_ != col_[kFlags].remaining()) return BadEntries("row count does not match flags column");
    // Every per-row column holds at least one byte per row, so the row count
    // (and every allocation below) is bounded by the input size.
    for (int c : {kUuidHi, kUuidLo, kParent, kNamePrefix, kNameSuffixLen, kExtension, kSize, kInode,
                  kModifiedSec, kModifiedNsec, kCreated, kAccessed, kSeq}) {
      if (col_[c].remaining() < rows_) return BadEntries("column " + std::to_string(c) + " too short");
    }
    return ReadLocationDictionary();
  }

  uint64_t rows() const { return rows_; }

  // Decodes row i into `e`. REQUIRES: i < rows(), `out` holds rows 0..i-1.
  Status ReadRow(uint64_t i, const std::vector<EntryRecord>& out, EntryRecord* e) {
    uint8_t flags = 0;
    ES_RETURN_IF_ERROR(ReadFlags(i, e, &flags));
    ES_RETURN_IF_ERROR(ReadUuid(e));
    ES_RETURN_IF_ERROR(ReadParent(i, out, e));
    ES_RETURN_IF_ERROR(ReadLocation(e));
    ES_RETURN_IF_ERROR(ReadStoredName(i));
    ES_RETURN_IF_ERROR(ReadExtension(e));
    ES_RETURN_IF_ERROR(JoinName(i, flags, e));
    ES_RETURN_IF_ERROR(ReadSizeAndInode(e));
    ES_RETURN_IF_ERROR(ReadTimes(i, e));
    ES_RETURN_IF_ERROR(ReadSeq(e));
    return ReadHash(flags, e);
  }

  // Corruption when a column holds bytes no row used.
  Status CheckAllConsumed() const { return CheckConsumed(col_.data(), col_.size(), kEntryWhat); }

 private:
  // kLocation's dictionary (its per-row indexes follow it).
  Status ReadLocationDictionary() {
    uint64_t location_count;
    if (!col_[kLocation].Varint(&location_count) || location_count > col_[kLocation].remaining() / 16) {
      return BadEntries("bad location dictionary");
    }
    locations_.reserve(location_count);
    for (uint64_t i = 0; i < location_count; ++i) {
      std::string_view b;
      col_[kLocation].Bytes(16, &b);
      locations_.push_back(Uuid::FromBytes(b.data()));
    }
    return Status::Ok();
  }

  // kFlags: kind and deleted into `e`, all flags into `flags`.
  Status ReadFlags(uint64_t i, EntryRecord* e, uint8_t* flags) {
    col_[kFlags].Byte(flags);  // length checked by Open
    if ((*flags & ~kKnownFlags) != 0 || (*flags & kKindMask) > 2) {
      return BadEntries(RowName(i) + ": bad flags " + std::to_string(*flags));
    }
    e->kind = static_cast<EntryKind>(*flags & kKindMask);
    e->deleted = (*flags & kDeletedBit) != 0;
    return Status::Ok();
  }

  // kUuidHi, kUuidLo.
  Status ReadUuid(EntryRecord* e) {
    uint64_t v, w;
    if (!col_[kUuidHi].Varint(&v) || !col_[kUuidLo].Varint(&w)) return BadEntries("uuid column truncated");
    prev_hi_ += UnZigZag(v);
    prev_lo_ += UnZigZag(w);
    e->uuid = FromHiLo(prev_hi_, prev_lo_);
    return Status::Ok();
  }

  // kParent, kParentLiterals; a back reference names a row of `out`.
  Status ReadParent(uint64_t i, const std::vector<EntryRecord>& out, EntryRecord* e) {
    uint64_t v;
    if (!col_[kParent].Varint(&v)) return BadEntries("parent column truncated");
    if (v == kParentNil) {
      e->parent = Uuid::Nil();
    } else if (v == kParentSame) {
      e->parent = prev_parent_;
    } else if (v == kParentLiteral) {
      std::string_view b;
      if (!col_[kParentLiterals].Bytes(16, &b)) return BadEntries("parent literals truncated");
      e->parent = Uuid::FromBytes(b.data());
    } else {
      const uint64_t distance = v - kParentBackRefBase;
      if (distance > i) return BadEntries(RowName(i) + ": parent reference out of range");
      e->parent = out[i - distance].uuid;
    }
    prev_parent_ = e->parent;
    return Status::Ok();
  }

  // kLocation's per-row index into the dictionary.
  Status ReadLocation(EntryRecord* e) {
    uint64_t v;
    if (!col_[kLocation].Varint(&v) || v >= locations_.size()) return BadEntries("bad location index");
    e->location = locations_[v];
    return Status::Ok();
  }

  // kNamePrefix, kNameSuffixLen, kNameSuffix: the stored name, kept as the
  // previous one for the next row.
  Status ReadStoredName(uint64_t i) {
    uint64_t prefix, suffix_len;
    std::string_view suffix;
    if (!col_[kNamePrefix].Varint(&prefix) || prefix > prev_name_.size() ||
        !col_[kNameSuffixLen].Varint(&suffix_len) ||
        !col_[kNameSuffix].Bytes(suffix_len <= SIZE_MAX ? static_cast<size_t>(suffix_len) : SIZE_MAX,
                                 &suffix)) {
      return BadEntries(RowName(i) + ": bad name");
    }
    prev_name_.resize(prefix);
    prev_name_.append(suffix);
    return Status::Ok();
  }

  // kExtension, kExtLiterals.
  Status ReadExtension(EntryRecord* e) {
    uint64_t v;
    if (!col_[kExtension].Varint(&v) || v > extensions_.size()) return BadEntries("bad extension index");
    if (v == extensions_.size()) {
      std::string_view lit;
      if (!col_[kExtLiterals].LengthPrefixed(&lit)) return BadEntries("extension literals truncated");
      extensions_.emplace_back(lit);
    }
    e->extension = extensions_[v];
    return Status::Ok();
  }

  // The name: the stored name, plus "." + extension when it was stripped.
  Status JoinName(uint64_t i, uint8_t flags, EntryRecord* e) const {
    e->name = prev_name_;
    if (flags & kExtStrippedBit) {
      if (e->extension.empty()) return BadEntries(RowName(i) + ": stripped empty extension");
      e->name.push_back('.');
      e->name.append(e->extension);
    }
    return Status::Ok();
  }

  // kSize, kInode.
  Status ReadSizeAndInode(EntryRecord* e) {
    uint64_t v;
    if (!col_[kSize].Varint(&e->size)) return BadEntries("size column truncated");
    if (!col_[kInode].Varint(&v)) return BadEntries("inode column truncated");
    prev_inode_ += UnZigZag(v);
    e->inode = prev_inode_;
    return Status::Ok();
  }

  // kModifiedSec, kModifiedNsec, kCreated, kAccessed.
  Status ReadTimes(uint64_t i, EntryRecord* e) {
    uint64_t v, w, nsec;
    if (!col_[kModifiedSec].Varint(&v) || !col_[kModifiedNsec].Varint(&nsec) ||
        nsec >= static_cast<uint64_t>(kNsPerSec)) {
      return BadEntries(RowName(i) + ": bad modified time");
    }
    prev_sec_ = S(U(prev_sec_) + UnZigZag(v));
    const uint64_t modified = U(prev_sec_) * static_cast<uint64_t>(kNsPerSec) + nsec;
    e->modified_ns = S(modified);
    if (!col_[kCreated].Varint(&v) || !col_[kAccessed].Varint(&w)) return BadEntries("time column truncated");
    e->created_ns = S(modified + UnZigZag(v));
    e->accessed_ns = S(modified + UnZigZag(w));
    return Status::Ok();
  }

  // kSeq.
  Status ReadSeq(EntryRecord* e) {
    uint64_t v;
    if (!col_[kSeq].Varint(&v)) return BadEntries("seq column truncated");
    prev_seq_ += UnZigZag(v);
    e->seq = Seq(S(prev_seq_));
    return Status::Ok();
  }

  // kHash, for rows with kHasHashBit.
  Status ReadHash(uint8_t flags, EntryRecord* e) {
    if (flags & kHasHashBit) {
      std::string_view hash;
      if (!col_[kHash].LengthPrefixed(&hash) || hash.empty()) return BadEntries("bad content hash");
      e->content_hash.assign(hash);
    }
    return Status::Ok();
  }

  uint64_t rows_ = 0;
  std::array<Reader, kNumEntryColumns> col_;
  std::vector<Uuid> locations_;
  std::vector<std::string> extensions_;
  uint64_t prev_hi_ = 0, prev_lo_ = 0, prev_inode_ = 0, prev_seq_ = 0;
  int64_t prev_sec_ = 0;
  Uuid prev_parent_ = Uuid::Nil();
  std::string prev_name_;
};

}  // namespace

std::string EncodeEntries(std::span<const EntryRecord> records) {
  EntryEncoder encoder(records.size());
  for (size_t i = 0; i < records.size(); ++i) encoder.Add(i, records[i]);
  return encoder.Finish(records.size());
}

Result<std::vector<EntryRecord>> DecodeEntries(std::string_view encoded) {
  EntryDecoder decoder;
  ES_RETURN_IF_ERROR(decoder.Open(encoded));
  std::vector<EntryRecord> out;
  out.reserve(decoder.rows());
  for (uint64_t i = 0; i < decoder.rows(); ++i) {
    EntryRecord e;
    ES_RETURN_IF_ERROR(decoder.ReadRow(i, out, &e));
    out.push_back(std::move(e));
  }
  ES_RETURN_IF_ERROR(decoder.CheckAllConsumed());
  return out;
}

std::string EncodeLocations(std::span<const LocationRecord> records) {
  std::array<std::string, kNumLocationColumns> col;
  uint64_t prev_seq = 0;
  for (const LocationRecord& l : records) {
    col[kLocFlags].push_back(l.deleted ? 1 : 0);
    col[kLocUuid].append(UuidBytes(l.uuid));
    PutBytes(&col[kLocRootPath], l.root_path);
    PutBytes(&col[kLocName], l.name);
    PutVarint(&col[kLocSeq], ZigZag(U(l.seq.value()) - prev_seq));
    prev_seq = U(l.seq.value());
  }
  return Assemble(kLocationTag, records.size(), col.data(), col.size());
}

Result<std::vector<LocationRecord>> DecodeLocations(std::string_view encoded) {
  constexpr const char* kWhat = "location batch";
  auto bad = [](const std::string& what) { return Corruption("location batch: " + what); };
  uint64_t rows;
  std::array<Reader, kNumLocationColumns> col;
  ES_RETURN_IF_ERROR(Disassemble(encoded, kLocationTag, kWhat, &rows, col.data(), col.size()));
  if (rows != col[kLocFlags].remaining() || col[kLocUuid].remaining() != rows * 16 ||
      col[kLocRootPath].remaining() < rows || col[kLocName].remaining() < rows ||
      col[kLocSeq].remaining() < rows) {
    return bad("column sizes do not match the row count");
  }
  std::vector<LocationRecord> out;
  out.reserve(rows);
  uint64_t prev_seq = 0;
  for (uint64_t i = 0; i < rows; ++i) {
    LocationRecord l;
    uint8_t flags = 0;
    col[kLocFlags].Byte(&flags);
    if (flags > 1) return bad("row " + std::to_string(i) + ": bad flags");
    l.deleted = flags == 1;
    std::string_view b, root, name;
    if (!col[kLocUuid].Bytes(16, &b)) return bad("uuid column truncated");
    l.uuid = Uuid::FromBytes(b.data());
    if (!col[kLocRootPath].LengthPrefixed(&root) || !col[kLocName].LengthPrefixed(&name)) {
      return bad("row " + std::to_string(i) + ": bad string");
    }
    l.root_path.assign(root);
    l.name.assign(name);
    uint64_t v;
    if (!col[kLocSeq].Varint(&v)) return bad("seq column truncated");
    prev_seq += UnZigZag(v);
    l.seq = Seq(S(prev_seq));
    out.push_back(std::move(l));
  }
  ES_RETURN_IF_ERROR(CheckConsumed(col.data(), col.size(), kWhat));
  return out;
}

}  // namespace entrysync
