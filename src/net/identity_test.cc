#include "net/identity.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace entrysync {
namespace {

namespace fs = std::filesystem;

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/es_identity_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string root_;
};

TEST_F(IdentityTest, CreatedThenReloadedKeepsDeviceId) {
  const std::string dir = root_ + "/a/nested";
  auto first = LoadOrCreateIdentity(dir);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->device_id().is_zero());

  struct stat st;
  ASSERT_EQ(stat((dir + "/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir + "/cert.pem").c_str(), &st), 0);

  auto again = LoadOrCreateIdentity(dir);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->device_id(), first->device_id());

  auto from_cert = DeviceIdOfCertificate(again->cert());
  ASSERT_TRUE(from_cert.ok());
  EXPECT_EQ(*from_cert, first->device_id());

  // The certificate names us as CN=entrysync.
  char cn[64] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(again->cert()), NID_commonName, cn, sizeof cn);
  EXPECT_STREQ(cn, "entrysync");
}

TEST_F(IdentityTest, TwoIdentitiesDiffer) {
  auto a = LoadOrCreateIdentity(root_ + "/a");
  auto b = LoadOrCreateIdentity(root_ + "/b");
  auto c = GenerateIdentity();
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_NE(a->device_id(), b->device_id());
  EXPECT_NE(a->device_id(), c->device_id());
}

TEST_F(IdentityTest, LostCertificateIsReissuedForSameKey) {
  auto a = LoadOrCreateIdentity(root_);
  ASSERT_TRUE(a.ok());
  fs::remove(root_ + "/cert.pem");
  auto b = LoadOrCreateIdentity(root_);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->device_id(), b->device_id());
}

TEST_F(IdentityTest, CertificateWithoutKeyIsAnError) {
  ASSERT_TRUE(LoadOrCreateIdentity(root_).ok());
  fs::remove(root_ + "/key.pem");
  auto r = LoadOrCreateIdentity(root_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("load key " + root_ + "/key.pem"), std::string::npos)
      << r.status().message();
}

TEST_F(IdentityTest, GarbageKeyIsAOneLineError) {
  std::ofstream(root_ + "/key.pem") << "not a key\n";
  auto r = LoadOrCreateIdentity(root_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("load key " + root_ + "/key.pem: ", 0), 0u) << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
}

TEST_F(IdentityTest, MismatchedCertificateIsRejected) {
  ASSERT_TRUE(LoadOrCreateIdentity(root_ + "/a").ok());
  ASSERT_TRUE(LoadOrCreateIdentity(root_ + "/b").ok());
  fs::copy_file(root_ + "/b/cert.pem", root_ + "/a/cert.pem", fs::copy_options::overwrite_existing);
  auto r = LoadOrCreateIdentity(root_ + "/a");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not match"), std::string::npos);
}

}  // namespace
}  // namespace entrysync
