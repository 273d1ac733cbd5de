// The planned memory pool: one allocation per model pair and backend, carved into sub-buffers by
// offset.
//
// Building a model computes every shape first and asks an ArenaPlan for each piece it will need
// (parameters, gradients, optimizer state, activations and their gradients, workspaces,
// counters). Each request returns a Slot. Arena then allocates the total once and resolves slots
// to pointers. Nothing is allocated after that, which is what lets the CUDA iteration be captured
// as a graph and the training loop run without touching an allocator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gancu/exec.h"

namespace gancu {

// What a piece of the arena holds; the plan groups pieces by kind, in this order, so that e.g.
// all parameters of all networks form one contiguous range.
enum class ArenaKind : uint8_t { Params, Grads, OptState, State, Activations, Workspace, kCount };

struct Slot {
  int index = -1;
  bool valid() const { return index >= 0; }
};

class ArenaPlan {
 public:
  static constexpr size_t kAlign = 256;  // cuDNN and vector loads like 256-byte alignment

  Slot add(ArenaKind kind, std::string name, size_t bytes);
  template <class T>
  Slot add_array(ArenaKind kind, std::string name, size_t count) {
    return add(kind, std::move(name), count * sizeof(T));
  }
  // Workspaces are shared: the plan keeps the largest request.
  void need_workspace(size_t bytes) {
    workspace_bytes_ = bytes > workspace_bytes_ ? bytes : workspace_bytes_;
  }

  size_t total_bytes() const;
  size_t kind_bytes(ArenaKind kind) const;
  std::string summary() const;  // a table of kinds and sizes, for the log

 private:
  friend class Arena;
  struct Entry {
    ArenaKind kind;
    std::string name;
    size_t bytes;
    size_t offset = 0;  // set by layout()
  };
  std::vector<Entry> entries_;
  size_t workspace_bytes_ = 0;
  size_t layout();  // assigns offsets; returns the total
};

class Arena {
 public:
  Arena() = default;
  Arena(Backend backend, ArenaPlan plan);  // the one allocation
  ~Arena();
  Arena(Arena&& o) noexcept;
  Arena& operator=(Arena&& o) noexcept;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* ptr(Slot s) const;
  template <class T>
  T* get(Slot s) const {
    return static_cast<T*>(ptr(s));
  }
  size_t bytes(Slot s) const;
  void* workspace() const { return base_ ? base_ + workspace_offset_ : nullptr; }
  size_t workspace_bytes() const { return plan_.workspace_bytes_; }
  size_t total_bytes() const { return total_; }
  Backend backend() const { return backend_; }
  const ArenaPlan& plan() const { return plan_; }

 private:
  Backend backend_ = Backend::CPU;
  ArenaPlan plan_;
  uint8_t* base_ = nullptr;
  size_t total_ = 0;
  size_t workspace_offset_ = 0;
};

}  // namespace gancu
