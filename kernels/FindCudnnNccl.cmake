# Finds cuDNN (required by the CUDA backend) and NCCL (optional) and defines gancu::cudnn and
# gancu::nccl. Looks in CUDNN_ROOT / NCCL_ROOT, the CUDA toolkit, Debian's paths, and the
# `nvidia-*` wheels of a Python installation (site-packages/nvidia/{cudnn,nccl}), which is where
# GPU machines that only have PyTorch keep them. GANCU_PYTHON_NVIDIA may name that folder.
set(_gancu_nv_roots ${GANCU_PYTHON_NVIDIA} $ENV{GANCU_PYTHON_NVIDIA})
if(NOT _gancu_nv_roots)
  find_program(_gancu_python NAMES python3 python)
  if(_gancu_python)
    execute_process(
      COMMAND ${_gancu_python} -c "import nvidia, os; print(os.path.dirname(nvidia.__path__[0] if hasattr(nvidia, '__path__') else nvidia.__file__) + '/nvidia')"
      OUTPUT_VARIABLE _gancu_nv_root OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _rc)
    if(_rc EQUAL 0 AND EXISTS "${_gancu_nv_root}")
      list(APPEND _gancu_nv_roots ${_gancu_nv_root})
    endif()
  endif()
endif()

function(_gancu_find_nv name header libname required)
  string(TOUPPER ${name} _up)
  set(_hints ${${_up}_ROOT} $ENV{${_up}_ROOT} ${CUDAToolkit_LIBRARY_ROOT} ${CUDAToolkit_TARGET_DIR})
  foreach(r ${_gancu_nv_roots})
    list(APPEND _hints ${r}/${name})
  endforeach()
  find_path(GANCU_${_up}_INCLUDE ${header} HINTS ${_hints} ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
  find_library(GANCU_${_up}_LIB NAMES ${libname} lib${libname}.so.9 lib${libname}.so.2
               HINTS ${_hints} ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib lib64)
  if(GANCU_${_up}_INCLUDE AND GANCU_${_up}_LIB)
    add_library(gancu::${name} UNKNOWN IMPORTED)
    set_target_properties(gancu::${name} PROPERTIES IMPORTED_LOCATION ${GANCU_${_up}_LIB}
                                                    INTERFACE_INCLUDE_DIRECTORIES ${GANCU_${_up}_INCLUDE})
    message(STATUS "gancu: ${name} ${GANCU_${_up}_LIB}")
  elseif(required)
    message(FATAL_ERROR "gancu: ${name} not found (set ${_up}_ROOT or GANCU_PYTHON_NVIDIA)")
  else()
    message(STATUS "gancu: ${name} not found; building without it")
  endif()
endfunction()

_gancu_find_nv(cudnn cudnn.h cudnn TRUE)
_gancu_find_nv(nccl nccl.h nccl FALSE)
