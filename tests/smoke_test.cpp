#include <gtest/gtest.h>

#include "gancu/arena.h"
#include "gancu/memory.h"

namespace gancu {
TEST(Arena, LaysOutKindsContiguouslyAndAllocatesOnce) {
  ArenaPlan plan;
  Slot a = plan.add_array<float>(ArenaKind::Activations, "a", 10);
  Slot p = plan.add_array<float>(ArenaKind::Params, "p", 3);
  Slot q = plan.add_array<float>(ArenaKind::Params, "q", 5);
  plan.need_workspace(100);
  plan.need_workspace(50);
  const uint64_t before = allocation_count();
  Arena arena(Backend::CPU, plan);
  EXPECT_EQ(allocation_count(), before + 1);
  EXPECT_LT(arena.get<float>(p), arena.get<float>(q));
  EXPECT_LT(arena.get<float>(q), arena.get<float>(a));
  EXPECT_EQ(arena.workspace_bytes(), 100u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(arena.get<float>(q)) % ArenaPlan::kAlign, 0u);
}
}  // namespace gancu
