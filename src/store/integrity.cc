#include "store/integrity.h"

#include <cstdio>
#include <filesystem>
#include <tuple>
#include <vector>

#include "store/digest.h"
#include "store/library.h"
#include "store/sqlite.h"

namespace entrysync {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Interrupts the connection's statements once `deadline` passed.
struct Deadline {
  Clock::time_point at;
  bool hit = false;
};

int OnProgress(void* arg) {
  auto* d = static_cast<Deadline*>(arg);
  if (Clock::now() < d->at) return 0;
  d->hit = true;
  return 1;  // SQLITE_INTERRUPT for the running statement
}

// 1. PRAGMA quick_check: "ok", or up to `max` findings joined into one line.
// Sets `complete` false when the deadline cut it short.
Status CheckStructure(store::Db& db, const std::string& dir, const Deadline& deadline, int max,
                      bool* complete) {
  auto st = db.Prepare("PRAGMA quick_check(" + std::to_string(max + 1) + ")");
  if (!st.ok()) {
    if (deadline.hit) return *complete = false, Status::Ok();
    return Corruption("library " + dir + " is damaged: " + st.status().message() + " (PRAGMA quick_check)");
  }
  std::vector<std::string> findings;
  for (;;) {
    auto row = st->Step();
    if (!row.ok()) {
      if (deadline.hit) return *complete = false, Status::Ok();
      findings.push_back(row.status().message());
      break;
    }
    if (!*row) break;
    findings.emplace_back(st->Text(0));
  }
  if (findings.size() == 1 && findings[0] == "ok") return Status::Ok();
  std::string line;
  for (size_t i = 0; i < findings.size() && i < static_cast<size_t>(max); ++i) {
    std::string f = findings[i];
    for (char& c : f)
      if (c == '\n') c = ' ';
    line += (i ? "; " : "") + f;
  }
  if (findings.size() > static_cast<size_t>(max)) line += "; and more";
  return Corruption("library " + dir + " is damaged: " + line + " (PRAGMA quick_check)");
}

// 2. Each owner's rows against its stored set digest (DESIGN.md §10,
// docs/trust.md): the check for what SQLite's structure checks cannot see,
// a value altered inside a valid record. Recomputes each owner's digest
// from its rows (a scan, within the deadline) and returns Corruption naming
// the first owner whose rows do not match.
Status CheckOwnerDigests(store::Db& db, const std::string& dir, const Deadline& deadline, bool* complete) {
  OwnerDigests digests(db);
  auto owners = db.Prepare("SELECT id, name, is_local FROM device ORDER BY id");
  if (!owners.ok()) return deadline.hit ? (*complete = false, Status::Ok()) : owners.status();
  std::vector<std::tuple<DeviceRowId, std::string, bool>> list;
  for (;;) {
    auto row = owners->Step();
    if (!row.ok()) return deadline.hit ? (*complete = false, Status::Ok()) : row.status();
    if (!*row) break;
    list.emplace_back(DeviceRowId(owners->Int(0)), std::string(owners->Text(1)), owners->Int(2) != 0);
  }
  for (const auto& [id, name, local] : list) {
    auto stored = digests.Get(id);
    auto computed = digests.Recompute(id);
    if (!stored.ok() || !computed.ok()) {
      if (deadline.hit) return *complete = false, Status::Ok();
      std::string why = "library " + dir;
      why += " is damaged: the set digest of " + name + " cannot be read: ";
      why += (stored.ok() ? computed.status() : stored.status()).message();
      return Corruption(why);
    }
    if (stored->checksum() == computed->checksum()) continue;
    std::string why = "library " + dir;
    why += " is damaged: the rows of " + name +
           " do not match their set digest (a value changed inside the file); ";
    if (local)
      why +=
          "this device's own index cannot be trusted: restore the library from a backup, or create a new one "
          "and index the folders again";
    else
      why +=
          "drop them with 'entrysync peer remove " + name + " --purge' and pair it again to fetch them anew";
    return Corruption(why);
  }
  return Status::Ok();
}

}  // namespace

Result<IntegrityReport> CheckLibraryIntegrity(const std::string& dir, const IntegrityOptions& options) {
  const std::string path = (fs::path(dir) / Library::kDbFile).string();
  std::error_code ec;
  if (!fs::exists(path, ec)) return NotFound("no library in " + dir + " (run 'entrysync init' first)");
  auto t0 = Clock::now();
  ES_ASSIGN_OR_RETURN(store::Db db, store::Db::Open(path, /*create=*/false));
  ES_RETURN_IF_ERROR(db.Exec("PRAGMA query_only = ON").Wrap("check library " + dir));
  Deadline deadline{t0 + options.budget};
  sqlite3_progress_handler(db.raw(), 1000, OnProgress, &deadline);
  IntegrityReport report;
  ES_RETURN_IF_ERROR(CheckStructure(db, dir, deadline, options.max_findings, &report.complete));
  if (report.complete) ES_RETURN_IF_ERROR(CheckOwnerDigests(db, dir, deadline, &report.complete));
  sqlite3_progress_handler(db.raw(), 0, nullptr, nullptr);
  report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  char buf[128];
  if (report.complete)
    std::snprintf(buf, sizeof buf, "quick_check ok in %.2fs", report.seconds);
  else
    std::snprintf(buf, sizeof buf, "quick_check stopped after %.2fs (its budget): not fully checked",
                  report.seconds);
  report.summary = buf;
  return report;
}

}  // namespace entrysync
