#include <omp.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "gancu/blas_kernel.h"
#include "gancu/check.h"
#include "gancu/comm.h"
#include "gancu/data.h"
#include "gancu/exec.h"
#include "gancu/fileutil.h"
#include "gancu/image_folder.h"

extern "C" char* openblas_get_config(void);

namespace gancu::cli {

namespace {
// An image folder is listed without decoding (its size depends on the model that reads it);
// anything else is loaded.
std::string describe_data(const std::string& name) {
  std::ostringstream out;
  if (dir_exists(name) && holds_images(name)) {
    const ImageFolderListing listing = list_image_folder(name);
    out << "data " << name << ": a folder of " << listing.files.size()
        << " image files (read at the model's size by gancu train)\n";
    if (listing.classes.empty()) {
      out << "  no classes (classes are the first-level sub-folders, when every image is in one of 2 to "
          << kMaxClasses << ")\n";
    } else {
      std::vector<int64_t> counts(listing.classes.size(), 0);
      for (int label : listing.labels) ++counts[size_t(label)];
      for (size_t k = 0; k < listing.classes.size(); ++k)
        out << "  class " << k << ": " << listing.classes[k] << " (" << counts[k] << " files)\n";
    }
    return out.str();
  }
  const Dataset d = load_dataset(name, Split::Train);
  out << "data " << d.name << ": " << d.count << " images of " << d.h << "x" << d.w << "x" << d.c << ", "
      << (d.labels.empty() ? std::string("no labels") : std::to_string(d.num_classes) + " classes") << "\n";
  return out.str();
}
}  // namespace

void add_info(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("info", "Version, backends and devices");
  auto data = std::make_shared<std::string>();
  cmd->add_option("--data", *data, "Also describe a data set or an image folder (its files and classes)");
  cmd->callback([data] {
    // In a job (mpirun, srun): where each rank runs; rank 0 prints them all.
    Communicator& comm = world();
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    std::string device = "cpu";
    if (cuda_available())
      device = "cuda:" + std::to_string(comm.local_rank()) + " (when --backend cuda or auto)";
    const std::vector<std::string> ranks = comm.gather_strings(
        detail::concat("  rank ", comm.rank(), ": host ", host, ", local rank ", comm.local_rank(), " of ",
                       comm.local_size(), ", device ", device, "\n"),
        "gancu info's rank list");
    if (comm.rank() != 0) return;
    const std::string blas_note = blas_kernel_note();
    std::cout
        << "gancu " << GANCU_VERSION << "\n"
        << "backends:\n"
        << "  cpu:  " << omp_get_max_threads() << " threads, OpenBLAS " << openblas_get_config() << "\n"
        << (blas_note.empty() ? std::string() : "        note: " + blas_note + "\n")
        << "  cuda: " << cuda_report() << "\n"
#if GANCU_CUDA_EMULATION
        << "  cuda is EMULATED: every kernel runs on the CPU in the SIMT emulator (GANCU_CUDA_EMULATION,\n"
        << "    tests/simt/; cuBLAS on OpenBLAS, cuDNN on the CPU twins), for tests, not for speed\n"
#endif
        << "presets: ";
    std::string list;
    for (const auto& n : preset_names()) list += (list.empty() ? "" : ", ") + n;
    std::cout << list << "\n"
              << "data parallel: " << comm.describe()
              << (comm.size() > 1 ? "" : " (mpirun -np N gancu train ... runs N ranks)") << "\n";
    if (comm.size() > 1)
      for (const std::string& line : ranks) std::cout << line;
    if (!data->empty()) std::cout << describe_data(*data);
  });
}

}  // namespace gancu::cli
