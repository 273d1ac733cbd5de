// D pre-training (train.d_pretrain_steps; docs/mode_collapse.md#discriminator-pre-training): before
// adversarial training starts, D learns alone to tell the real images from fakes that share their
// pixel statistics but not their structure.
#pragma once

#include <cstdint>
#include <vector>

#include "gancu/data.h"
#include "gancu/gan.h"

namespace gancu {

// The cumulative distribution of the data set's pixel values (all images, all channels):
// cdf[b] = share of values <= b, cdf[255] = 1. A UsageError for a data set without images.
std::vector<float> pixel_cdf(const Dataset& images);

// Runs cfg.d_pretrain_steps pre-training steps of `gan`'s D on `images` (the real batches from
// `real`, the fakes of cfg.d_pretrain_fakes) and returns D's metrics over them. A UsageError for
// data without images (the 2-d mixtures).
GanMetrics pretrain_discriminator(const Exec& ex, Gan& gan, const Dataset& images,
                                  const Gan::RealSource& real);

}  // namespace gancu
