#include "store/digest.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "base/event_bus.h"
#include "base/test_util.h"
#include "store/checkpoint.h"
#include "store/library.h"
#include "store/replica.h"
#include "store/transaction_manager.h"

namespace entrysync {
namespace {

using testing::TempDir;

class DigestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lib = Library::Create(dir_.path(), "me", std::nullopt);
    ASSERT_TRUE(lib.ok()) << lib.status().message();
    lib_ = std::move(*lib);
    tm_ = std::make_unique<TransactionManager>(*lib_, bus_);
    auto loc = tm_->AddLocation("/data", "data");
    ASSERT_TRUE(loc.ok()) << loc.status().message();
    loc_ = *loc;
  }
  std::vector<EntryRecord> Make(int n, const std::string& prefix = "f") {
    std::vector<EntryRecord> v(n);
    for (int i = 0; i < n; ++i) {
      v[i].uuid = NewUuidV7();
      v[i].location = loc_.record.uuid;
      v[i].name = prefix + std::to_string(i);
      v[i].size = static_cast<uint64_t>(i);
      v[i].content_hash = i % 2 ? "h" : "";
    }
    return v;
  }
  // The stored digest equals the one computed from the rows.
  void ExpectConsistent(DeviceRowId owner) {
    auto stored = lib_->digests().Get(owner);
    auto computed = lib_->digests().Recompute(owner);
    ASSERT_TRUE(stored.ok() && computed.ok());
    EXPECT_EQ(stored->checksum(), computed->checksum());
  }

  // Writes `n` rows of this device in a transaction that rolls back (no
  // Commit: the destructor): the digest is as before, nothing pending.
  void ExpectRolledBack(int n, const std::string& prefix) {
    auto before = lib_->digests().Get(lib_->local_device());
    ASSERT_TRUE(before.ok());
    {
      store::Transaction txn(lib_->db());
      ASSERT_TRUE(txn.Begin().ok());
      auto rows = Make(n, prefix);
      for (size_t i = 0; i < rows.size(); ++i) rows[i].seq = Seq(1000 + static_cast<int64_t>(i));
      auto w = EntryWriter::Make(*lib_);
      ASSERT_TRUE(w.ok());
      ASSERT_TRUE(w->PutEntries(lib_->local_device(), rows).ok());
      EXPECT_TRUE(lib_->digests().pending());
    }
    EXPECT_FALSE(lib_->digests().pending());
    auto after = lib_->digests().Get(lib_->local_device());
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(before->checksum(), after->checksum());
  }

  // A remote owner's `n` rows in one location (seqs 2..n+1), applied in
  // one pull through a replica, its digest checked. `replica` is empty
  // when something failed (the failure is reported).
  struct Remote {
    std::optional<DeviceRowId> owner;
    std::optional<Replica> replica;
    std::vector<LocationRecord> locs;
    std::vector<EntryRecord> rows;
  };
  Remote ApplyRemote(int n) {
    Remote r;
    auto owner = lib_->EnsureDevice(NewUuidV4(), "remote");
    auto replica = Replica::Make(*lib_);
    EXPECT_TRUE(owner.ok() && replica.ok());
    if (!owner.ok() || !replica.ok()) return r;
    LocationRecord loc{NewUuidV7(), "/r", "r", Seq(1), false};
    r.rows = Make(n);
    for (size_t i = 0; i < r.rows.size(); ++i) {
      r.rows[i].location = loc.uuid;
      r.rows[i].seq = Seq(static_cast<int64_t>(i) + 2);
    }
    r.locs = {loc};
    auto applied = replica->Apply(*owner, Epoch(9), r.locs, r.rows, Seq(n + 1), *owner);
    EXPECT_TRUE(applied.ok()) << applied.status().message();
    if (!applied.ok()) return r;
    ExpectConsistent(*owner);
    r.owner = *owner;
    r.replica.emplace(std::move(*replica));
    return r;
  }

  TempDir dir_;
  EventBus bus_;
  std::unique_ptr<Library> lib_;
  std::unique_ptr<TransactionManager> tm_;
  LocationInfo loc_;
};

TEST_F(DigestTest, LocalCommitsKeepTheDigest) {
  auto rows = Make(200);  // multi-row statements and single rows
  ASSERT_TRUE(tm_->CommitBulkEntries(loc_, rows).ok());
  ExpectConsistent(lib_->local_device());
  // An update and a tombstone replace row versions.
  std::vector<EntryRecord> change = {rows[3], rows[7]};
  change[0].name = "renamed";
  change[1].deleted = true;
  ASSERT_TRUE(tm_->CommitChanges(loc_, change).ok());
  ExpectConsistent(lib_->local_device());
  auto d = lib_->digests().Get(lib_->local_device());
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->is_zero());
}

TEST_F(DigestTest, ReplicaAppliesAndResetsKeepTheDigest) {
  Remote r = ApplyRemote(100);
  ASSERT_TRUE(r.replica.has_value());
  auto& [owner, replica, locs, rows] = r;
  // Replays change nothing; a newer version replaces the old one.
  ASSERT_TRUE(replica->Apply(*owner, Epoch(9), {}, rows, Seq(101), *owner).ok());
  ExpectConsistent(*owner);
  rows[0].name = "newer";
  rows[0].seq = Seq(102);
  ASSERT_TRUE(replica->Apply(*owner, Epoch(9), {}, std::span(rows).first(1), Seq(102), *owner).ok());
  ExpectConsistent(*owner);
  // The same rows applied to an empty replica give the same digest: it
  // depends on the set, not on the order of writes.
  ASSERT_TRUE(replica->ResetOwner(*owner, Epoch(9)).ok());
  auto zero = lib_->digests().Get(*owner);
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->is_zero());
  ASSERT_TRUE(replica->Apply(*owner, Epoch(9), locs, rows, Seq(102), *owner).ok());
  ExpectConsistent(*owner);
}

TEST_F(DigestTest, ARowChangedBehindTheDigestIsCaughtByRecompute) {
  auto rows = Make(10);
  ASSERT_TRUE(tm_->CommitBulkEntries(loc_, rows).ok());
  ExpectConsistent(lib_->local_device());
  // Another connection (the sqlite3 shell, an attacker with the file)
  // writes without the library's hook: the stored digest no longer matches
  // the rows, and a recomputation says so.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/library.db").c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "UPDATE entry SET name = 'forged' WHERE rowid = 1", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  auto stored = lib_->digests().Get(lib_->local_device());
  auto computed = lib_->digests().Recompute(lib_->local_device());
  ASSERT_TRUE(stored.ok() && computed.ok());
  EXPECT_NE(stored->checksum(), computed->checksum());
}

TEST_F(DigestTest, TransactionsLargerThanABatchUseTheHelperThread) {
  // Several of the hasher's batches, then updates and tombstones of them
  // in another large transaction.
  auto rows = Make(20'000);
  ASSERT_TRUE(tm_->CommitBulkEntries(loc_, rows).ok());
  ExpectConsistent(lib_->local_device());
  std::vector<EntryRecord> change(rows.begin(), rows.begin() + 9'000);
  for (size_t i = 0; i < change.size(); ++i) {
    if (i % 3 == 0) change[i].deleted = true;
    change[i].size += 1;
  }
  ASSERT_TRUE(tm_->CommitChanges(loc_, change).ok());
  ExpectConsistent(lib_->local_device());
}

TEST_F(DigestTest, MultiRowWritesThatLeaveSomeRowsAloneKeepTheDigest) {
  Remote r = ApplyRemote(300);
  ASSERT_TRUE(r.replica.has_value());
  auto& [owner, replica, locs, rows] = r;
  // Every third row newer, the others replayed: each 64-row statement
  // writes some of its rows and leaves the others alone.
  for (size_t i = 0; i < rows.size(); i += 3) {
    rows[i].name += "-v2";
    rows[i].seq = Seq(rows[i].seq.value() + 1000);
  }
  ASSERT_TRUE(replica->Apply(*owner, Epoch(9), {}, rows, Seq(1301), *owner).ok());
  ExpectConsistent(*owner);
  // One uuid twice in one statement: inserted, then replaced.
  auto more = Make(64, "dup");
  more[40] = more[10];
  more[40].name = "dup-again";
  for (size_t i = 0; i < more.size(); ++i) more[i].seq = Seq(5000 + static_cast<int64_t>(i));
  {
    store::Transaction txn(lib_->db());
    ASSERT_TRUE(txn.Begin().ok());
    auto w = EntryWriter::Make(*lib_);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->PutEntries(lib_->local_device(), more).ok());
    ASSERT_TRUE(txn.Commit().ok());
  }
  ExpectConsistent(lib_->local_device());
}

TEST_F(DigestTest, ARolledBackLargeTransactionLeavesTheDigest) {
  auto first = Make(100);
  ASSERT_TRUE(tm_->CommitBulkEntries(loc_, first).ok());
  ExpectRolledBack(10'000, "g");  // several of the hasher's batches in flight
  // The next transaction starts clean.
  auto next = Make(5'000, "h");
  ASSERT_TRUE(tm_->CommitBulkEntries(loc_, next).ok());
  ExpectConsistent(lib_->local_device());
}

TEST_F(DigestTest, RowsOfALocationNotSeenSinceOpeningAreHashedWithItsUuid) {
  auto rows = Make(50);
  ASSERT_TRUE(tm_->CommitBulkEntries(loc_, rows).ok());
  // A fresh connection knows no location yet: the hook sees entry rows of
  // a location it has not seen change, and looks the uuid up at commit.
  tm_.reset();
  lib_.reset();
  auto lib = Library::Open(dir_.path());
  ASSERT_TRUE(lib.ok()) << lib.status().message();
  lib_ = std::move(*lib);
  tm_ = std::make_unique<TransactionManager>(*lib_, bus_);
  std::vector<EntryRecord> change = {rows[1], rows[2]};
  change[0].name = "renamed";
  change[1].deleted = true;
  ASSERT_TRUE(tm_->CommitChanges(loc_, change).ok());
  ExpectConsistent(lib_->local_device());
  // Removing the owner's rows, entries before their location, in one
  // transaction ends at zero.
  {
    store::Transaction txn(lib_->db());
    ASSERT_TRUE(txn.Begin().ok());
    ASSERT_TRUE(lib_->db().Exec("DELETE FROM entry; DELETE FROM location;").ok());
    ASSERT_TRUE(txn.Commit().ok());
  }
  auto zero = lib_->digests().Get(lib_->local_device());
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->is_zero());
}

TEST_F(DigestTest, FailedTransactionLeavesTheDigest) {
  ExpectRolledBack(3, "f");
  ExpectConsistent(lib_->local_device());
}

TEST(CheckpointTest, SignVerifyAndTamper) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_NE(key, nullptr);
  // The key's id as TLS computes it (SHA-256 of the DER SPKI) is the one
  // the checkpoint derives from the raw key.
  unsigned char* der = nullptr;
  int der_len = i2d_PUBKEY(key, &der);
  ASSERT_GT(der_len, 0);
  DeviceId tls_id;
  unsigned int n = 0;
  EVP_Digest(der, static_cast<size_t>(der_len), tls_id.bytes.data(), &n, EVP_sha256(), nullptr);
  OPENSSL_free(der);

  Uuid library = NewUuidV4();
  LtHash h;
  h.Add("row");
  auto cp = SignCheckpoint(key, library, Epoch(5), Seq(42), h.checksum());
  ASSERT_TRUE(cp.ok()) << cp.status().message();
  EXPECT_EQ(DeviceIdOfEd25519(cp->public_key), tls_id);
  EXPECT_EQ(cp->owner, OwnerUuidOf(tls_id));
  EXPECT_TRUE(VerifyCheckpoint(*cp, library).ok());
  // Another library, seq, digest or owner: refused.
  EXPECT_FALSE(VerifyCheckpoint(*cp, NewUuidV4()).ok());
  Checkpoint bad = *cp;
  bad.seq = Seq(43);
  EXPECT_FALSE(VerifyCheckpoint(bad, library).ok());
  bad = *cp;
  bad.digest[0] ^= 1;
  EXPECT_FALSE(VerifyCheckpoint(bad, library).ok());
  bad = *cp;
  bad.owner = NewUuidV4();
  EXPECT_FALSE(VerifyCheckpoint(bad, library).ok());
  EVP_PKEY_free(key);
}

}  // namespace
}  // namespace entrysync
