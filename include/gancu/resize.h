// Bringing any decoded image to a model's input: its channels, then its size, as the usual
// PyTorch pipeline (PIL's convert, torchvision's Resize(size) + CenterCrop(size)) does.
#pragma once

#include "gancu/image_io.h"

namespace gancu {

// To c channels (1 or 3): gray to RGB repeats the gray value; RGB to gray is ITU-R 601-2 luma in
// PIL's fixed point, L = (19595 R + 38470 G + 7471 B + 32768) >> 16; an alpha channel is dropped
// (PIL's convert("RGB") and convert("L") do the same).
Image convert_channels(const Image& in, int c);

// Antialiased bilinear resampling to h x w: PIL's "bilinear" filter, a triangle whose support
// grows with the reduction factor (each output pixel averages every input pixel under it, as
// torchvision's antialias=True does), separable, horizontal pass first, in float, rounded once.
Image resize_bilinear_antialiased(const Image& in, int h, int w);

// The shorter side to `size` (the longer one to floor(size * long / short)), then the centre
// size x size crop (the top-left corner at round((H - size) / 2), round((W - size) / 2), halves to
// even as Python rounds):
// torchvision's Resize(size) followed by CenterCrop(size). For a square target only.
Image resize_and_center_crop(const Image& in, int size);

}  // namespace gancu
