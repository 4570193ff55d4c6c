// Proves the real event loop's contract: timers fire once, in deadline
// order, on the loop thread; a cancelled timer never fires (even one whose
// deadline passed while another handler ran); cancelling twice or after the
// timer fired is a no-op; work posted from other threads runs on the loop
// thread in the order posted; Stop ends Run and the destructor joins.
#include "env/real/event_loop.h"

#include "env/real/testing/eventually.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace bw::env {
namespace {

using testing::Eventually;

TEST(EventLoopTest, TimersFireOnceInDeadlineOrderOnTheLoopThread) {
  EventLoop loop;
  std::mutex mu;
  std::vector<int> fired;
  std::atomic<bool> on_loop{true};
  auto record = [&](int n) {
    return [&, n] {
      if (!loop.InLoopThread()) on_loop = false;
      std::lock_guard<std::mutex> lock(mu);
      fired.push_back(n);
    };
  };
  // Scheduled before the loop runs, out of deadline order.
  loop.Schedule(30'000, record(3));
  loop.Schedule(10'000, record(1));
  loop.Schedule(20'000, record(2));
  loop.Start();
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return fired.size() == 3;
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(on_loop.load());
}

TEST(EventLoopTest, ACancelledTimerNeverFires) {
  EventLoop loop;
  std::atomic<int> fired{0};
  std::atomic<bool> done{false};
  loop.Start();
  loop.Post([&] {
    TimerId a = loop.Schedule(5'000, [&] { fired += 1; });
    TimerId b = loop.Schedule(1'000, [&] { fired += 10; });
    loop.Cancel(a);
    loop.Cancel(a);  // twice: no-op
    // Past b's deadline while this handler still runs: b has expired but
    // its handler has not run; cancelling it now must still win.
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    loop.Cancel(b);
    EXPECT_EQ(loop.pending_timers(), 0u);
    TimerId c = loop.Schedule(1'000, [&] {
      fired += 100;
      done = true;
    });
    (void)c;
  });
  ASSERT_TRUE(Eventually([&] { return done.load(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(fired.load(), 100);
}

TEST(EventLoopTest, ATimerDueNowRunsAfterQueuedWorkAndCanBeCancelled) {
  EventLoop loop;
  std::vector<int> order;  // touched only on the loop thread
  std::atomic<bool> done{false};
  loop.Start();
  loop.Post([&] {
    TimerId now = loop.Schedule(0, [&] { order.push_back(2); });
    TimerId cancelled = loop.Schedule(0, [&] { order.push_back(99); });
    TimerId negative = loop.Schedule(-5, [&] { order.push_back(3); });
    (void)now;
    (void)negative;
    EXPECT_EQ(loop.pending_timers(), 3u);
    loop.Cancel(cancelled);
    loop.Cancel(cancelled);  // twice: no-op
    EXPECT_EQ(loop.pending_timers(), 2u);
    order.push_back(1);  // the handler in progress finishes first
    loop.Post([&] {
      order.push_back(4);
      done = true;
    });
  });
  ASSERT_TRUE(Eventually([&] { return done.load(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(testing::OnLoop(loop, [&] { return loop.pending_timers(); }), 0u);
}

TEST(EventLoopTest, CancelAfterFiringIsANoOpAndTimersCanRescheduleThemselves) {
  EventLoop loop;
  std::atomic<int> ticks{0};
  TimerId first = 0;
  std::function<void()> tick = [&] {
    if (++ticks < 5) loop.Schedule(1'000, tick);
  };
  loop.Start();
  loop.Post([&] { first = loop.Schedule(1'000, tick); });
  ASSERT_TRUE(Eventually([&] { return ticks.load() == 5; }));
  std::atomic<bool> cancelled{false};
  loop.Post([&] {
    loop.Cancel(first);  // fired long ago
    cancelled = true;
  });
  ASSERT_TRUE(Eventually([&] { return cancelled.load(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(ticks.load(), 5);
}

TEST(EventLoopTest, PostedWorkRunsOnTheLoopThreadInOrder) {
  EventLoop loop;
  loop.Start();
  std::vector<int> order;  // touched only on the loop thread
  std::atomic<bool> all_on_loop{true};
  std::atomic<int> count{0};
  std::thread poster([&] {
    for (int i = 0; i < 1000; ++i) {
      loop.Post([&, i] {
        if (!loop.InLoopThread()) all_on_loop = false;
        order.push_back(i);
        ++count;
      });
    }
  });
  poster.join();
  ASSERT_TRUE(Eventually([&] { return count.load() == 1000; }));
  std::atomic<bool> checked{false};
  loop.Post([&] {
    for (int i = 0; i < 1000; ++i)
      EXPECT_EQ(order[i], i);
    checked = true;
  });
  ASSERT_TRUE(Eventually([&] { return checked.load(); }));
  EXPECT_TRUE(all_on_loop.load());
  EXPECT_FALSE(loop.InLoopThread());
}

TEST(EventLoopTest, StopEndsRunAndPendingTimersAreDropped) {
  std::atomic<bool> fired{false};
  {
    EventLoop loop;
    loop.Schedule(60'000'000, [&] { fired = true; });  // a minute away
    std::thread runner([&] { loop.Run(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    loop.Stop();
    runner.join();  // Run returned
    loop.Stop();    // idempotent
  }
  EXPECT_FALSE(fired.load());
}

}  // namespace
}  // namespace bw::env
