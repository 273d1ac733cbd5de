#include "gancu/arena.h"

#include <cstdio>
#include <utility>

#include "gancu/check.h"
#include "gancu/memory.h"

namespace gancu {

namespace {
const char* kind_name(ArenaKind k) {
  switch (k) {
    case ArenaKind::Params:
      return "parameters";
    case ArenaKind::Grads:
      return "gradients";
    case ArenaKind::OptState:
      return "optimizer state";
    case ArenaKind::State:
      return "state and counters";
    case ArenaKind::Activations:
      return "activations";
    case ArenaKind::Workspace:
      return "workspace";
    default:
      return "?";
  }
}
size_t align_up(size_t x, size_t a) {
  return (x + a - 1) / a * a;
}
}  // namespace

Slot ArenaPlan::add(ArenaKind kind, std::string name, size_t bytes) {
  GANCU_CHECK(kind != ArenaKind::Workspace, "workspaces are requested with need_workspace()");
  entries_.push_back({kind, std::move(name), bytes});
  return Slot{int(entries_.size()) - 1};
}

size_t ArenaPlan::layout() {
  size_t offset = 0;
  for (int k = 0; k < int(ArenaKind::kCount); ++k) {
    for (auto& e : entries_) {
      if (int(e.kind) != k) continue;
      e.offset = offset;
      offset = align_up(offset + e.bytes, kAlign);
    }
  }
  return offset;
}

size_t ArenaPlan::kind_bytes(ArenaKind kind) const {
  if (kind == ArenaKind::Workspace) return workspace_bytes_;
  size_t total = 0;
  for (const auto& e : entries_)
    if (e.kind == kind) total += align_up(e.bytes, kAlign);
  return total;
}

size_t ArenaPlan::total_bytes() const {
  size_t total = 0;
  for (int k = 0; k < int(ArenaKind::kCount); ++k) total += kind_bytes(ArenaKind(k));
  return total;
}

std::string ArenaPlan::summary() const {
  std::string s;
  char line[128];
  for (int k = 0; k < int(ArenaKind::kCount); ++k) {
    std::snprintf(line, sizeof line, "  %-20s %10.2f MiB\n", kind_name(ArenaKind(k)),
                  kind_bytes(ArenaKind(k)) / 1048576.0);
    s += line;
  }
  std::snprintf(line, sizeof line, "  %-20s %10.2f MiB (one allocation)\n", "total",
                total_bytes() / 1048576.0);
  return s + line;
}

Arena::Arena(Backend backend, ArenaPlan plan) : backend_(backend), plan_(std::move(plan)) {
  workspace_offset_ = plan_.layout();
  total_ = workspace_offset_ + align_up(plan_.workspace_bytes_, ArenaPlan::kAlign);
  base_ = static_cast<uint8_t*>(backend_alloc(backend_, total_));
}

Arena::~Arena() {
  backend_free(backend_, base_);
}

Arena::Arena(Arena&& o) noexcept {
  *this = std::move(o);
}

Arena& Arena::operator=(Arena&& o) noexcept {
  if (this != &o) {
    backend_free(backend_, base_);
    backend_ = o.backend_;
    plan_ = std::move(o.plan_);
    base_ = std::exchange(o.base_, nullptr);
    total_ = std::exchange(o.total_, 0);
    workspace_offset_ = o.workspace_offset_;
  }
  return *this;
}

void* Arena::ptr(Slot s) const {
  GANCU_CHECK(base_ && s.valid() && s.index < int(plan_.entries_.size()), "slot not in this arena");
  return base_ + plan_.entries_[s.index].offset;
}

size_t Arena::bytes(Slot s) const {
  GANCU_CHECK(s.valid() && s.index < int(plan_.entries_.size()), "slot not in this arena");
  return plan_.entries_[s.index].bytes;
}

}  // namespace gancu
