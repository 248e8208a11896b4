#include "api/event_hub.h"

#include <gtest/gtest.h>

#include <vector>

namespace entrysync {
namespace {

Uuid U(uint8_t b) {
  Uuid u;
  u.bytes[0] = b;
  return u;
}

TEST(EventHubTest, MapsEveryNodeEvent) {
  auto adv = std::get<OwnerAdvanced>(ToEngineEvent(OwnerAdvancedEvent{U(1), "alpha", Epoch(7), Seq(9)}));
  EXPECT_EQ(adv.owner, U(1));
  EXPECT_EQ(adv.owner_name, "alpha");
  EXPECT_EQ(adv.epoch, Epoch(7));
  EXPECT_EQ(adv.seq, Seq(9));
  auto up = std::get<PeerConnected>(ToEngineEvent(PeerConnectedEvent{U(2), "beta", "127.0.0.1:1"}));
  EXPECT_EQ(up.peer, U(2));
  EXPECT_EQ(up.address, "127.0.0.1:1");
  auto down = std::get<PeerDisconnected>(ToEngineEvent(PeerDisconnectedEvent{U(2), "beta", "gone"}));
  EXPECT_EQ(down.reason, "gone");
  auto refused = std::get<PeerRefused>(ToEngineEvent(PeerRefusedEvent{"10.0.0.1:5", "not paired"}));
  EXPECT_EQ(refused.reason, "not paired");
  TransferProgressEvent t;
  t.transfer_id = 3;
  t.peer_name = "beta";
  t.pulling = false;
  t.owner_name = "alpha";
  t.strategy = "snapshot";
  t.done = 5;
  t.total = 10;
  t.bytes = 99;
  t.finished = true;
  auto tu = std::get<TransferUpdate>(ToEngineEvent(t));
  EXPECT_EQ(tu.transfer_id, 3u);
  EXPECT_FALSE(tu.pulling);
  EXPECT_EQ(tu.strategy, SyncStrategy::kSnapshot);
  EXPECT_EQ(tu.done, 5u);
  EXPECT_EQ(tu.total, 10u);
  EXPECT_EQ(tu.bytes, 99u);
  EXPECT_TRUE(tu.finished);
  EXPECT_EQ(std::get<EngineError>(ToEngineEvent(ErrorEvent{"disk full"})).message, "disk full");
}

TEST(EventHubTest, OwnerAdvancedOnlyWhenItAdvances) {
  EventHub hub;
  std::vector<Seq> seen;
  hub.Subscribe([&](const EngineEvent& e) {
    if (auto* a = std::get_if<OwnerAdvanced>(&e)) seen.push_back(a->seq);
  });
  hub.Seed({U(1), "alpha", Epoch(1), Seq(10)});
  hub.Publish(OwnerAdvanced{U(1), "alpha", Epoch(1), Seq(10)});  // held when opened
  hub.Publish(OwnerAdvanced{U(1), "alpha", Epoch(1), Seq(12)});
  hub.Publish(OwnerAdvanced{U(1), "alpha", Epoch(1), Seq(12)});  // the node says it too
  hub.Publish(OwnerAdvanced{U(1), "alpha", Epoch(1), Seq(11)});  // stale
  hub.Publish(OwnerAdvanced{U(1), "alpha", Epoch(2), Seq(3)});   // a new epoch starts over
  hub.Publish(OwnerAdvanced{U(2), "beta", Epoch(1), Seq(1)});
  EXPECT_EQ(seen, (std::vector<Seq>{Seq(12), Seq(3), Seq(1)}));
}

TEST(EventHubTest, UnsubscribeStopsDeliveryEvenFromAHandler) {
  EventHub hub;
  int first = 0, second = 0;
  SubscriptionId second_id;
  SubscriptionId first_id = hub.Subscribe([&](const EngineEvent&) {
    ++first;
    hub.Unsubscribe(second_id);  // from inside a delivery: no deadlock
  });
  second_id = hub.Subscribe([&](const EngineEvent&) { ++second; });
  hub.Publish(EngineError{"x"});
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 0);  // unsubscribed before its turn
  hub.Unsubscribe(first_id);
  hub.Unsubscribe(SubscriptionId(12345));  // unknown: ignored
  hub.Publish(EngineError{"y"});
  EXPECT_EQ(first, 1);
}

}  // namespace
}  // namespace entrysync
