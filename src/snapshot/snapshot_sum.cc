#include "snapshot/snapshot_sum.h"

#include <cstring>

#include "base/hash.h"

namespace entrysync::snapshot_internal {
namespace {

constexpr const char* kSumFunction = "es_snapshot_sum";

// Columns hashed by the content checksum, per table (docs/snapshot-format.md).
constexpr const char* kEntrySumColumns =
    "seq, uuid, location, parent, name, extension, kind, size, inode, created_ns, modified_ns,"
    " accessed_ns, content_hash, deleted";
constexpr const char* kLocationSumColumns = "id, uuid, root_path, name, seq, deleted";

// ---- es_snapshot_sum(v1, v2, ...) ----
//
// An aggregate over rows: each row's values are serialized (a type tag, then
// 8 little-endian bytes for numbers, or a 4-byte length and the bytes for
// text and blobs), the row's CRC-32 is spread over 64 bits by an odd
// multiplier, and the rows' values are summed mod 2^64. Independent of row
// order; any change of one row changes the sum. It guards against accidental
// damage; an attacker is stopped by the SHA-256 the importer is given.
void SumStep(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  auto* acc = static_cast<uint64_t*>(sqlite3_aggregate_context(ctx, sizeof(uint64_t)));
  if (acc == nullptr) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  thread_local std::string row;
  row.clear();
  for (int i = 0; i < argc; ++i) {
    sqlite3_value* v = argv[i];
    switch (sqlite3_value_type(v)) {
      case SQLITE_INTEGER: {
        int64_t x = sqlite3_value_int64(v);
        char b[9] = {'i'};
        for (int k = 0; k < 8; ++k) b[1 + k] = static_cast<char>(static_cast<uint64_t>(x) >> (8 * k));
        row.append(b, 9);
        break;
      }
      case SQLITE_FLOAT: {
        double d = sqlite3_value_double(v);
        uint64_t x;
        std::memcpy(&x, &d, 8);
        char b[9] = {'f'};
        for (int k = 0; k < 8; ++k) b[1 + k] = static_cast<char>(x >> (8 * k));
        row.append(b, 9);
        break;
      }
      case SQLITE_NULL:
        row.push_back('n');
        break;
      default: {  // text or blob, as stored
        bool text = sqlite3_value_type(v) == SQLITE_TEXT;
        const void* p = text ? static_cast<const void*>(sqlite3_value_text(v)) : sqlite3_value_blob(v);
        uint32_t n = static_cast<uint32_t>(sqlite3_value_bytes(v));
        char b[5] = {text ? 't' : 'b'};
        for (int k = 0; k < 4; ++k) b[1 + k] = static_cast<char>(n >> (8 * k));
        row.append(b, 5);
        if (n > 0) row.append(static_cast<const char*>(p), n);
      }
    }
  }
  uint64_t crc = Crc32(row.data(), row.size());
  *acc += (crc + 1) * 0x9E3779B97F4A7C15ULL;
}

void SumFinal(sqlite3_context* ctx) {
  auto* acc = static_cast<uint64_t*>(sqlite3_aggregate_context(ctx, 0));
  sqlite3_result_int64(ctx, static_cast<int64_t>(acc ? *acc : 0));
}

}  // namespace

Status RegisterSum(sqlite3* db) {
  int rc = sqlite3_create_function_v2(db, kSumFunction, -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                      nullptr, SumStep, SumFinal, nullptr);
  if (rc != SQLITE_OK) return Internal(std::string("register checksum function: ") + sqlite3_errstr(rc));
  return Status::Ok();
}

std::string ContentSumQuery(const std::string& schema) {
  return std::string("SELECT (SELECT ") + kSumFunction + "(" + kEntrySumColumns + ") FROM " + schema +
         ".entry), (SELECT " + kSumFunction + "(" + kLocationSumColumns + ") FROM " + schema +
         ".location), (SELECT " + kSumFunction + "(key, value) FROM " + schema +
         ".meta WHERE key <> 'content_sum')";
}

uint64_t CombineSums(int64_t entry_sum, int64_t location_sum, int64_t meta_sum) {
  // Different multipliers per table so a row cannot move between tables unseen.
  return static_cast<uint64_t>(entry_sum) + 3 * static_cast<uint64_t>(location_sum) +
         5 * static_cast<uint64_t>(meta_sum);
}

Result<uint64_t> ContentSum(store::Db& db, const std::string& schema) {
  ES_ASSIGN_OR_RETURN(store::Stmt st, db.Prepare(ContentSumQuery(schema)));
  ES_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Internal("checksum query returned no row");
  return CombineSums(st.Int(0), st.Int(1), st.Int(2));
}

}  // namespace entrysync::snapshot_internal
