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

}  // namespace

std::string EncodeEntries(std::span<const EntryRecord> records) {
  std::array<std::string, kNumEntryColumns> col;
  col[kFlags].reserve(records.size());

  std::unordered_map<Uuid, uint32_t> row_of;  // uuid -> last row that has it
  row_of.reserve(records.size());
  std::vector<Uuid> locations;
  std::unordered_map<Uuid, uint64_t> location_index;
  std::vector<uint64_t> location_refs;
  location_refs.reserve(records.size());
  std::unordered_map<std::string, uint64_t> ext_index;

  uint64_t prev_hi = 0, prev_lo = 0, prev_inode = 0, prev_seq = 0;
  int64_t prev_sec = 0;
  Uuid prev_parent = Uuid::Nil();
  std::string prev_name;

  for (size_t i = 0; i < records.size(); ++i) {
    const EntryRecord& e = records[i];
    std::string_view name = e.name;
    uint8_t flags = static_cast<uint8_t>(e.kind) & kKindMask;
    if (e.deleted) flags |= kDeletedBit;
    if (!e.extension.empty() && name.size() > e.extension.size() &&
        name[name.size() - e.extension.size() - 1] == '.' && name.ends_with(e.extension)) {
      flags |= kExtStrippedBit;
      name.remove_suffix(e.extension.size() + 1);
    }
    if (!e.content_hash.empty()) flags |= kHasHashBit;
    col[kFlags].push_back(static_cast<char>(flags));

    const uint64_t hi = Hi(e.uuid), lo = Lo(e.uuid);
    PutVarint(&col[kUuidHi], ZigZag(hi - prev_hi));
    PutVarint(&col[kUuidLo], ZigZag(lo - prev_lo));
    prev_hi = hi;
    prev_lo = lo;

    if (e.parent.is_nil()) {
      PutVarint(&col[kParent], kParentNil);
    } else if (e.parent == prev_parent) {
      PutVarint(&col[kParent], kParentSame);
    } else if (auto it = row_of.find(e.parent); it != row_of.end()) {
      PutVarint(&col[kParent], kParentBackRefBase + (i - it->second));
    } else {
      PutVarint(&col[kParent], kParentLiteral);
      col[kParentLiterals].append(UuidBytes(e.parent));
    }
    prev_parent = e.parent;
    row_of[e.uuid] = static_cast<uint32_t>(i);

    auto [loc, inserted] = location_index.try_emplace(e.location, locations.size());
    if (inserted) locations.push_back(e.location);
    location_refs.push_back(loc->second);

    size_t prefix = 0;
    const size_t max_prefix = std::min(prev_name.size(), name.size());
    while (prefix < max_prefix && prev_name[prefix] == name[prefix]) ++prefix;
    PutVarint(&col[kNamePrefix], prefix);
    PutVarint(&col[kNameSuffixLen], name.size() - prefix);
    col[kNameSuffix].append(name.substr(prefix));
    prev_name.assign(name);

    auto [ext, new_ext] = ext_index.try_emplace(e.extension, ext_index.size());
    PutVarint(&col[kExtension], ext->second);
    if (new_ext) PutBytes(&col[kExtLiterals], e.extension);

    PutVarint(&col[kSize], e.size);
    PutVarint(&col[kInode], ZigZag(e.inode - prev_inode));
    prev_inode = e.inode;

    int64_t sec;
    uint64_t nsec;
    SplitNs(e.modified_ns, &sec, &nsec);
    PutVarint(&col[kModifiedSec], ZigZag(U(sec) - U(prev_sec)));
    PutVarint(&col[kModifiedNsec], nsec);
    prev_sec = sec;
    PutVarint(&col[kCreated], ZigZag(U(e.created_ns) - U(e.modified_ns)));
    PutVarint(&col[kAccessed], ZigZag(U(e.accessed_ns) - U(e.modified_ns)));

    PutVarint(&col[kSeq], ZigZag(U(e.seq.value()) - prev_seq));
    prev_seq = U(e.seq.value());

    if (!e.content_hash.empty()) PutBytes(&col[kHash], e.content_hash);
  }

  std::string& loc_col = col[kLocation];
  PutVarint(&loc_col, locations.size());
  for (const Uuid& u : locations) loc_col.append(UuidBytes(u));
  for (uint64_t ref : location_refs) PutVarint(&loc_col, ref);

  return Assemble(kEntryTag, records.size(), col.data(), col.size());
}

Result<std::vector<EntryRecord>> DecodeEntries(std::string_view encoded) {
  constexpr const char* kWhat = "entry batch";
  auto bad = [](const std::string& what) { return Corruption("entry batch: " + what); };

  uint64_t rows;
  std::array<Reader, kNumEntryColumns> col;
  ES_RETURN_IF_ERROR(Disassemble(encoded, kEntryTag, kWhat, &rows, col.data(), col.size()));
  // One flag byte per row bounds the row count by the input size.
  if (rows != col[kFlags].remaining()) return bad("row count does not match flags column");
  // Every per-row column holds at least one byte per row, so the row count
  // (and every allocation below) is bounded by the input size.
  for (int c : {kUuidHi, kUuidLo, kParent, kNamePrefix, kNameSuffixLen, kExtension, kSize, kInode,
                kModifiedSec, kModifiedNsec, kCreated, kAccessed, kSeq}) {
    if (col[c].remaining() < rows) return bad("column " + std::to_string(c) + " too short");
  }

  uint64_t location_count;
  if (!col[kLocation].Varint(&location_count) || location_count > col[kLocation].remaining() / 16) {
    return bad("bad location dictionary");
  }
  std::vector<Uuid> locations;
  locations.reserve(location_count);
  for (uint64_t i = 0; i < location_count; ++i) {
    std::string_view b;
    col[kLocation].Bytes(16, &b);
    locations.push_back(Uuid::FromBytes(b.data()));
  }

  std::vector<EntryRecord> out;
  out.reserve(rows);
  std::vector<std::string> extensions;
  uint64_t prev_hi = 0, prev_lo = 0, prev_inode = 0, prev_seq = 0;
  int64_t prev_sec = 0;
  Uuid prev_parent = Uuid::Nil();
  std::string prev_name;

  for (uint64_t i = 0; i < rows; ++i) {
    EntryRecord e;
    uint8_t flags = 0;
    col[kFlags].Byte(&flags);  // length checked above
    if ((flags & ~kKnownFlags) != 0 || (flags & kKindMask) > 2) {
      return bad("row " + std::to_string(i) + ": bad flags " + std::to_string(flags));
    }
    e.kind = static_cast<EntryKind>(flags & kKindMask);
    e.deleted = (flags & kDeletedBit) != 0;

    uint64_t v, w;
    if (!col[kUuidHi].Varint(&v) || !col[kUuidLo].Varint(&w)) return bad("uuid column truncated");
    prev_hi += UnZigZag(v);
    prev_lo += UnZigZag(w);
    e.uuid = FromHiLo(prev_hi, prev_lo);

    if (!col[kParent].Varint(&v)) return bad("parent column truncated");
    if (v == kParentNil) {
      e.parent = Uuid::Nil();
    } else if (v == kParentSame) {
      e.parent = prev_parent;
    } else if (v == kParentLiteral) {
      std::string_view b;
      if (!col[kParentLiterals].Bytes(16, &b)) return bad("parent literals truncated");
      e.parent = Uuid::FromBytes(b.data());
    } else {
      const uint64_t distance = v - kParentBackRefBase;
      if (distance > i) return bad("row " + std::to_string(i) + ": parent reference out of range");
      e.parent = out[i - distance].uuid;
    }
    prev_parent = e.parent;

    if (!col[kLocation].Varint(&v) || v >= locations.size()) return bad("bad location index");
    e.location = locations[v];

    uint64_t prefix, suffix_len;
    std::string_view suffix;
    if (!col[kNamePrefix].Varint(&prefix) || prefix > prev_name.size() ||
        !col[kNameSuffixLen].Varint(&suffix_len) ||
        !col[kNameSuffix].Bytes(suffix_len <= SIZE_MAX ? static_cast<size_t>(suffix_len) : SIZE_MAX,
                                &suffix)) {
      return bad("row " + std::to_string(i) + ": bad name");
    }
    prev_name.resize(prefix);
    prev_name.append(suffix);

    if (!col[kExtension].Varint(&v) || v > extensions.size()) return bad("bad extension index");
    if (v == extensions.size()) {
      std::string_view lit;
      if (!col[kExtLiterals].LengthPrefixed(&lit)) return bad("extension literals truncated");
      extensions.emplace_back(lit);
    }
    e.extension = extensions[v];
    e.name = prev_name;
    if (flags & kExtStrippedBit) {
      if (e.extension.empty()) return bad("row " + std::to_string(i) + ": stripped empty extension");
      e.name.push_back('.');
      e.name.append(e.extension);
    }

    if (!col[kSize].Varint(&e.size)) return bad("size column truncated");
    if (!col[kInode].Varint(&v)) return bad("inode column truncated");
    prev_inode += UnZigZag(v);
    e.inode = prev_inode;

    uint64_t nsec;
    if (!col[kModifiedSec].Varint(&v) || !col[kModifiedNsec].Varint(&nsec) ||
        nsec >= static_cast<uint64_t>(kNsPerSec)) {
      return bad("row " + std::to_string(i) + ": bad modified time");
    }
    prev_sec = S(U(prev_sec) + UnZigZag(v));
    const uint64_t modified = U(prev_sec) * static_cast<uint64_t>(kNsPerSec) + nsec;
    e.modified_ns = S(modified);
    if (!col[kCreated].Varint(&v) || !col[kAccessed].Varint(&w)) return bad("time column truncated");
    e.created_ns = S(modified + UnZigZag(v));
    e.accessed_ns = S(modified + UnZigZag(w));

    if (!col[kSeq].Varint(&v)) return bad("seq column truncated");
    prev_seq += UnZigZag(v);
    e.seq = Seq(S(prev_seq));

    if (flags & kHasHashBit) {
      std::string_view hash;
      if (!col[kHash].LengthPrefixed(&hash) || hash.empty()) return bad("bad content hash");
      e.content_hash.assign(hash);
    }
    out.push_back(std::move(e));
  }
  ES_RETURN_IF_ERROR(CheckConsumed(col.data(), col.size(), kWhat));
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
