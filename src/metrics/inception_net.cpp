// Inception-v3 as gancu layer strings (inception.h), and the network that runs them.
//
// The strings follow torchvision's inception_v3 module by module, so each conv and bn string can
// be named by the module whose weights it holds; the weights file keeps PyTorch's names and
// layouts (tools/convert_inception.py), and loading maps those names onto the strings' indices.
#include <algorithm>
#include <cstring>

#include "gancu/check.h"
#include "gancu/checkpoint.h"
#include "gancu/fileutil.h"
#include "gancu/fnv_hash.h"
#include "gancu/inception.h"
#include "gancu/memory.h"
#include "gancu/safetensors.h"

namespace gancu {

namespace {

constexpr const char* kWeightsFormat = "gancu-inception/1";

// Appends layer strings; every string with parameters records the PyTorch module it mirrors.
class InceptionBuilder {
 public:
  explicit InceptionBuilder(InceptionVariant variant) : fid_(variant == InceptionVariant::Fid) {}

  // torchvision's BasicConv2d: conv without bias, batch norm (eps 0.001, the TensorFlow value),
  // ReLU. Reads `in`; the ReLU's output is named after the module and returned.
  std::string basic(const std::string& in, const std::string& module, int out, int kh, int kw, int stride = 1,
                    int ph = 0, int pw = 0) {
    add(detail::concat("conv out=", out, " kh=", kh, " kw=", kw, " s=", stride, " ph=", ph, " pw=", pw,
                       " bias=false in=", in),
        module + ".conv");
    add("bn eps=0.001", module + ".bn");
    const std::string name = value_name(module);
    add("relu name=" + name);
    return name;
  }
  std::string basic_square(const std::string& in, const std::string& module, int out, int k, int stride = 1,
                           int pad = 0) {
    return basic(in, module, out, k, k, stride, pad, pad);
  }
  // 3x3 pooling of stride 1 and padding 1, the pooling branch of the A, C and E blocks.
  std::string branch_pool(const std::string& in, const std::string& block, bool max, bool include_pad) {
    const std::string name = value_name(block + ".pool");
    if (max)
      add("maxpool k=3 s=1 p=1 in=" + in + " name=" + name);
    else
      add(std::string("avgpool k=3 s=1 p=1 include_pad=") + (include_pad ? "true" : "false") + " in=" + in +
          " name=" + name);
    return name;
  }
  std::string concat(const std::vector<std::string>& parts, const std::string& module) {
    std::string in;
    for (const std::string& p : parts) in += (in.empty() ? "" : ",") + p;
    const std::string name = value_name(module);
    add("concat in=" + in + " name=" + name);
    return name;
  }

  // The blocks, named as torchvision names them (InceptionA ... InceptionE).
  std::string block_a(const std::string& x, const std::string& m, int pool_features) {
    const std::string b1 = basic_square(x, m + ".branch1x1", 64, 1);
    const std::string b5 =
        basic_square(basic_square(x, m + ".branch5x5_1", 48, 1), m + ".branch5x5_2", 64, 5, 1, 2);
    std::string b3 = basic_square(x, m + ".branch3x3dbl_1", 64, 1);
    b3 = basic_square(b3, m + ".branch3x3dbl_2", 96, 3, 1, 1);
    b3 = basic_square(b3, m + ".branch3x3dbl_3", 96, 3, 1, 1);
    const std::string pool = branch_pool(x, m, false, !fid_);
    const std::string bp = basic_square(pool, m + ".branch_pool", pool_features, 1);
    return concat({b1, b5, b3, bp}, m);
  }
  std::string block_b(const std::string& x, const std::string& m) {
    const std::string b3 = basic_square(x, m + ".branch3x3", 384, 3, 2);
    std::string bd = basic_square(x, m + ".branch3x3dbl_1", 64, 1);
    bd = basic_square(bd, m + ".branch3x3dbl_2", 96, 3, 1, 1);
    bd = basic_square(bd, m + ".branch3x3dbl_3", 96, 3, 2);
    const std::string pool = value_name(m + ".pool");
    add("maxpool k=3 s=2 in=" + x + " name=" + pool);
    return concat({b3, bd, pool}, m);
  }
  std::string block_c(const std::string& x, const std::string& m, int c7) {
    const std::string b1 = basic_square(x, m + ".branch1x1", 192, 1);
    std::string b7 = basic_square(x, m + ".branch7x7_1", c7, 1);
    b7 = basic(b7, m + ".branch7x7_2", c7, 1, 7, 1, 0, 3);
    b7 = basic(b7, m + ".branch7x7_3", 192, 7, 1, 1, 3, 0);
    std::string bd = basic_square(x, m + ".branch7x7dbl_1", c7, 1);
    bd = basic(bd, m + ".branch7x7dbl_2", c7, 7, 1, 1, 3, 0);
    bd = basic(bd, m + ".branch7x7dbl_3", c7, 1, 7, 1, 0, 3);
    bd = basic(bd, m + ".branch7x7dbl_4", c7, 7, 1, 1, 3, 0);
    bd = basic(bd, m + ".branch7x7dbl_5", 192, 1, 7, 1, 0, 3);
    const std::string pool = branch_pool(x, m, false, !fid_);
    const std::string bp = basic_square(pool, m + ".branch_pool", 192, 1);
    return concat({b1, b7, bd, bp}, m);
  }
  std::string block_d(const std::string& x, const std::string& m) {
    std::string b3 = basic_square(x, m + ".branch3x3_1", 192, 1);
    b3 = basic_square(b3, m + ".branch3x3_2", 320, 3, 2);
    std::string b7 = basic_square(x, m + ".branch7x7x3_1", 192, 1);
    b7 = basic(b7, m + ".branch7x7x3_2", 192, 1, 7, 1, 0, 3);
    b7 = basic(b7, m + ".branch7x7x3_3", 192, 7, 1, 1, 3, 0);
    b7 = basic_square(b7, m + ".branch7x7x3_4", 192, 3, 2);
    const std::string pool = value_name(m + ".pool");
    add("maxpool k=3 s=2 in=" + x + " name=" + pool);
    return concat({b3, b7, pool}, m);
  }
  // `last`: Mixed_7c, whose pooling branch the FID variant takes as a maximum.
  std::string block_e(const std::string& x, const std::string& m, bool last) {
    const std::string b1 = basic_square(x, m + ".branch1x1", 320, 1);
    const std::string b3_1 = basic_square(x, m + ".branch3x3_1", 384, 1);
    const std::string b3 = concat({basic(b3_1, m + ".branch3x3_2a", 384, 1, 3, 1, 0, 1),
                                   basic(b3_1, m + ".branch3x3_2b", 384, 3, 1, 1, 1, 0)},
                                  m + ".branch3x3");
    std::string bd = basic_square(x, m + ".branch3x3dbl_1", 448, 1);
    bd = basic_square(bd, m + ".branch3x3dbl_2", 384, 3, 1, 1);
    const std::string bdc = concat({basic(bd, m + ".branch3x3dbl_3a", 384, 1, 3, 1, 0, 1),
                                    basic(bd, m + ".branch3x3dbl_3b", 384, 3, 1, 1, 1, 0)},
                                   m + ".branch3x3dbl");
    const std::string pool = branch_pool(x, m, fid_ && last, !fid_);
    const std::string bp = basic_square(pool, m + ".branch_pool", 192, 1);
    return concat({b1, b3, bdc, bp}, m);
  }

  void add(std::string text, std::string module = "") {
    out.layers.push_back(std::move(text));
    out.modules.push_back(std::move(module));
  }

  InceptionLayers out;

 private:
  static std::string value_name(std::string module) {
    std::replace(module.begin(), module.end(), '.', '_');
    return module;
  }
  bool fid_;
};

std::string hash_of_file(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  Fnv f;
  f.add(bytes.data(), bytes.size());
  return f.hex();
}

}  // namespace

const char* inception_variant_name(InceptionVariant v) {
  return v == InceptionVariant::Fid ? "fid" : "torchvision";
}

InceptionVariant parse_inception_variant(const std::string& name, const std::string& where) {
  if (name == "fid") return InceptionVariant::Fid;
  if (name == "torchvision") return InceptionVariant::Torchvision;
  usage_error(where, ": expected \"fid\" or \"torchvision\", got \"", name, "\"");
}

InceptionLayers inception_v3_layers(InceptionVariant variant, Shape image) {
  if (image.c != 1 && image.c != 3)
    usage_error("inception: images need 1 or 3 channels, got ", image.c, " (", image.str(), ")");
  InceptionBuilder b(variant);
  std::string x = "input";
  if (image.c == 1) {
    b.add("concat in=input,input,input name=rgb");  // grey as three equal channels
    x = "rgb";
  }
  if (image.h != kInceptionSize || image.w != kInceptionSize) {
    b.add(detail::concat("resize h=", kInceptionSize, " w=", kInceptionSize, " in=", x, " name=resized"));
    x = "resized";
  }
  x = b.basic_square(x, "Conv2d_1a_3x3", 32, 3, 2);
  x = b.basic_square(x, "Conv2d_2a_3x3", 32, 3);
  x = b.basic_square(x, "Conv2d_2b_3x3", 64, 3, 1, 1);
  b.add("maxpool k=3 s=2 in=" + x + " name=maxpool1");
  x = b.basic_square("maxpool1", "Conv2d_3b_1x1", 80, 1);
  x = b.basic_square(x, "Conv2d_4a_3x3", 192, 3);
  b.add("maxpool k=3 s=2 in=" + x + " name=maxpool2");
  x = b.block_a("maxpool2", "Mixed_5b", 32);
  x = b.block_a(x, "Mixed_5c", 64);
  x = b.block_a(x, "Mixed_5d", 64);
  x = b.block_b(x, "Mixed_6a");
  x = b.block_c(x, "Mixed_6b", 128);
  x = b.block_c(x, "Mixed_6c", 160);
  x = b.block_c(x, "Mixed_6d", 160);
  x = b.block_c(x, "Mixed_6e", 192);
  x = b.block_d(x, "Mixed_7a");
  x = b.block_e(x, "Mixed_7b", false);
  x = b.block_e(x, "Mixed_7c", true);
  b.add("avgpool k=8 in=" + x + " name=pool3");  // 8x8 -> 1x1: the global average pool
  b.out.classes = variant == InceptionVariant::Fid ? 1008 : 1000;
  b.add(detail::concat("linear out=", b.out.classes), "fc");
  return b.out;
}

InceptionNet::InceptionNet(const Exec& ex, InceptionVariant variant, Shape image, int batch, Classes classes)
    : ex_(ex), variant_(variant), image_(image.with_batch(0)), batch_(batch), classes_(classes.n) {
  if (batch < 1) usage_error("inception: batch must be at least 1, got ", batch);
  InceptionLayers spec = inception_v3_layers(variant, image);
  if (classes_ != spec.classes) {
    // The classes follow the weights file (a torchvision model may have been fine-tuned).
    spec.layers.back() = detail::concat("linear out=", classes_);
  }
  modules_ = spec.modules;
  net_ = std::make_unique<Network<float>>("I", 4, spec.layers, "inception", image_.with_batch(batch),
                                          InitScheme::PyTorch);
  pool3_ = net_->value_id("pool3");
  ArenaPlan plan;
  net_->plan(plan, ex, BackwardUse{false, false});  // features only: no gradient buffers
  input_slot_ = plan.add_array<float>(ArenaKind::Activations, "inception input",
                                      size_t(batch) * size_t(image_.per_sample()));
  step_slot_ = plan.add_array<int64_t>(ArenaKind::State, "inception step", 1);
  arena_ = Arena(ex.backend(), std::move(plan));
  net_->bind(arena_);
  // Its own workspace on its own copy of the Exec, as the classifier (classifier.cpp) does.
  ex_.set_workspace(arena_.workspace(), arena_.workspace_bytes());
  input_ = arena_.get<float>(input_slot_);
  step_ = arena_.get<int64_t>(step_slot_);
}

InceptionNet::InceptionNet(const Exec& ex, InceptionVariant variant, Shape image, int batch, uint64_t seed)
    : InceptionNet(ex, variant, image, batch, Classes{variant == InceptionVariant::Fid ? 1008 : 1000}) {
  net_->initialize(ex_, seed);
  weights_id_ = detail::concat("random-", seed);
}

InceptionNet::~InceptionNet() = default;

std::unique_ptr<InceptionNet> InceptionNet::load(const Exec& ex, const std::string& path, Shape image,
                                                 int batch) {
  const SafeTensors file = read_safetensors(path);
  const auto format = file.metadata.find("format");
  if (format == file.metadata.end() || format->second != kWeightsFormat)
    runtime_error(path, ": not an Inception weights file for gancu (metadata 'format' is not '",
                  kWeightsFormat, "'); convert the PyTorch weights with tools/convert_inception.py");
  const auto variant_it = file.metadata.find("variant");
  if (variant_it == file.metadata.end()) runtime_error(path, ": metadata 'variant' is missing");
  InceptionVariant variant;
  try {
    variant = parse_inception_variant(variant_it->second, path + ": metadata 'variant'");
  } catch (const UsageError& e) {
    runtime_error(e.what());
  }
  const auto fc = file.tensors.find("fc.weight");
  if (fc == file.tensors.end() || fc->second.shape.size() != 2 || fc->second.shape[1] != kInceptionFeatures)
    runtime_error(path, ": tensor 'fc.weight' [classes, 2048] is missing or has another shape");
  std::unique_ptr<InceptionNet> net(
      new InceptionNet(ex, variant, image, batch, Classes{int(fc->second.shape[0])}));
  // The file's PyTorch names onto the network's tensor names ("I.<string index>.<tensor>").
  SafeTensors renamed;
  for (const NetworkTensor& t : net->net_->tensors()) {
    const size_t first_dot = t.name.find('.'), second_dot = t.name.find('.', first_dot + 1);
    const size_t index = std::stoul(t.name.substr(first_dot + 1, second_dot - first_dot - 1));
    const std::string torch_name = net->modules_.at(index) + t.name.substr(second_dot);
    const auto it = file.tensors.find(torch_name);
    if (it == file.tensors.end())
      runtime_error(path, ": tensor '", torch_name, "' is missing (not an Inception-v3 weights file?)");
    renamed.tensors[t.name] = it->second;
  }
  import_network(net->ex_, *net->net_, renamed, path);
  net->weights_id_ = hash_of_file(path);
  return net;
}

void InceptionNet::run_batch(int chunk, float* features, float* logits) {
  net_->forward(ex_, input_, chunk, BatchNormMode::Eval, step_, 0);
  if (features)
    copy_to_host(ex_, features, net_->value_data(pool3_), size_t(chunk) * kInceptionFeatures * sizeof(float));
  if (logits) copy_to_host(ex_, logits, net_->output(), size_t(chunk) * size_t(classes_) * sizeof(float));
}

void InceptionNet::evaluate(const float* images, int64_t n, float* features, float* logits) {
  const int64_t per_image = image_.per_sample();
  for (int64_t begin = 0; begin < n; begin += batch_) {
    const int chunk = int(std::min<int64_t>(batch_, n - begin));
    copy_to_device(ex_, input_, images + begin * per_image, size_t(chunk * per_image) * sizeof(float));
    run_batch(chunk, features ? features + begin * kInceptionFeatures : nullptr,
              logits ? logits + begin * classes_ : nullptr);
  }
}

void InceptionNet::evaluate_u8(const uint8_t* images, int64_t n, float* features, float* logits) {
  const int64_t per_image = image_.per_sample();
  std::vector<float> chunk_f(size_t(batch_) * size_t(per_image));
  for (int64_t begin = 0; begin < n; begin += batch_) {
    const int64_t chunk = std::min<int64_t>(batch_, n - begin);
    const uint8_t* src = images + begin * per_image;
    for (int64_t i = 0; i < chunk * per_image; ++i)
      chunk_f[size_t(i)] = float(src[i]) * (2.0f / 255.0f) - 1.0f;
    evaluate(chunk_f.data(), chunk, features ? features + begin * kInceptionFeatures : nullptr,
             logits ? logits + begin * classes_ : nullptr);
  }
}

}  // namespace gancu
