// libFuzzer harness for the snapshot file reader (snapshot/snapshot.h):
// InspectSnapshot (header, quick_check, metadata, row checks, content
// checksum) and ImportSnapshot into a scratch library.
//
// Input: byte 0 holds flags, the rest is the file.
//   bit 0  repair the header's page count (offset 28) from the file size and
//          its version-valid-for (offset 92) from the change counter, so that
//          inserted or erased bytes still pass the header check and reach
//          SQLite; without it the raw header is checked.
//   bit 1  import with the file's own SHA-256 as the expected digest (a
//          download: the content checksum is skipped, so altered rows reach
//          the insert); without it the import recomputes the checksum.
//   bit 2  the rest is not a file but SQL, run on a copy of a valid
//          snapshot (alpha's 3 entries, made at start) to make the file:
//          structure-aware mutation (wrong types in meta, rows that clash,
//          views and triggers in place of tables) that byte flips of a
//          b-tree rarely reach. The SQL runs bounded (progress handler, 1 MiB
//          values, 256 pages, no ATTACH).
// The file is written to tmpfs (/dev/shm when there) and the library lives
// there too. The library (id fuzz::LibraryId(), this device fuzz::BetaUuid())
// is made once; an import that succeeded is undone by deleting what it
// added, so each input starts from the same library.
// Properties: inspection and import never crash; a refused import changes
// nothing (all or nothing); a successful one holds exactly the file's rows
// under the watermark (epoch, max_seq) the file names, and passed every
// check of InspectSnapshot but the checksum the digest stands for.
#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/hash.h"
#include "fuzz_common.h"
#include "snapshot/snapshot.h"
#include "store/library.h"

namespace es = entrysync;
using es::fuzz::Check;

namespace {

struct Scratch {
  std::string dir;
  std::string file;
  std::string valid;  // alpha's snapshot: what SQL mode edits
  std::unique_ptr<es::Library> lib;
  es::store::Stmt counts;  // on lib: see Counts
};
Scratch* g = nullptr;

void RemoveScratch() {
  if (g == nullptr) return;
  g->counts = es::store::Stmt();
  g->lib.reset();
  std::error_code ec;
  std::filesystem::remove_all(g->dir, ec);
}

uint32_t Be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void PutBe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

// Header bit 0: page count and version-valid-for made consistent.
void RepairHeader(std::string* file) {
  if (file->size() < 100) return;
  auto* h = reinterpret_cast<uint8_t*>(file->data());
  uint32_t page_size = (uint32_t{h[16]} << 8) | h[17];
  if (page_size == 1) page_size = 65536;
  if (page_size < 512 || (page_size & (page_size - 1)) != 0) return;
  PutBe32(h + 28, static_cast<uint32_t>(file->size() / page_size));
  PutBe32(h + 92, Be32(h + 24));
}

// SQL mode: no ATTACH or DETACH (no file but the snapshot is touched), no
// PRAGMA max_page_count (the size stays bounded).
int Authorize(void*, int action, const char* a, const char*, const char*, const char*) {
  if (action == SQLITE_ATTACH || action == SQLITE_DETACH) return SQLITE_DENY;
  if (action == SQLITE_PRAGMA && a != nullptr && std::string_view(a) == "max_page_count") return SQLITE_DENY;
  return SQLITE_OK;
}

// Bit 2: the valid snapshot, edited by `sql` (its errors are ignored:
// whatever the statements before the failing one did stays).
std::string EditedSnapshot(const std::string& sql) {
  std::ofstream(g->file, std::ios::binary | std::ios::trunc) << g->valid;
  sqlite3* db = nullptr;
  if (sqlite3_open(g->file.c_str(), &db) == SQLITE_OK) {
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1 << 20);
    sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 1 << 16);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    (void)sqlite3_exec(db, "PRAGMA max_page_count = 256", nullptr, nullptr, nullptr);
    sqlite3_set_authorizer(db, Authorize, nullptr);
    int steps = 0;
    sqlite3_progress_handler(
        db, 1000, [](void* n) { return ++*static_cast<int*>(n) > 1000 ? 1 : 0; }, &steps);
    (void)sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  }
  sqlite3_close(db);
  std::error_code ec;
  std::filesystem::remove(g->file + "-journal", ec);
  std::ifstream in(g->file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Rows of every table a failed import must leave alone.
std::vector<int64_t> Counts() {
  es::store::Stmt& st = g->counts;
  st.Reset();
  auto row = st.Step();
  Check(row.ok() && *row, "count query runs");
  std::vector<int64_t> out;
  for (int i = 0; i < 5; ++i) out.push_back(st.Int(i));
  st.Reset();
  return out;
}

// Undoes a successful import of `owner`: the library is as it was made.
void Forget(es::Library& lib, es::DeviceRowId owner) {
  // In a Transaction: its commit folds the digest's change (store/digest.h).
  es::store::Transaction txn(lib.db());
  Check(txn.Begin().ok(), "cleanup begins");
  for (const char* sql : {"DELETE FROM entry WHERE owner = ?1", "DELETE FROM location WHERE owner = ?1",
                          "DELETE FROM watermark WHERE owner = ?1", "DELETE FROM checkpoint WHERE owner = ?1",
                          "DELETE FROM device WHERE id = ?1 AND is_local = 0"}) {
    auto st = lib.db().Prepare(sql);
    Check(st.ok(), "cleanup prepares");
    st->Bind(1, owner.value());
    Check(st->Run().ok(), "cleanup runs");
  }
  Check(lib.db().Exec("DELETE FROM meta WHERE key = 'rows_applied'").ok(), "cleanup of meta runs");
  Check(txn.Commit().ok(), "cleanup commits");
  // The commit left the owner's digest at zero; the row goes with the owner.
  auto st = lib.db().Prepare("DELETE FROM owner_digest WHERE owner = ?1");
  Check(st.ok(), "cleanup of the digest prepares");
  st->Bind(1, owner.value());
  Check(st->Run().ok(), "cleanup of the digest runs");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  spdlog::set_level(spdlog::level::off);
  g = new Scratch;
  g->dir = es::fuzz::ScratchRoot() + "/entrysync-snapshot-fuzz-" + std::to_string(::getpid());
  g->file = g->dir + "/input.snapshot";
  auto lib = es::fuzz::MakeDeviceLibrary(g->dir + "/library", "beta", es::fuzz::BetaUuid(),
                                         es::fuzz::BetaId(), es::fuzz::BetaEpoch(), 3);
  if (!lib.ok()) {
    std::fprintf(stderr, "snapshot_fuzzer: %s\n", lib.status().message().c_str());
    std::abort();
  }
  g->lib = std::move(*lib);
  {
    auto alpha = es::fuzz::MakeDeviceLibrary(g->dir + "/alpha", "alpha", es::fuzz::AlphaUuid(),
                                             es::fuzz::AlphaId(), es::fuzz::AlphaEpoch(), 3);
    if (!alpha.ok()) std::abort();
    auto valid = es::fuzz::SmallSnapshot(**alpha, g->dir + "/alpha.snapshot");
    if (!valid.ok()) {
      std::fprintf(stderr, "snapshot_fuzzer: %s\n", valid.status().message().c_str());
      std::abort();
    }
    g->valid = *valid;
  }
  auto counts = g->lib->db().Prepare(
      "SELECT (SELECT count(*) FROM device), (SELECT count(*) FROM location), (SELECT count(*) FROM entry),"
      " (SELECT count(*) FROM watermark), (SELECT coalesce(sum(seq), 0) FROM entry)");
  if (!counts.ok()) std::abort();
  g->counts = std::move(*counts);
  std::atexit(RemoveScratch);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (flags & 4) file = EditedSnapshot(file);
  if (flags & 1) RepairHeader(&file);
  std::ofstream(g->file, std::ios::binary | std::ios::trunc) << file;

  // An import without a digest runs InspectSnapshot's checks itself, so
  // the file is inspected on its own only when the import skips some.
  const bool with_digest = flags & 2;
  std::optional<es::Result<es::SnapshotInfo>> info;
  if (with_digest) {
    info = es::InspectSnapshot(g->file);
    if (info->ok()) {
      Check((*info)->size_bytes == file.size(), "inspection reports the file's size");
    } else {
      Check(!info->status().message().empty(), "a refused file has a reason");
    }
  }

  es::Library& lib = *g->lib;
  const std::vector<int64_t> before = Counts();
  std::optional<std::string> sha;
  if (with_digest) {
    es::Sha256 h;
    h.Update(file);
    sha = h.FinishHex();
  }
  auto imported = es::ImportSnapshot(lib, g->file, sha);
  if (!imported.ok()) {
    Check(Counts() == before, "a refused import changes nothing");
    return 0;
  }
  const es::SnapshotInfo& got = imported->info;
  if (info)
    Check(info->ok() || info->status().message().find("checksum") != std::string::npos,
          "what imports with its digest inspects, but for the skipped checksum");
  Check(got.library_id == es::fuzz::LibraryId() && got.owner != es::fuzz::BetaUuid(),
        "an import is of this library and another owner");
  auto rows = lib.CountEntries(imported->owner, /*include_deleted=*/true);
  Check(rows.ok() && *rows == got.entries, "the library holds the file's entries");
  auto wm = lib.GetWatermark(imported->owner);
  Check(wm.ok() && wm->has_value() && (*wm)->epoch == got.epoch && (*wm)->seq == got.max_seq,
        "the watermark is the file's");
  Forget(lib, imported->owner);
  Check(Counts() == before, "the import was undone");
  return 0;
}
