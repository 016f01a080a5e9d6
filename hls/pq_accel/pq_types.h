// Type selection: Vitis's own headers whenever they exist (synthesis, Vitis C simulation, or any
// build that puts them on the include path), else the from-scratch shim in pq_shim.h.
// -DPQ_FORCE_SHIM forces the shim.
#ifndef PQ_TYPES_H
#define PQ_TYPES_H

#if defined(__SYNTHESIS__)
#define PQ_REAL_HLS_HEADERS 1
#elif !defined(PQ_FORCE_SHIM) && defined(__has_include)
#if __has_include(<ap_int.h>) && __has_include(<hls_stream.h>) && __has_include(<ap_axi_sdata.h>)
#define PQ_REAL_HLS_HEADERS 1
#endif
#endif

#ifdef PQ_REAL_HLS_HEADERS
#include <ap_axi_sdata.h>
#include <ap_int.h>
#include <hls_stream.h>
#else
#include "pq_shim.h"
#endif

typedef ap_axiu<32, 0, 0, 0> axis_word;
typedef hls::stream<axis_word> axis_stream;

#endif  // PQ_TYPES_H
