// pq_accel: one call computes Y[N,M] = layer_int(X[N,K], W[M,K], bias, mult, shift, relu)
// (docs/FORMAT.md section 4). Ports, register map and stream formats: docs/HARDWARE.md 1-3.
#ifndef PQ_ACCEL_H
#define PQ_ACCEL_H

#include "config.h"
#include "pq_types.h"

#define PQ_FLAG_RELU 1u
#define PQ_FLAG_REUSE 2u

void pq_accel(axis_stream& wgt, axis_stream& act, axis_stream& res, ap_uint<32> prec, ap_uint<32> rows,
              ap_uint<32> cols, ap_uint<32> ncols, ap_uint<32> flags);

#endif  // PQ_ACCEL_H
