// Stand-in for CUDA's library_types.h in the emulated build (see cuda_runtime.h): the data types
// the libraries' calls name.
#pragma once

enum cudaDataType_t {
  CUDA_R_32F = 0,
  CUDA_R_64F = 1,
  CUDA_R_16F = 2,
  CUDA_R_16BF = 14,
};
using cudaDataType = cudaDataType_t;
